"""Automatic feature labels (`sw.label_features`), manual-over-auto labels, and the demo SAE's shipped
evidence files (`feature_stats.safetensors`, `auto_labels.json`)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from safetensors import safe_open

import scopewidgets as sw
from scopewidgets.demo import DEMO_SAE_DIR
from scopewidgets.features.labels import NEVER_FIRES, candidates, clean_token
from scopewidgets.testing import random_sae, tiny_gemma3

pytestmark = pytest.mark.usefixtures("private_cache", "one_torch_thread")
N_EXAMPLES, CONTEXT = 4, 2


@pytest.fixture(scope="module")
def scope():
    model, tokenizer = tiny_gemma3()
    sae = random_sae(model, "resid_post", 1, d_sae=24, threshold=0.9, seed=3)
    sae.threshold[[5, 11]] = 1e6  # two features that never fire
    return sw.Scope(model, tokenizer, saes=[sae])


@pytest.fixture(scope="module")
def windows():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 260, (10, 12), generator=gen)
    ids[:, 0] = 2  # BOS
    return ids


def brute_force_labels(scope, ids, side, n_fired=3, n_promoted=2, jacobian=None):
    """The documented label, feature by feature, from dense activations and the full logit matrix
    (`side`: tokens kept each side of a top example's focus; promoted tokens read directly through the
    final norm's gain, or through `jacobian`, the steering Jacobian, checked on its own in test_checks)."""
    model, sae = scope.model, scope.saes[0]
    acts = scope.encode(ids)[0]  # [n_seq, T, d_sae], BOS zero
    decode = [scope.tokenizer.decode([t]) for t in range(model.config.vocab_size)]
    focus_of, seen = {}, set()
    for f in range(sae.cfg.d_sae):
        peak, where = acts[:, :, f].max(dim=1)  # first position of each sequence's maximum
        ranked = sorted((-float(peak[s]), s) for s in range(len(ids)) if peak[s] > 0)[:N_EXAMPLES]
        focus_of[f] = [int(ids[s, where[s]]) for _, s in ranked]
        for _, s in ranked:
            p = int(where[s])
            seen.update(ids[s, max(p - side, 0) : p + side + 1].tolist())
    allowed = sorted(seen)  # byte-level vocab: fewer than 256 word tokens, so every seen token competes
    gain = 1.0 + model.model.norm.weight.float()
    directions = sae.W_dec.float() * gain if jacobian is None else sae.W_dec.float() @ jacobian.T
    logits = directions @ model.lm_head.weight.float()[allowed].T
    labels = {}
    for f in range(sae.cfg.d_sae):
        names = [clean_token(decode[t]) for t in focus_of[f]]
        counts = Counter(n.lower() for n in names)
        first = list(dict.fromkeys(n.lower() for n in names))
        fired = sorted(first, key=lambda key: -counts[key])[:n_fired]
        fired = [next(n for n in names if n.lower() == key) for key in fired]
        promoted = []
        for j in logits[f].argsort(descending=True).tolist():
            name = clean_token(decode[allowed[j]])
            if name.lower() not in [p.lower() for p in promoted]:
                promoted.append(name)
            if len(promoted) == n_promoted:
                break
        labels[f] = " · ".join(fired) + " → " + " · ".join(promoted) if fired else NEVER_FIRES
    return labels


@pytest.mark.parametrize("effect", ["steer", "direct"])
def test_labels_match_a_brute_force_computation(scope, windows, effect):
    from scopewidgets.features.logit import steering_jacobian

    dashes = scope.dashboards(corpus=windows, n_examples=N_EXAMPLES, context=CONTEXT, progress=False)
    labels = sw.label_features(dashes, chunk=5, effect=effect, progress=False)  # several feature chunks
    side = (dashes.state.top.entries.ids.shape[1] - 1) // 2  # the top examples' window, centred
    jacobian = steering_jacobian(scope, scope.saes[0], progress=False) if effect == "steer" else None
    expected = brute_force_labels(scope, windows, side, jacobian=jacobian)
    assert labels == expected
    assert NEVER_FIRES in labels.values() and len(set(labels.values())) > 3  # both kinds are exercised
    some = sw.label_features(dashes, features=[7, 2], effect=effect, progress=False)
    assert some == {2: expected[2], 7: expected[7]}


def test_steered_and_direct_labels_differ_and_effect_is_checked(scope, windows):
    dashes = scope.dashboards(corpus=windows, n_examples=N_EXAMPLES, context=CONTEXT, progress=False)
    steer, direct = (sw.label_features(dashes, effect=e, progress=False) for e in ("steer", "direct"))
    assert steer.keys() == direct.keys() and steer != direct  # the later layers change what is promoted
    assert all(
        s.split(" → ")[0] == d.split(" → ")[0] for s, d in zip(steer.values(), direct.values(), strict=True)
    )
    with pytest.raises(ValueError, match="effect must be one of 'steer', 'direct', got 'unembed'"):
        sw.label_features(dashes, effect="unembed")


def test_steering_jacobian_is_cached_and_an_edited_model_gets_a_fresh_one(scope, monkeypatch):
    import copy

    from scopewidgets.core import sites
    from scopewidgets.features import logit

    model = copy.deepcopy(scope.model)
    edited = sw.Scope(model, scope.tokenizer, saes=[scope.saes[0]])
    first = logit.steering_jacobian(edited, edited.saes[0], progress=False)
    assert list((sw.core.paths.cache_dir() / "jacobians").glob("*.safetensors"))
    calls = []
    with monkeypatch.context() as patch:
        patch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1))
        again = logit.steering_jacobian(edited, edited.saes[0], progress=False)
    assert not calls and torch.equal(again, first)
    with torch.no_grad():
        sites.final_norm(model).weight.add_(
            0.5
        )  # after the site: the Jacobian changes, the SAE pass does not
    fresh = logit.steering_jacobian(edited, edited.saes[0], progress=False)
    assert torch.allclose(fresh, logit.steering_jacobian(edited, edited.saes[0], progress=False, cache=False))
    assert not torch.allclose(fresh, first)


def test_stored_jacobians_are_bounded_like_the_dashboard_cache(scope, monkeypatch):
    import copy
    import os

    from scopewidgets.core import sites
    from scopewidgets.features import logit

    folder = sw.core.paths.cache_dir() / "jacobians"
    models = [copy.deepcopy(scope.model) for _ in range(3)]
    for i, model in enumerate(models):  # three models after the site: three Jacobians
        with torch.no_grad():
            sites.final_norm(model).weight.add_(0.1 * i)
    scopes = [sw.Scope(model, scope.tokenizer, saes=[scope.saes[0]]) for model in models]
    logit.steering_jacobian(scopes[0], scopes[0].saes[0], progress=False)
    (entry,) = folder.glob("*.safetensors")
    size = entry.stat().st_size
    monkeypatch.setenv("SCOPEWIDGETS_DASHBOARD_CACHE_MB", str(2.5 * size / 1e6))  # room for two
    logit.steering_jacobian(scopes[1], scopes[1].saes[0], progress=False)
    os.utime(entry, (1, 1))  # the first is the oldest ...
    assert logit.stored_steering_jacobian(scopes[0], scopes[0].saes[0]) is not None  # ... until read again
    logit.steering_jacobian(scopes[2], scopes[2].saes[0], progress=False)
    assert len(list(folder.glob("*.safetensors"))) == 2 and entry.exists()  # the second was evicted
    assert logit.stored_steering_jacobian(scopes[1], scopes[1].saes[0]) is None
    assert logit.stored_steering_jacobian(scopes[2], scopes[2].saes[0]) is not None


def test_scope_steered_logits_read_the_stored_jacobian_or_compute_it_when_asked(scope, monkeypatch):
    from scopewidgets.features import logit

    with pytest.raises(ValueError, match="compute=True"):
        scope.steered_logits(3)  # nothing stored: no minutes-long computation behind the user's back
    with pytest.raises(ValueError, match="feature"):
        scope.steered_logits(24, compute=True)
    top, bottom = scope.steered_logits(3, k=4, compute=True)
    jacobian = logit.stored_steering_jacobian(scope, scope.sae())
    assert jacobian is not None  # computed once, then on disk
    logits = scope.model.lm_head.weight.float() @ (jacobian @ scope.sae().W_dec[3].float())  # brute force
    for shown, picked in ((top, logits.topk(4)), (bottom, (-logits).topk(4))):
        assert [t for t, _ in shown] == scope.token_strings(picked.indices.tolist())
        assert [v for _, v in shown] == pytest.approx(logits[picked.indices].tolist(), rel=1e-4, abs=1e-7)
    monkeypatch.setattr(logit, "steering_jacobian", lambda *a, **k: pytest.fail("recomputed"))
    assert scope.steered_logits(3, k=4) == (top, bottom)


def test_a_scope_is_labelled_through_a_pass_over_its_corpus(scope, windows):
    direct = sw.label_features(scope, corpus=windows)
    dashes = scope.dashboards(corpus=windows, n_quantile_groups=0, progress=False)
    assert direct == sw.label_features(dashes)
    assert all(isinstance(v, str) and v for v in direct.values()) and len(direct) == 24


def test_tokens_are_cleaned_and_words_preferred_where_there_are_enough():
    assert [clean_token(t) for t in (" Paris", "▁Rome", "\n", "\n\n", "  ", "\t", " \n", "a\x08")] == [
        "Paris", "Rome", "(newline)", "(newlines)", "(spaces)", "(tab)", "(whitespace)", "a\\x08",
    ]  # fmt: skip

    class Words:  # 0-399 start a word, 400-449 continue one, 450 is a comma
        def raw(self, t):
            return f" w{chr(97 + t % 26)}{chr(97 + t // 26)}" if t < 400 else "ing" if t < 450 else ","

    ends = torch.tensor([[t, 450] for t in range(400)])  # every word is seen ending a word
    pieces = torch.tensor([[t, 400, -1] for t in range(100)] * 2)  # 0-99 are mostly seen continued
    windows = torch.cat([torch.nn.functional.pad(ends, (0, 1), value=-1), pieces])
    assert candidates(windows, Words()).tolist() == list(range(100, 400))
    few = windows[:, :2][200:400]  # 200 whole words: too few, every token seen competes
    assert candidates(few, Words()).tolist() == [*range(200, 400), 450]


def test_manual_labels_win_over_auto_ones_and_both_survive_a_save(tmp_path):
    model, _ = tiny_gemma3()
    sae = random_sae(model, d_sae=8)
    sae.labels[3] = "hand-written"
    sae.auto_labels.update({3: "auto three", 4: "auto four"})
    loaded = sw.load_sae(sw.save_sae(sae, tmp_path / "sae"))
    assert [loaded.label(f) for f in (3, 4, 5)] == ["hand-written", "auto four", None]
    assert [loaded.label_source(f) for f in (3, 4, 5)] == ["manual", "auto", None]
    assert loaded.placed("resid_post", 0).label_source(4) == "auto"
    loaded.auto_labels.clear()
    sw.save_sae(loaded, tmp_path / "sae")
    assert not (tmp_path / "sae" / "auto_labels.json").exists()  # not another SAE's labels


def test_dashboard_tables_carry_auto_labels_and_no_missing_values(scope, windows):
    dashes = scope.dashboards(corpus=windows, n_examples=N_EXAMPLES, context=CONTEXT, progress=False)
    sae = scope.saes[0]
    sae.auto_labels.update(sw.label_features(dashes))
    try:
        frame = dashes.to_dataframe(logits=False)
        assert not frame["label"].isna().any()
        assert frame["label"].tolist() == [sae.label(f) for f in range(24)]
    finally:
        sae.auto_labels.clear()


def test_the_demo_sae_ships_stats_and_a_label_for_every_feature():
    config = json.loads((DEMO_SAE_DIR / "config.json").read_text())
    d_sae = int(config["width"])
    stats_path, labels_path = DEMO_SAE_DIR / "feature_stats.safetensors", DEMO_SAE_DIR / "auto_labels.json"
    assert stats_path.stat().st_size < 200_000 and labels_path.stat().st_size < 600_000
    with safe_open(str(stats_path), framework="pt") as handle:
        meta = handle.metadata()
        stats = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    assert sorted(stats) == ["density", "max", "mean", "start_density", "start_mean"]  # at text starts too
    for values in stats.values():
        assert values.dtype == torch.float32 and values.shape == (d_sae,) and torch.isfinite(values).all()
    assert (
        int(meta["n_tokens"]) > 100_000 and "default()" in meta["corpus"] and int(meta["n_starts"]) > 10_000
    )
    assert ((stats["start_density"] >= 0) & (stats["start_density"] <= 1)).all()
    density = stats["density"]
    assert ((density >= 0) & (density <= 1)).all() and (stats["max"] >= stats["mean"]).all()
    labels = json.loads(labels_path.read_text(encoding="utf-8"))
    assert sorted(map(int, labels)) == list(range(d_sae))
    assert all(isinstance(v, str) and v.strip() and v.lower() != "nan" for v in labels.values())
    never = torch.tensor([labels[str(f)] == NEVER_FIRES for f in range(d_sae)])
    assert torch.equal(never, density == 0)  # the label agrees with the statistics
    sae = sw.load_sae(DEMO_SAE_DIR)
    assert sae.label_source(0) == "manual" and sae.label_source(2) == "auto"
    assert sae.label(2) == labels["2"]
