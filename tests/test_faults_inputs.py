"""Bad arguments to every public call: each raises a ValueError (or TypeError) naming the argument and what is
allowed, never a silently wrong result; and the inputs that are allowed keep working."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scopewidgets as sw
from scopewidgets.core import validate as _validate
from scopewidgets.testing import fake_activations, random_sae, tiny_gemma3

pytestmark = pytest.mark.usefixtures("private_cache", "one_torch_thread")
D_SAE = 32
TEXT = "The Eiffel Tower is in Paris"


@pytest.fixture(scope="module")
def scope():
    model, tokenizer = tiny_gemma3()
    return sw.Scope(model, tokenizer, saes=[random_sae(model, "resid_post", 1, d_sae=D_SAE, seed=3)])


BAD = [
    # (call, kwargs, error text)
    ("activations", {"text_or_ids": torch.tensor([[2, 70], [2, 71]])}, r"2-D .*a batch"),
    ("activations", {"text_or_ids": np.array([[2, 70], [2, 71]])}, r"2-D .*a batch"),
    ("activations", {"text_or_ids": torch.tensor([2.0, 70.0])}, r"int token ids, got a 1-D torch.float32"),
    ("activations", {"text_or_ids": [2, 70.5]}, r"item 1 is 70.5 \(float\)"),
    ("activations", {"text_or_ids": [2, True]}, r"item 1 is True"),
    ("activations", {"text_or_ids": ["hello", 7]}, r"text_or_ids\[1\] must be a str, got int"),
    ("activations", {"text_or_ids": [7, "hello"]}, r"text_or_ids\[0\] must be a str, got int"),
    ("activations", {"text_or_ids": None}, r"text_or_ids must be a str.*got None"),
    ("activations", {"text_or_ids": b"hello"}, r"got bytes \(decode bytes"),
    ("activations", {"text_or_ids": range(10, 0)}, r"text_or_ids is empty \(range\(10, 0\)\)"),
    ("activations", {"text_or_ids": "a\ud800b"}, r"lone surrogate '\\ud800' at character 1"),
    ("activations", {"text_or_ids": ""}, r"The text is empty"),
    ("activations", {"text_or_ids": [2, 10**30]}, r"too large for a token id"),
    ("activations", {"text_or_ids": [2, 10**6]}, r"Token id 1000000 is outside the vocabulary"),
    ("activations", {"text_or_ids": 7}, r"text_or_ids must be a str.*got int"),
    ("dashboards", {"features": [1], "shard": (0.5, 2)}, r"shard's rank must be an int in \[0, 1\]"),
    ("dashboards", {"features": [1], "shard": (2, 2)}, r"shard's rank=2 is out of range"),
    ("dashboards", {"features": [1], "shard": (0, 2.0)}, r"shard's world must be an int"),
    ("dashboards", {"features": [1], "shard": 3}, r"shard must be \(rank, world\)"),
    ("dashboards", {"features": [1, 2], "feature_shard": 3}, r"feature_shard must be \(rank, world\)"),
    ("dashboards", {"features": [1, 2], "feature_shard": (0.5, 2)}, r"feature_shard's rank must be an int"),
    ("dashboards", {"features": [10**30]}, r"Feature 10{30} is out of range|out of range"),
    ("dashboards", {"features": torch.tensor([1.0, 2.0])}, r"int ids"),
    ("dashboards", {"features": [1, "a"]}, r"Feature index must be an int"),
    ("dashboards", {"features": range(10, 0)}, r"No features given"),
    ("dashboard", {"feature": 2.5}, r"Feature index must be an int"),
    ("search", {"query": TEXT, "logit": 5}, r"a text query or logit=' token', not both"),
    ("evaluate", {"texts": ["abc def"], "seq_len": 2.5}, r"seq_len must be an int >= 2, got 2.5"),
    ("evaluate", {"texts": ["abc def"], "batch_size": 0}, r"batch_size=0 is out of range"),
    (
        "dashboards",
        {"features": [1], "corpus": ["ok", "a \ud800 b"]},
        r"Corpus item 1 holds a lone surrogate",
    ),
    ("search", {"query": TEXT, "k": 2.5}, r"k must be an int >= 1, got 2.5"),
    ("search", {"query": TEXT, "k": 0}, r"k=0 is out of range"),
    ("search", {"query": b"bytes"}, r"query must be a str, got bytes"),
    ("search", {"logit": 2.7}, r"(logit|token) \(a .*\) must be an int.*got 2.7"),
    ("search", {"logit": 10**30}, r"Token id 10{30} is outside the vocabulary"),
    ("compare", {"prompt_a": TEXT, "prompt_b": None}, r"prompt_b must be a str, got None"),
    ("compare", {"prompt_a": TEXT, "prompt_b": TEXT, "k": "5"}, r"k must be an int >= 1, got '5'"),
    ("ablate", {"prompt": TEXT, "features": [10**30]}, r"Feature 10{30} \(features\[0\]\)|out of range"),
    ("ablate", {"prompt": TEXT, "features": []}, r"features is empty"),
    ("ablate", {"prompt": TEXT, "features": [1.5]}, r"features must be an int"),
    ("ablate", {"prompt": TEXT, "features": "3"}, r"features must be a feature id or a list"),
    ("ablate", {"prompt": TEXT, "features": [1], "k": 1.5}, r"k must be an int"),
    ("attribute", {"prompt": TEXT, "target": 1.5}, r"must be an int"),
    ("attribute", {"prompt": TEXT, "target": 5, "check": -1}, r"check=-1 is out of range"),
    ("steer", {"prompt": TEXT, "features": {10**30: 1.0}}, r"Feature 10{30} is out of range"),
    (
        "steer",
        {"prompt": TEXT, "features": {3: 1.0}, "max_new_tokens": -5},
        r"max_new_tokens=-5 is out of range",
    ),
    ("steer", {"prompt": [[2, 70]], "features": {3: 1.0}}, r"item 0 is \[2, 70\]"),
    ("steering_panel", {"prompt": TEXT, "features": [3], "max_new_tokens": -5}, r"max_new_tokens=-5"),
    (
        "steering_panel",
        {"prompt": TEXT, "features": [3], "max_new_tokens": 2.5},
        r"max_new_tokens must be an int",
    ),
    ("steering_panel", {"prompt": TEXT, "features": [3], "temperature": -1}, r"temperature must be"),
    ("steering_panel", {"prompt": TEXT, "features": [3], "seed": 1.5}, r"seed must be an int"),
    ("steering_panel", {"prompt": TEXT, "features": [10**30]}, r"out of range"),
    ("steering_panel", {"prompt": TEXT, "features": {3: float("nan")}}, r"strength of feature 3"),
    ("steering_panel", {"prompt": None, "features": [3]}, r"prompt must be a str, got None"),
    ("steering_panel", {"prompt": "a\udfffb", "features": [3]}, r"lone surrogate"),
]


def _call(scope, name, kwargs):
    if name == "dashboards":
        kwargs = {"corpus": ["some text here", "and more text"], "cache": False, "progress": False, **kwargs}
    if name == "dashboard":
        kwargs = {"corpus": ["some text here"], **kwargs}
    return getattr(scope, name)(**kwargs)


@pytest.mark.parametrize(("name", "kwargs", "message"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_a_bad_argument_is_refused_by_name(scope, name, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _call(scope, name, kwargs)


def test_load_sae_and_scope_name_a_wrong_kind(scope):
    for bad in (None, 5):
        with pytest.raises(TypeError, match="repo_or_path must be a local folder or a hub repo id"):
            sw.load_sae(bad)
    with pytest.raises(ValueError, match=r"saes\[1\] is a str, expected scopewidgets.SAE"):
        sw.Scope(scope.model, scope.tokenizer, saes=[scope.saes[0], "x"])


def test_a_wrong_kind_is_both_a_type_error_and_a_value_error(scope):
    with pytest.raises(TypeError):
        scope.activations(None)
    with pytest.raises(ValueError):
        scope.activations(b"bytes")


def test_activations_of_nan_are_refused_not_dropped():
    model, tokenizer = tiny_gemma3()
    sae = random_sae(model, "resid_post", 1, d_sae=D_SAE, seed=3)
    scope = sw.Scope(model, tokenizer, saes=[sae])
    with torch.no_grad():
        sae.W_enc[:, 5] = float("nan")
    for call in (
        lambda: scope.activations(TEXT),
        lambda: scope.search(TEXT),
        lambda: scope.dashboards([5, 6], corpus=["some text here"], cache=False, progress=False),
    ):
        with pytest.raises(ValueError, match="NaN or inf"):
            call()
    with torch.no_grad():
        sae.W_enc[:, 5] = 0.0
        sae.threshold[2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        scope.activations(TEXT)


def test_activations_built_by_hand_refuse_nan():
    with pytest.raises(ValueError, match=r"1 NaN/inf value\(s\) \(first: token 1, feature 0\)"):
        fake_activations(["<bos>", "a", "b"], [[0.0, 0.0], [float("nan"), 1.0], [2.0, 0.5]])


# ------------------------------------------------------------------------------------- what keeps working
def test_numpy_and_tensor_integers_count_as_ints(scope):
    ids = scope.tokenize(TEXT)
    want = scope.activations(ids).values
    for same in (ids.tolist(), tuple(ids.tolist()), ids.numpy(), ids.int(), [np.int64(i) for i in ids]):
        assert torch.equal(scope.activations(same).values, want)
    assert len(scope.activations(TEXT).top_features(k=np.int64(3))) <= 3
    assert scope.search(TEXT, k=np.int32(2)).to_dataframe().shape[0] <= 2
    assert scope.ablate(TEXT, np.int64(3)).features == (3,)
    assert scope.ablate(TEXT, np.array([3, 4])).features == (3, 4)
    assert scope.ablate(TEXT, torch.tensor(3)).features == (3,)
    dashes = scope.dashboards(
        np.int64(4), corpus=["some text here"], cache=False, progress=False, shard=(0, 1)
    )
    assert list(dashes.features) == [4]
    sliced = scope.dashboards(
        [4, 5], corpus=["some text"], cache=False, progress=False, feature_shard=(np.int64(1), 2)
    )
    assert list(sliced.features) == [5]
    out = scope.steer(TEXT, {np.int64(3): np.float32(1.0)}, max_new_tokens=np.int64(2))
    assert len(out.steered_tokens) == 2


def test_lists_of_texts_and_panels_keep_working(scope):
    several = scope.activations([TEXT, "Another text"])
    assert len(several.items) == 2 if hasattr(several, "items") else len(several) == 2
    panel = scope.steering_panel(TEXT, features=[3, np.int64(4)], max_new_tokens=4)
    assert panel.features == [3, 4] and panel.max_new_tokens == 4
    assert scope.steering_panel(TEXT).features == []


def test_a_vanishing_temperature_acts_greedy(scope):
    greedy = scope.steer(TEXT, {3: 4.0}, max_new_tokens=6, temperature=0.0)
    tiny = scope.steer(TEXT, {3: 4.0}, max_new_tokens=6, temperature=1e-45, seed=5)
    assert tiny.default_tokens == greedy.default_tokens and tiny.steered_tokens == greedy.steered_tokens


@pytest.mark.parametrize(
    ("value", "minimum", "maximum", "ok"),
    [(3, 1, None, 3), (np.int16(7), 0, 9, 7), (torch.tensor(5), 0, None, 5), (0, 0, 0, 0)],
)
def test_integer_accepts_every_int_kind(value, minimum, maximum, ok):
    assert _validate.integer(value, "n", minimum, maximum) == ok


@pytest.mark.parametrize("value", [True, np.bool_(True), 2.0, "2", None, torch.tensor(2.0), [2]])
def test_integer_refuses_other_kinds(value):
    with pytest.raises(_validate.ArgumentTypeError, match="n must be an int"):
        _validate.integer(value, "n")
