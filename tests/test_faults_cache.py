"""Faults around the dashboard cache: in-place weight edits are noticed exactly (the disk cache, the passes a
Scope remembers and the explorer's), edits the pass does not read keep the cache, and an unusable cache
folder costs a warning, never the result."""

from __future__ import annotations

import errno
import tempfile
import warnings

import pytest
import torch
from test_dashboard_api import ForwardCounter
from test_dashboard_pass import SETTINGS, synthetic_texts

import scopewidgets as sw
from scopewidgets.core import fingerprint as _fingerprint
from scopewidgets.core.memory import PassMemory
from scopewidgets.dashboards import cache as _dashboard_cache
from scopewidgets.dashboards.api import remembered
from scopewidgets.dashboards.library import DashboardLibrary
from scopewidgets.dashboards.state import DashboardState
from scopewidgets.testing import random_sae, tiny_gemma3

pytestmark = pytest.mark.usefixtures("private_cache", "one_torch_thread")
TEXTS = synthetic_texts(10)
LAYER = 1


@pytest.fixture
def scope():
    model, tokenizer = tiny_gemma3()
    sae = random_sae(model, "resid_post", LAYER, d_sae=16, threshold=0.2, seed=5)
    return sw.Scope(model, tokenizer, saes=[sae])


def _pass(scope):
    return scope.dashboards([1, 3, 5], corpus=TEXTS, **SETTINGS)


def _edits(scope):
    layers = scope.model.model.layers
    return {
        "weight.mul_": lambda: layers[0].mlp.down_proj.weight.mul_(3),
        "sae.threshold.fill_": lambda: scope.saes[0].threshold.fill_(0.5),
        "one element": lambda: layers[LAYER].self_attn.o_proj.weight[0, 0].add_(1.0),
        ".data in place": lambda: layers[0].self_attn.q_proj.weight.data.mul_(2),
        ".data swapped": lambda: setattr(
            layers[0].mlp.up_proj.weight, "data", layers[0].mlp.up_proj.weight.data * 2
        ),
        "embedding rows": lambda: scope.model.model.embed_tokens.weight[3:].mul_(-1),
    }


@pytest.mark.parametrize(
    "edit",
    [
        "weight.mul_",
        "sae.threshold.fill_",
        "one element",
        ".data in place",
        ".data swapped",
        "embedding rows",
    ],
)
def test_an_in_place_edit_of_what_the_pass_reads_gives_fresh_dashboards(scope, edit):
    before = _pass(scope)
    with torch.no_grad():
        _edits(scope)[edit]()
    counter = ForwardCounter(scope.model)
    after = _pass(scope)
    assert counter.calls > 0  # not the disk entry of the unedited weights
    fresh = sw.Scope(scope.model, scope.tokenizer, saes=scope.saes).dashboards(
        [1, 3, 5], corpus=TEXTS, cache=False, **SETTINGS
    )
    for k, tensor in fresh.state.tensors().items():
        assert torch.equal(tensor, after.state.tensors()[k])
    assert any(not torch.equal(t, before.state.tensors()[k]) for k, t in after.state.tensors().items())
    assert scope.dashboard(3).max_activation == after[3].max_activation  # the remembered pass is retired


def test_edits_the_pass_does_not_read_keep_the_cache(scope):
    _pass(scope)
    with torch.no_grad():
        scope.model.model.layers[LAYER + 1].mlp.down_proj.weight.mul_(3)
        scope.model.model.norm.weight.add_(1.0)
    counter = ForwardCounter(scope.model)
    _pass(scope)
    assert counter.calls == 0


def test_the_fingerprint_is_memoised_until_a_tensor_changes(scope, monkeypatch):
    model, sae = scope.model, scope.saes[0]
    first = _fingerprint.pass_fingerprint(model, sae)
    hashed = []
    monkeypatch.setattr(_fingerprint, "_content_hash", lambda *a: hashed.append(a) or "x")
    assert _fingerprint.pass_fingerprint(model, sae) == first and not hashed
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.mul_(3)
    _fingerprint.pass_fingerprint(model, sae)
    assert len(hashed) == 1  # the model again; the SAE's memo still holds


def test_the_explorer_drops_passes_made_before_an_edit(scope):
    passes = DashboardLibrary(scope, scope.saes[0], TEXTS, max_windows=4, settings={"n_examples": 2})
    first = passes.prepare([1, 2])
    assert passes.prepare([1]) is first
    with torch.no_grad():
        scope.saes[0].W_enc.mul_(2)
    assert passes.passes == [] and passes.prepare([1]) is not first


# ------------------------------------------------------------------------------------- unusable folders
def _uncached_result_with_one_warning(scope):
    with pytest.warns(UserWarning, match="cannot be used") as caught:
        first = _pass(scope)
    assert len([w for w in caught if "cannot be used" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: later calls are quiet, and still work
        second = _pass(scope)
    for k, tensor in first.state.tensors().items():
        assert torch.equal(tensor, second.state.tensors()[k])
    assert first[3].max_activation == second[3].max_activation


@pytest.fixture(autouse=True)
def _forget_warnings(monkeypatch):
    monkeypatch.setattr(_dashboard_cache, "_WARNED", set())


def test_a_file_where_the_cache_folder_should_be(scope):
    folder = _dashboard_cache.cache_folder()
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder")
    _uncached_result_with_one_warning(scope)
    assert folder.read_text() == "not a folder"


def test_a_directory_at_an_entry_path(scope, monkeypatch):
    keys = []
    real = _dashboard_cache.load_state
    monkeypatch.setattr(_dashboard_cache, "load_state", lambda key: keys.append(key) or real(key))
    _pass(scope)
    path = _dashboard_cache.cache_folder() / f"{keys[0]}.safetensors"
    path.unlink()
    path.mkdir()
    (path / "inside").write_text("x")
    _uncached_result_with_one_warning(scope)
    assert path.is_dir()


def test_a_read_only_cache_folder(scope, monkeypatch):
    def read_only(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    _uncached_result_with_one_warning(scope)


@pytest.mark.parametrize("limit", ["inf", "Infinity", "1e400"])
def test_an_infinite_cache_bound_means_no_bound(scope, monkeypatch, limit):
    monkeypatch.setenv(_dashboard_cache.LIMIT_VARIABLE, limit)
    _pass(scope)
    assert len(list(_dashboard_cache.cache_folder().glob("*.safetensors"))) == 1
    assert _dashboard_cache.evict() == []


def test_remembered_passes_stay_within_the_byte_budget_and_make_room_before_a_pass(scope):
    kept = _pass(scope)
    one = kept.nbytes
    assert one == DashboardState.size(3, kept.rows.state.settings) > 0
    scope.passes = PassMemory(budget=int(2.5 * one))
    first, second = (scope.dashboards(f, corpus=TEXTS, **SETTINGS) for f in ([2, 4, 6], [10, 11, 12]))
    assert len(scope.passes) == 2 and scope.passes.nbytes == 2 * one
    held = []
    original = DashboardState.empty

    def spy(features, *args, **kwargs):  # what the memory holds when a pass allocates its state
        if features.device.type != "meta":  # not `DashboardState.size` sizing it
            held.append([p.features for p in remembered(scope, scope.saes[0])])
        return original(features, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DashboardState, "empty", spy)
        third = scope.dashboards([7, 8, 9], corpus=TEXTS, **SETTINGS)
    assert held == [[second.features]]  # the oldest was dropped before the new state was allocated
    assert [p.features for p in remembered(scope, scope.saes[0])] == [third.features, second.features]
    assert kept[1].examples and first[2].examples  # sets the caller holds stay usable when dropped
    scope.passes = PassMemory(budget=0)  # the newest pass is always kept, even over the budget
    assert scope.dashboards([13], corpus=TEXTS, **SETTINGS) is remembered(scope, scope.saes[0])[0]
    with pytest.raises(ValueError, match="budget must be >= 0"):
        PassMemory(budget=-1)
