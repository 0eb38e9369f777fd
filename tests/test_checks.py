import contextlib
import copy

import pytest
import torch

import scopewidgets as sw
from scopewidgets.core import sites
from scopewidgets.core.hooks import hook_count
from scopewidgets.testing import random_sae

PROMPT = "the cat sat on the mat"


@pytest.fixture(scope="module")
def scope64(gemma3):
    """A float64 copy of the tiny model, so finite differences are exact enough to check gradients."""
    return _double_scope(*gemma3)


def _double_scope(model, tok):
    double = copy.deepcopy(model).double()
    for module in double.modules():  # Gemma's RMSNorm computes in float32 even in a float64 model
        if type(module).__name__.endswith("RMSNorm"):
            module.forward = _double_norm(module)
    return sw.Scope(double, tok, saes=[random_sae(double, "resid_post", 1, 24, threshold=0.3).double()])


def _double_norm(norm):
    def forward(x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps) * (1.0 + norm.weight)

    return forward


def _logits_with_codes(scope, ids, edit_codes):
    """Brute force: splice decode(edit_codes(f)) + (h - decode(f)) at the SAE site, return last logits."""
    sae = scope.saes[0]
    layer = sites.decoder_layers(scope.model)[sae.cfg.layer]

    def hook(_m, _a, h):
        codes = sae.encode(h)
        codes[:, 0] = 0  # BOS untouched
        edited = edit_codes(codes.clone())
        return h + (edited - codes) @ sae.W_dec

    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            return scope.model(input_ids=ids[None]).logits[0, -1]
    finally:
        handle.remove()


def test_search_text_and_token_match_brute_force(scope64):
    acts = scope64.activations(PROMPT)
    found = scope64.search(PROMPT, k=5, rank="activation")
    assert found.features == acts.values.max(0).values.topk(5).indices.tolist()
    at_the = scope64.search(PROMPT, k=3, token="t", rank="activation")
    rows = [i for i, t in enumerate(acts.tokens) if t == "t"]
    assert at_the.features == acts.values[rows].max(0).values.topk(3).indices.tolist()
    assert set(at_the.table.token) == {"t"}
    with pytest.raises(ValueError, match="does not occur"):
        scope64.search(PROMPT, token="z")


def test_search_token_finds_a_word_without_its_space_or_split_into_tokens(scope64):
    acts = scope64.activations(PROMPT)  # the tiny tokenizer spells words letter by letter
    cat = scope64.search(PROMPT, k=3, token="cat", rank="activation")
    assert cat.features == acts.values[5:8].max(0).values.topk(3).indices.tolist()
    assert "its tokens 'c' 'a' 't'" in cat.query
    the = scope64.search(PROMPT, k=3, token=" the", rank="activation")  # both "the"s, the first after BOS
    assert the.features == acts.values[[1, 2, 3, 16, 17, 18]].max(0).values.topk(3).indices.tolist()
    for inside in ("at", "he", "ca"):  # part of a word is not the word
        with pytest.raises(ValueError, match="does not occur"):
            scope64.search(PROMPT, token=inside)


def test_token_rows_takes_both_forms_of_a_word():
    from scopewidgets.checks import token_rows

    tokens = ["<bos>", "Paris", " is", " not", " Paris", ",", " Parisian"]
    mask, caption = token_rows(tokens, "Paris")
    assert mask.nonzero().flatten().tolist() == [1, 4] and caption == "'Paris' or ' Paris'"
    mask, caption = token_rows(tokens, " Paris")  # the leading space typed: that form only
    assert mask.nonzero().flatten().tolist() == [4] and caption == "' Paris'"
    with pytest.raises(ValueError, match="its tokens are"):
        token_rows(tokens, "Pari")


def test_search_logit_matches_full_logit_effects(scope64):
    sae = scope64.saes[0]
    effects = (sae.W_dec * sites.final_norm_gain(scope64.model).double()) @ sites.unembedding(scope64.model).T
    target = scope64.tokenizer("m", add_special_tokens=False)["input_ids"][0]
    found = scope64.search(logit="m", k=4, effect="direct")
    live = scope64.feature_stats().density > 0
    scores = effects[:, target].masked_fill(~live, -float("inf"))
    assert found.features == scores.topk(4).indices.tolist()
    assert (found.table.density > 0).all() and found.query.startswith("direct logit effect")
    with pytest.raises(ValueError, match="single token"):
        scope64.search(logit="ma")
    for query in ({"logit": "m"}, {"query": PROMPT}):  # a text query rejects it too
        with pytest.raises(ValueError, match="effect must be one of 'steer', 'direct', got 'lens'"):
            scope64.search(**query, effect="lens")


@contextlib.contextmanager
def _steered(scope, direction):
    """Brute force: `direction` added to the SAE site's output at every non-BOS position while inside
    (steering's `add`, written out as a forward hook), under inference mode."""
    layer = sites.decoder_layers(scope.model)[scope.saes[0].cfg.layer]

    def hook(_m, _a, out):
        h = out[0] if isinstance(out, tuple) else out
        h = torch.cat([h[:, :1], h[:, 1:] + direction], dim=1)
        return (h, *out[1:]) if isinstance(out, tuple) else h

    handle = layer.register_forward_hook(hook)
    try:
        with torch.inference_mode():
            yield
    finally:
        handle.remove()


def _steered_logprobs(scope, windows, targets, direction):
    """Log-probabilities `[n, L - 1, len(targets)]` of `targets` at every prediction after BOS, steered."""
    with _steered(scope, direction):
        logits = scope.model(input_ids=windows, use_cache=False).logits[:, 1:]
    return logits.log_softmax(-1)[..., targets]


@pytest.mark.parametrize("family", ["gemma2", "gemma3", "gemma3_mm"])  # Gemma 2 soft-caps its logits
def test_steering_effects_match_finite_differences_of_steering(family, request):
    from scopewidgets.features.logit import context_windows, steering_effects

    scope = _double_scope(*request.getfixturevalue(family))
    if family == "gemma2":  # a cap the tiny model's logits reach, so that the capping's slope matters
        scope.model.config.final_logit_softcapping = 0.05
    sae = scope.saes[0]
    windows = context_windows(scope.tokenizer, 3, 12)
    assert windows.shape == (3, 12) and (windows[:, 0] == scope.tokenizer.bos_token_id).all()
    targets = [int(windows[0, 5]), 77]  # one token of the text, one other
    effects = steering_effects(scope, sae, targets, windows, joint=True)
    assert effects.shape == (sae.cfg.d_sae, 3)
    eps = 1e-3
    for feature in (0, 5, 17):
        up, down = (_steered_logprobs(scope, windows, targets, e * sae.W_dec[feature]) for e in (eps, -eps))
        per_token = (up.mean((0, 1)) - down.mean((0, 1))) / (2 * eps)
        either = (up.logsumexp(-1).mean() - down.logsumexp(-1).mean()) / (2 * eps)
        expected = [*per_token.tolist(), float(either)]
        assert effects[feature].tolist() == pytest.approx(expected, rel=1e-3, abs=1e-7)


def _steered_mean_hidden(scope, windows, direction):
    """The final hidden state (after the final norm) averaged over every position after BOS, steered."""
    with _steered(scope, direction):
        hidden = sites.text_model(scope.model)(input_ids=windows, use_cache=False).last_hidden_state
    return hidden[:, 1:].mean((0, 1))


@pytest.mark.parametrize("family", ["gemma2", "gemma3", "gemma3_mm"])
def test_steering_jacobian_matches_finite_differences_and_steering_effects(family, request):
    from scopewidgets.features.logit import context_windows, steering_effects, steering_jacobian

    scope = _double_scope(*request.getfixturevalue(family))
    sae = scope.saes[0]
    windows = context_windows(scope.tokenizer, 3, 12)
    jacobian = steering_jacobian(scope, sae, windows, progress=False)
    width = sae.W_dec.shape[1]
    assert jacobian.shape == (width, width) and jacobian.dtype == torch.float32
    eps = 1e-3  # as above: Gemma's attention softmax runs in float32 even in a float64 model
    for j in (0, 7, width - 1):  # columns: one basis direction of the site at a time
        basis = torch.zeros(width, dtype=torch.float64)
        basis[j] = eps
        column = (
            _steered_mean_hidden(scope, windows, basis) - _steered_mean_hidden(scope, windows, -basis)
        ) / (2 * eps)
        # abs 2e-5: the float32 softmax's rounding, divided by eps, reaches ~1.1e-5 on some windows
        assert jacobian[:, j].tolist() == pytest.approx(column.tolist(), rel=1e-3, abs=2e-5)
    if family != "gemma2":  # no soft-capping: logit and log-probability derivatives differ by a shared term
        unembed = sites.unembedding(scope.model).double()
        tokens = [3, 40, 77, 101]
        moved = sae.W_dec.double() @ jacobian.double().T  # [d_sae, d]: the steered change of the hidden state
        logit_change = moved @ unembed[tokens].T
        logprob_change = steering_effects(scope, sae, tokens, windows).double()
        spread = (logit_change - logit_change[:, :1]).flatten().tolist()
        assert (logprob_change - logprob_change[:, :1]).flatten().tolist() == pytest.approx(spread, abs=1e-5)


def test_search_logit_ranks_live_features_by_steering_effect(scope64):
    from scopewidgets.features.logit import steering_effects

    target = scope64.tokenizer("m", add_special_tokens=False)["input_ids"][0]
    found = scope64.search(logit="m", k=5)
    effects = steering_effects(scope64, scope64.saes[0], [target])[:, 0]
    live = scope64.feature_stats().density > 0
    assert found.features == effects.masked_fill(~live, -float("inf")).topk(5).indices.tolist()
    assert found.table.score.tolist() == pytest.approx(effects[found.features].tolist())
    assert found.query.startswith("steering effect on token 'm'")
    with torch.inference_mode():  # a caller's inference mode does not stop the backward pass
        assert scope64.search(logit="m", k=5).features == found.features


def test_ablate_matches_brute_force(scope64):
    ids = scope64.tokenize(PROMPT)
    features = scope64.search(PROMPT, k=2).features
    result = scope64.ablate(PROMPT, features, k=5)

    def zero(codes):
        codes[..., features] = 0
        return codes

    expected = _logits_with_codes(scope64, ids, zero).softmax(-1)
    clean = _logits_with_codes(scope64, ids, lambda c: c).softmax(-1)
    for _, row in result.table.iterrows():
        assert row.p_ablated == pytest.approx(expected[row.token_id].item(), rel=1e-6)
        assert row.p_clean == pytest.approx(clean[row.token_id].item(), rel=1e-6)
    assert result.table.delta.abs().is_monotonic_decreasing
    with pytest.raises(ValueError, match=r"\[0, 24\)"):
        scope64.ablate(PROMPT, [24])


def test_attribution_equals_finite_differences_and_ablation(scope64):
    ids = scope64.tokenize(PROMPT)
    target = scope64.tokenizer("m", add_special_tokens=False)["input_ids"][0]
    before = hook_count(scope64.model)
    result = scope64.attribute(PROMPT, "m", k=8, check=3)
    assert hook_count(scope64.model) == before
    eps = 1e-6
    for _, row in result.table.iterrows():
        f = int(row.feature)

        def scaled(codes, s):
            codes[..., f] *= s
            return codes

        up = _logits_with_codes(scope64, ids, lambda c: scaled(c, 1 + eps))[target]
        down = _logits_with_codes(scope64, ids, lambda c: scaled(c, 1 - eps))[target]
        assert row.attribution == pytest.approx(((up - down) / (2 * eps)).item(), rel=1e-5, abs=1e-9)
    for _, row in result.table.head(3).iterrows():
        f = int(row.feature)

        def zero(codes, f=f):
            codes[..., f] = 0
            return codes

        clean = _logits_with_codes(scope64, ids, lambda c: c)[target]
        assert row.ablation_effect == pytest.approx(
            (clean - _logits_with_codes(scope64, ids, zero)[target]).item(), rel=1e-6
        )
    assert result.table.ablation_effect.iloc[3:].isna().all()
    assert result.table.attribution.abs().is_monotonic_decreasing


def test_attribution_leaves_out_reserved_features_unless_asked(gemma3):
    model, tok = gemma3
    sae = random_sae(model, "resid_post", 1, 24, threshold=0.3)
    sae.cfg.extra["training"] = {"reserved_direction": True}  # features 0 and 1, like the demo's
    with torch.no_grad():
        sae.b_enc[:2] = 50.0  # they fire strongly on every token, so they carry large attributions
    scope = sw.Scope(model, tok, saes=[sae])
    every = scope.attribute(PROMPT, "m", k=24, check=0, include_reserved=True).table.feature.tolist()
    assert sorted(every) == list(range(24)) and {0, 1} & set(every[:6])
    shown = scope.attribute(PROMPT, "m", k=6, check=2).table
    assert shown.feature.tolist() == [f for f in every if f not in (0, 1)][:6]
    assert shown.ablation_effect.iloc[:2].notna().all()


def test_compare_matches_brute_force(scope64):
    a, b = "the cat", "a dog ran"
    result = scope64.compare(a, b, k=4, rank="activation")
    va = scope64.activations(a).values.max(0).values
    vb = scope64.activations(b).values.max(0).values
    assert result.table.feature.tolist() == (vb - va).abs().topk(4).indices.tolist()
    assert result.to_dataframe().difference.tolist() == pytest.approx(
        (vb - va)[result.table.feature].tolist()
    )


def test_results_plot_and_show_as_tables(scope64):
    import matplotlib

    matplotlib.use("Agg")
    result = scope64.ablate(PROMPT, [0, 1], k=3)
    ax = result.plot()
    assert len(ax.patches) == len(result.table)
    assert "<table" in result._repr_html_()


def test_tables_never_show_minus_zero_or_nan() -> None:
    import pandas as pd

    from scopewidgets.checks import Comparison

    frame = pd.DataFrame({"feature": [1, 2], "a": [1.234567, -0.0], "difference": [-3e-8, float("nan")]})
    result = Comparison(frame.assign(label=["", "x"]))
    assert "-0.000000" not in result.to_dataframe().to_string()  # -0.0 is stored as 0.0
    html = result._repr_html_()
    assert "-0.0" not in html and "NaN" not in html and "nan" not in html
    assert "<td>-3e-08</td>" in html and "<td>1.235</td>" in html and "<td>–</td>" in html
    from IPython.lib.pretty import pretty

    text = pretty(result)  # what the notebook shows as text/plain
    assert text.startswith("Comparison\n") and "NaN" not in text and "-0.0" not in text and "-3e-08" in text
