"""The SAE trainer on the tiny random Gemma 3: streaming, shuffling, training, conversion, saving."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import scopewidgets as sw
from scopewidgets.core.hooks import run_truncated
from scopewidgets.core.sae import SAEConfig
from scopewidgets.testing import tiny_gemma3
from scopewidgets.training.convert import from_jumprelu, to_jumprelu
from scopewidgets.training.train import fit, model_activations, shuffled_batches
from scopewidgets.training.trainer import Normalizer, TopKTrainer, dominant_direction

TEXTS = [
    "The quick brown fox jumps over the lazy dog. ",
    "Fellow-Citizens of the Senate and House of Representatives: ",
    "def add(a, b):\n    return a + b\n",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune... ",
] * 60


@pytest.fixture(scope="module")
def tiny() -> tuple:
    return tiny_gemma3()


@pytest.fixture(scope="module")
def acts(tiny: tuple) -> torch.Tensor:
    model, tok = tiny
    return torch.cat(list(model_activations(model, tok, "resid_post", 1, TEXTS, seq_len=64)))


def test_shuffled_batches_emit_every_row_once_in_a_new_order() -> None:
    rows = torch.arange(1000.0).reshape(-1, 1)
    chunks = (rows[i : i + 50] for i in range(0, 1000, 50))
    out = torch.cat(list(shuffled_batches(chunks, batch_size=100, buffer_size=400, seed=1)))
    assert sorted(out.flatten().tolist()) == rows.flatten().tolist()
    assert not torch.equal(out, rows)


def test_shuffled_batches_respect_the_limit_and_check_the_buffer() -> None:
    chunks = [torch.zeros(100, 2)] * 10
    assert sum(len(b) for b in shuffled_batches(chunks, 32, 128, limit=200)) == 192
    with pytest.raises(ValueError, match="buffer_size"):
        next(shuffled_batches(chunks, 64, 100))


def test_streamed_activations_exclude_bos(tiny: tuple, acts: torch.Tensor) -> None:
    model, tok = tiny
    windows = sw.corpus.token_windows(tok, TEXTS, seq_len=64)
    assert acts.shape == (windows.shape[0] * 63, 64)
    bos_act = run_truncated(model, torch.tensor([[tok.bos_token_id]]), [("resid_post", 1)])["resid_post", 1][
        0, 0
    ]
    distance = (acts - bos_act).norm(dim=-1)
    assert distance.min() > 1e-3 * bos_act.norm()


def _fit(acts: torch.Tensor, width: int = 128, tokens: int = 20_000, **kwargs):
    """`fit` on `acts` (64 wide) in batches of 256, k = 8, no progress bar."""
    batches = shuffled_batches([acts], 256, len(acts), limit=tokens)
    return fit(batches, 64, width, k=8, tokens=tokens, progress=False, **kwargs)


def test_fit_reduces_the_reconstruction_error(acts: torch.Tensor) -> None:
    _, _, stats = _fit(acts, tokens=12_000)
    assert stats["tokens"] == 11_776
    assert stats["fvu"] < 0.7 * stats["first_fvu"]
    assert stats["l0"] == pytest.approx(8, abs=0.01)


@pytest.mark.parametrize(
    ("method", "min_jaccard", "max_fvu_gap"), [("batchtopk", 0.9, 0.02), ("topk", 0.6, 0.06)]
)
def test_jumprelu_reproduces_the_topk_codes(
    acts: torch.Tensor, method: str, min_jaccard: float, max_fvu_gap: float
) -> None:
    """Stated tolerance: on training data the JumpReLU codes share >= 90% (BatchTopK) / >= 60% (TopK) of the
    active (token, feature) pairs with the TopK codes, and FVU rises by at most 0.02 / 0.06."""
    trainer, norm, _ = _fit(acts, method=method)
    sample = acts[:4096]
    cfg = SAEConfig(d_in=64, d_sae=128, site="resid_post", layer=1)
    sae = to_jumprelu(trainer, norm, [sample[i : i + 1024] for i in range(0, 4096, 1024)], cfg)
    with torch.no_grad():
        topk = trainer.dense_codes(norm(sample)) / norm.scale  # raw units, like the SAE's codes
    jump = sae.encode(sample)
    jaccard = ((topk > 0) & (jump > 0)).sum() / ((topk > 0) | (jump > 0)).sum()
    variance = (sample - sample.mean(0)).pow(2).sum()

    def fvu(codes: torch.Tensor) -> float:
        return ((sample - sae.decode(codes)).pow(2).sum() / variance).item()

    assert jaccard >= min_jaccard
    assert fvu(jump) <= fvu(topk) + max_fvu_gap
    assert (sae.W_dec.norm(dim=-1) - 1).abs().max() < 1e-4  # unit decoder rows, in raw space


def test_auxk_revives_dead_features(acts: torch.Tensor) -> None:
    never_fire = {}
    for aux_k in (0, None):
        trainer = TopKTrainer(64, 256, 8, method="topk")
        with torch.no_grad():
            trainer.b_enc[:128] = -3.0  # half the features start dead
        trainer, norm, _ = _fit(acts, 256, aux_k=aux_k, dead_after=2000, trainer=trainer)
        with torch.no_grad():
            codes = trainer.dense_codes(norm(acts[:8192]))
        never_fire[aux_k] = ((codes > 0).sum(0) == 0).float().mean().item()
    assert never_fire[0] > 0.3
    assert never_fire[None] < never_fire[0] / 2


def test_train_sae_saves_a_gemma_scope_2_file_that_round_trips(tiny: tuple, tmp_path) -> None:
    model, tok = tiny
    sae = sw.train_sae(
        model,
        tok,
        "resid_post",
        2,
        128,
        TEXTS,
        k=8,
        tokens=8192,
        seq_len=64,
        batch_size=512,
        buffer_size=2048,
        matryoshka=(16, 64),
        save_to=tmp_path,
        progress=False,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "params.safetensors"]
    loaded = sw.load_sae(tmp_path)
    assert (loaded.cfg.site, loaded.cfg.layer, loaded.cfg.architecture) == ("resid_post", 2, "jumprelu")
    assert loaded.cfg.extra["training"]["tokens"] == 8192
    assert loaded.cfg.extra["training"]["k"] == 8
    assert loaded.cfg.extra["training"]["matryoshka"] == [16, 64]
    x = run_truncated(model, torch.tensor([[2, 70, 80, 90, 100]]), [("resid_post", 2)])["resid_post", 2][
        0, 1:
    ]
    torch.testing.assert_close(loaded.encode(x), sae.encode(x))
    assert (loaded.encode(x) > 0).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, "width"),
        ({"k": 500}, r"k must be an int in \[1, 128\]"),
        ({"method": "relu"}, "method must be one of"),
        ({"tokens": 10}, "tokens"),
        ({"layer": 9}, r"Layer 9 is out of range: this model has layers 0..3"),
        ({"site": "resid_pre"}, "Unknown site"),
        ({"matryoshka": (64, 32)}, r"Matryoshka prefixes must increase strictly within \[1, 127\]"),
    ],
)
def test_train_sae_rejects_bad_settings(tiny: tuple, kwargs: dict, message: str) -> None:
    model, tok = tiny
    args = {"site": "resid_post", "layer": 1, "width": 128, **kwargs}
    site, layer, width = args.pop("site"), args.pop("layer"), args.pop("width")
    with pytest.raises(ValueError, match=message):
        sw.train_sae(model, tok, site, layer, width, TEXTS, progress=False, **args)


@pytest.mark.parametrize("method", ["topk", "batchtopk"])
def test_sparse_encoder_gradients_equal_the_dense_ones(method: str) -> None:
    torch.manual_seed(0)
    trainer = TopKTrainer(16, 64, 4, method=method)
    with torch.no_grad():
        trainer.b_dec.normal_()
        trainer.b_enc.normal_(0, 0.1)
    z = torch.randn(32, 16)
    dead = torch.zeros(64, dtype=torch.bool)
    dead[:10] = True
    out = trainer.losses(z, dead, aux_k=3)
    (out["fvu"] + out["aux"]).backward()
    sparse_grads = [p.grad.clone() for p in trainer.parameters()]
    trainer.zero_grad()
    pre = (z - trainer.b_dec) @ trainer.W_enc + trainer.b_enc  # the dense reference, same selection
    rows, cols = out["rows"], out["cols"]
    codes = torch.zeros_like(pre).index_put((rows, cols), pre[rows, cols])
    error = z - (codes @ trainer.W_dec + trainer.b_dec)
    fvu = error.pow(2).sum(-1).mean() / (z - z.mean(0)).pow(2).sum(-1).mean()
    top = pre.detach()[:, :10].topk(3, dim=-1).indices
    aux_codes = torch.zeros_like(pre).scatter(1, top, pre.gather(1, top))
    target = error.detach()
    aux = (target - aux_codes @ trainer.W_dec).pow(2).sum(-1).mean() / target.pow(2).sum(-1).mean()
    (fvu + aux).backward()
    for sparse, param in zip(sparse_grads, trainer.parameters(), strict=True):
        torch.testing.assert_close(sparse, param.grad, atol=1e-5, rtol=1e-4)


def test_massive_activations_get_reserved_features_and_light_up_no_others(acts: torch.Tensor) -> None:
    """A few tokens with a huge value along a direction ordinary tokens also use (Gemma's massive
    activations): with the reserved pair, the JumpReLU SAE encodes them like ordinary tokens."""
    gen = torch.Generator().manual_seed(0)
    u = torch.zeros(64)
    u[5] = 1.0
    x = acts + torch.randn(len(acts), 1, generator=gen) * 3 * acts.std() * u  # ordinary tokens vary along u
    massive = torch.zeros(len(x), dtype=torch.bool)
    massive[torch.randperm(len(x), generator=gen)[:40]] = True
    x[massive] += 40 * x.norm(dim=-1).median() * u
    sample = x[:8192]
    norm = Normalizer.fit(sample)
    direction = dominant_direction(norm(sample))
    assert direction is not None and direction[5] > 0.99
    lit = {}
    for reserve in (False, True):
        trainer, norm, _ = fit(shuffled_batches([x], 256, len(x), seed=1), 64, 128, k=8, tokens=len(x),
                               norm=norm, dominant=direction if reserve else None, progress=False)  # fmt: skip
        cfg = SAEConfig(d_in=64, d_sae=128, site="resid_post", layer=1)
        sae = to_jumprelu(trainer, norm, sample.split(2048), cfg)
        lit[reserve] = (sae.encode(x[massive]) > 0).sum(-1).float().mean().item()
        assert ("reserved" in (sae.label(0) or "")) == reserve
        if reserve:
            codes = sae.encode(x)
            assert (codes[:, :2] > 0).any(-1).float().mean() > 0.95  # the pair fires on (nearly) every token
            assert (sae.W_enc[:, 2:].T @ direction).abs().max() < 1e-4  # the other encoders ignore it
            error = (x[massive] - sae.decode(sae.encode(x[massive]))).norm(dim=-1)
            assert (error / x[massive].norm(dim=-1)).max() < 0.1
    assert lit[False] > 40
    assert lit[True] < 20


@pytest.mark.parametrize("reserve", [False, True])
def test_a_finished_sae_goes_back_to_a_trainer_in_another_normalized_space(
    acts: torch.Tensor, reserve
) -> None:
    """`from_jumprelu` inverts `to_jumprelu` for any normalizer: converting back gives the same raw weights,
    the trainer's pre-activations are the SAE's up to one positive factor per feature, a reserved pair stays
    reserved, and training goes on from it (lower error than a fresh trainer after the same steps)."""
    sample = acts[:4096]
    dominant = dominant_direction(Normalizer.fit(sample)(sample)) if reserve else None
    if reserve and dominant is None:
        dominant = torch.nn.functional.normalize(
            torch.randn(64, generator=torch.Generator().manual_seed(3)), dim=0
        )
    trainer, norm, _ = _fit(acts, tokens=8_000, dominant=dominant)
    cfg = SAEConfig(d_in=64, d_sae=128, site="resid_post", layer=1)
    sae = to_jumprelu(trainer, norm, sample.split(2048), cfg)
    gen = torch.Generator().manual_seed(1)
    metric = torch.eye(64) + 0.3 * torch.randn(64, 64, generator=gen) / 8  # another metric, well conditioned
    other = Normalizer.fit(acts[4096:8192], metric=metric)
    back = from_jumprelu(sae, other, k=8)
    assert back.n_reserved == (2 if reserve else 0)
    again = to_jumprelu(back, other, sample.split(2048), cfg)
    learned = slice(2 if reserve else 0, None)  # a reserved pair's encoder is re-derived in the new space
    for name, part in (("W_enc", (slice(None), learned)), ("b_enc", learned), ("W_dec", ...), ("b_dec", ...)):
        got, want = getattr(again, name)[part], getattr(sae, name)[part]
        assert torch.allclose(got, want, atol=2e-4, rtol=1e-4), name
    with torch.no_grad():
        raw = (sample @ sae.W_enc + sae.b_enc)[:, learned]
        pre = back.pre(other(sample))[:, learned]
        factor = (raw * pre).sum(0) / (pre * pre).sum(0)  # least squares, per feature
    assert bool((factor > 0).all())
    assert (pre * factor - raw).abs().max() < 1e-4 * raw.abs().max()
    continued = fit(shuffled_batches([acts], 256, len(acts), limit=2_048, seed=5), 64, 128, k=8, tokens=2_048,
                    norm=other, trainer=back, progress=False)[2]  # fmt: skip
    fresh = fit(shuffled_batches([acts], 256, len(acts), limit=2_048, seed=5), 64, 128, k=8, tokens=2_048,
                norm=other, progress=False)[2]  # fmt: skip
    assert continued["fvu"] < 0.8 * fresh["fvu"]


def test_from_jumprelu_refuses_an_sae_it_cannot_invert(tiny: tuple) -> None:
    from scopewidgets.testing import random_sae

    sae = random_sae(tiny[0], "resid_post", 1, d_sae=16)
    sae.cfg = dataclasses.replace(sae.cfg, apply_b_dec_to_input=True)
    with pytest.raises(ValueError, match="apply_b_dec_to_input=True"):
        from_jumprelu(sae, Normalizer(torch.zeros(sae.cfg.d_in), 1.0), k=4)


def test_matryoshka_loss_is_the_mean_of_the_prefix_errors_with_the_dense_gradients() -> None:
    torch.manual_seed(1)
    trainer = TopKTrainer(16, 64, 6, method="batchtopk", prefixes=(8, 24))
    with torch.no_grad():
        trainer.b_dec.normal_()
        trainer.b_enc.normal_(0, 0.1)
    z = torch.randn(40, 16)
    out = trainer.losses(z, torch.zeros(64, dtype=torch.bool), aux_k=0)
    out["recon"].backward()
    sparse_grads = [p.grad.clone() for p in trainer.parameters()]
    trainer.zero_grad()
    pre = (z - trainer.b_dec) @ trainer.W_enc + trainer.b_enc
    codes = torch.zeros_like(pre).index_put((out["rows"], out["cols"]), pre[out["rows"], out["cols"]])
    variance = (z - z.mean(0)).pow(2).sum(-1).mean()
    fvus = [
        (z - (codes[:, :m] @ trainer.W_dec[:m] + trainer.b_dec)).pow(2).sum(-1).mean() / variance
        for m in (8, 24, 64)
    ]
    torch.testing.assert_close(out["fvu"], fvus[-1])
    torch.testing.assert_close(out["recon"], torch.stack(fvus).mean())
    assert len({round(f.item(), 4) for f in fvus}) == 3  # three distinct terms, not one counted thrice
    torch.stack(fvus).mean().backward()
    for sparse, param in zip(sparse_grads, trainer.parameters(), strict=True):
        torch.testing.assert_close(sparse, param.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("prefixes", [(0, 8), (8, 8), (16, 8), (64,), (8.0,), (True,)])
def test_matryoshka_prefixes_are_checked(prefixes: tuple) -> None:
    with pytest.raises(ValueError, match="Matryoshka prefixes"):
        TopKTrainer(16, 64, 4, prefixes=prefixes)


def test_matryoshka_first_features_reconstruct_on_their_own(acts: torch.Tensor) -> None:
    """Its first 16 features alone reconstruct far better than a flat SAE's first 16; the whole width
    stays close to the flat SAE's."""

    def prefix_fvu(trainer: TopKTrainer, norm: Normalizer, m: int) -> float:
        z = norm(acts[:4096])
        with torch.no_grad():
            codes = trainer.dense_codes(z)
            z_hat = codes[:, :m] @ trainer.W_dec[:m] + trainer.b_dec
        return ((z - z_hat).pow(2).sum() / (z - z.mean(0)).pow(2).sum()).item()

    flat, flat_norm, _ = _fit(acts, 128, tokens=16_000)
    nested, nested_norm, stats = _fit(acts, 128, tokens=16_000, prefixes=(16, 48))
    assert prefix_fvu(nested, nested_norm, 16) < 0.8 * prefix_fvu(flat, flat_norm, 16)
    assert prefix_fvu(nested, nested_norm, 128) < prefix_fvu(flat, flat_norm, 128) + 0.1
    assert nested.prefixes == (16, 48) and stats["tokens"] > 10_000
