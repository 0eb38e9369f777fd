"""Training in the output metric, the density cap and resumable checkpoints (tiny model, random data)."""

from __future__ import annotations

import itertools

import pytest
import torch

import scopewidgets as sw
from scopewidgets.core.sae import SAEConfig
from scopewidgets.testing import tiny_gemma3
from scopewidgets.training.convert import to_jumprelu
from scopewidgets.training.metric import (
    covariance,
    metric_factor,
    metric_matrix,
    output_fisher,
    typical_rows,
)
from scopewidgets.training.train import fit
from scopewidgets.training.trainer import Normalizer, TopKTrainer


def _data(n: int = 6144, d: int = 32, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    basis = torch.randn(d, d, generator=gen)
    return torch.randn(n, d, generator=gen) @ basis + 3.0


def _stream(x: torch.Tensor, batch: int = 256):
    return (x[i : i + batch] for i in range(0, len(x) - batch + 1, batch))


def test_metric_matrix_spends_the_budget_as_documented() -> None:
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(8, 8, generator=gen), torch.randn(8, 8, generator=gen)
    fisher, cov = a @ a.T, b @ b.T + torch.eye(8)
    for beta in (0.1, 0.5, 1.0):
        q = metric_matrix(fisher, cov, beta)
        assert float(torch.trace(q @ cov)) == pytest.approx(1.0, rel=1e-4)
        assert float(torch.linalg.eigvalsh(q.double()).min()) > 0  # positive definite: Cholesky works
    factor = metric_factor(metric_matrix(fisher, cov, 0.1))
    e = torch.randn(5, 8, generator=gen)
    q = metric_matrix(fisher, cov, 0.1)
    torch.testing.assert_close(
        (e @ factor).pow(2).sum(-1), torch.einsum("ni,ij,nj->n", e, q, e), rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ValueError, match="beta"):
        metric_matrix(fisher, cov, 0.0)


def test_typical_rows_leave_out_massive_tokens() -> None:
    x = _data()
    x[:7] *= 500
    kept = typical_rows(x)
    assert len(kept) == len(x) - 7


def test_folding_a_metric_back_gives_the_same_reconstruction_in_raw_units() -> None:
    """With every threshold at 0, the saved SAE is exactly the trainer's ReLU autoencoder mapped back."""
    x = _data()
    gen = torch.Generator().manual_seed(2)
    m = torch.randn(32, 32, generator=gen) / 6 + torch.eye(32)
    norm = Normalizer.fit(x, metric=m)
    trainer, norm, _ = fit(_stream(x), 32, 96, k=6, tokens=len(x), norm=norm, progress=False)
    sae = to_jumprelu(trainer, norm, [x[:2048]], SAEConfig(d_in=32, d_sae=96, site="resid_post", layer=0))
    assert (sae.W_dec.norm(dim=-1) - 1).abs().max() < 1e-4
    with torch.no_grad():
        sae.threshold.zero_()
        z = norm(x[:512])
        codes = torch.relu(trainer.pre(z))
        expected = (codes @ trainer.W_dec + trainer.b_dec) @ torch.linalg.inv(norm.matrix()) + norm.mean
        got = sae.decode(sae.encode(x[:512]))
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3 * float(x.abs().max()))


def test_density_cap_limits_every_feature_per_batch() -> None:
    trainer = TopKTrainer(16, 64, 8, method="batchtopk")
    z = torch.randn(512, 16)
    z[:, 0] += 5.0  # one direction shared by all tokens: some features would fire on nearly all of them
    trainer.max_density = 0.05
    _, cols, _ = trainer.select(trainer.pre(z))
    counts = torch.bincount(cols, minlength=64)
    assert int(counts.max()) <= 26  # ceil(0.05 * 512)
    trainer.max_density = None
    _, cols, _ = trainer.select(trainer.pre(z))
    assert int(torch.bincount(cols, minlength=64).max()) > 26  # the cap was doing the work


def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path) -> None:
    x = _data(n=4096, d=16)
    settings = dict(k=4, tokens=len(x), dead_after=512, progress=False)
    whole, _, whole_stats = fit(_stream(x), 16, 48, **settings)
    path = tmp_path / "ckpt.pt"
    fit(itertools.islice(_stream(x), 7), 16, 48, checkpoint=path, checkpoint_every=512, **settings)  # stopped
    assert path.is_file()
    resumed, _, stats = fit(_stream(x), 16, 48, checkpoint=path, **settings)
    assert stats == whole_stats
    for name, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="other training settings"):
        fit(_stream(x), 16, 64, checkpoint=path, **settings)


def test_output_fisher_weighs_directions_the_predictions_read() -> None:
    model, _ = tiny_gemma3()
    ids = torch.randint(3, 200, (4, 12), generator=torch.Generator().manual_seed(0))
    fisher = output_fisher(model, ids.split(2), "resid_post", 1, progress=False)
    torch.testing.assert_close(fisher, fisher.T)
    assert float(torch.linalg.eigvalsh(fisher.double()).min()) > -1e-6  # positive semi-definite
    assert float(torch.trace(fisher)) > 0
    q = metric_matrix(fisher, covariance(torch.randn(100, fisher.shape[0])))
    assert torch.isfinite(metric_factor(q)).all()


def test_train_sae_in_the_output_metric_with_a_cap() -> None:
    model, tok = tiny_gemma3()
    sae = sw.train_sae(model, tok, "resid_post", 1, 128, ["the cat sat on the mat. "] * 200, k=8, tokens=8192,
                       batch_size=256, buffer_size=2048, metric="output", metric_windows=4, max_density=0.2,
                       progress=False)  # fmt: skip
    training = sae.cfg.extra["training"]
    assert training["metric"] == "output" and training["max_density"] == 0.2
    with pytest.raises(ValueError, match="metric"):
        sw.train_sae(model, tok, "resid_post", 1, 128, ["x"], metric="kl")
