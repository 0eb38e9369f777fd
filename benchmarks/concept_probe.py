"""Held-out concept probe: each common word class scored as a token classifier by its best single feature.

For the twelve word classes of `scopewidgets.demo.probe_text.CONCEPT_CLASSES` (cities, countries, months,
colours, family, numbers, weekdays, animals, body parts, food, professions, metals), every token of the
probe sentences (`concept_probe_sentences()`, written for this package) is labelled positive for a class
when it is the first token of a class word (later tokens of a multi-token class word are left out for that
class; BOS is left out).

A feature is scored the way a one-feature probe is (SAEBench's k = 1 sparse probing fits a threshold to
one feature): it predicts "positive" where its activation is above a threshold, chosen from a grid of
`THRESHOLD_QUANTILES` of that feature's positive activations (0 = wherever it fires). The `fires_*`
columns keep the stricter reading, activation > 0 (the JumpReLU's own threshold), with no choice.

Held out: the sentences are split in two (even / odd index); each class's best feature and threshold
(highest F1, the SAE's reserved features excluded) are *chosen on the even half only*, and the F1,
precision and recall are *reported on the odd half*. The baseline does the same with the raw residual
dimensions at the SAE's input site: each dimension, either sign, thresholded at one of a small grid of
quantiles (taken on the even half), the best (dimension, sign, threshold) chosen on the even half and
reported on the odd half. The `*_2fold` columns also choose on the odd half and score on the even one, and
average the two held-out F1s.

    python benchmarks/concept_probe.py                      # the demo SAE
    python benchmarks/concept_probe.py --sae PATH           # an SAE folder loadable by sw.load_sae

From a script: `from concept_probe import probe_f1` (with benchmarks/ on sys.path), then
`probe_f1(sw.demo())` or `probe_f1(scope, sw.load_sae(path))` -> one row per class.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pandas as pd
import torch

import scopewidgets as sw
from scopewidgets.core.corpus import bos_id
from scopewidgets.core.engine import Engine, SaeRef
from scopewidgets.core.hooks import capture
from scopewidgets.demo.probe_text import CONCEPT_CLASSES, concept_labels, concept_probe_sentences

QUANTILES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.985, 0.99, 0.993, 0.996, 0.998)
THRESHOLD_QUANTILES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class ProbeTokens:
    """Every non-BOS token of the probe sentences: `residual [n, d_in]`, `features [n, d_sae]` (activations),
    `labels [n, n_classes]` (1 / 0 / -1 = left out), `selection [n]` (True on the half that chooses)."""

    residual: torch.Tensor
    features: torch.Tensor
    labels: torch.Tensor
    selection: torch.Tensor


@torch.inference_mode()
def probe_tokens(scope: Engine, sae: SaeRef = None, sentences: list[str] | None = None) -> ProbeTokens:
    """Run each sentence (BOS first) to the SAE's site; keep residual, feature activations and labels.

    Sentences of one token length run as one batch (no padding, so each is exactly as if run alone).
    """
    chosen = scope.sae(sae)
    sentences = concept_probe_sentences() if sentences is None else sentences
    labelled = [concept_labels(scope.tokenizer, s) for s in sentences]
    by_length: dict[int, list[int]] = {}
    for index, (ids, _) in enumerate(labelled):
        by_length.setdefault(len(ids), []).append(index)
    residual: list[torch.Tensor] = [torch.empty(0)] * len(sentences)
    for indices in by_length.values():
        batch = torch.tensor([[bos_id(scope.tokenizer), *labelled[i][0]] for i in indices])
        with capture(scope.model, [(chosen.cfg.site, chosen.cfg.layer)]) as acts:
            scope.model(input_ids=batch.to(scope.device), use_cache=False)
        for row, index in enumerate(indices):
            residual[index] = acts[chosen.cfg.site, chosen.cfg.layer][row, 1:].float().cpu()
    x = torch.cat(residual)
    features = chosen.encode(x.to(chosen.device, chosen.dtype)).float().cpu()
    selection = torch.cat([torch.full((len(ids),), i % 2 == 0) for i, (ids, _) in enumerate(labelled)])
    return ProbeTokens(x, features, torch.cat([label for _, label in labelled]), selection)


def f1_scores(fires: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F1, precision and recall `[n_classes, n_predictors]` of every predictor for every class at once.

    `fires [n, n_predictors]` bool; `labels [n, n_classes]` 1 / 0 / -1 (-1: the token is left out for that
    class). A predictor that never fires on a class's scored tokens has precision 0; a class without
    positives has recall 0.
    """
    scored = (labels >= 0).float()
    positive = (labels == 1).float()
    fires = fires.float()
    true_pos = positive.T @ fires
    predicted = scored.T @ fires
    actual = positive.sum(0)[:, None]
    precision = true_pos / predicted.clamp_min(1)
    recall = true_pos / actual.clamp_min(1)
    f1 = 2 * true_pos / (predicted + actual).clamp_min(1)
    return f1, precision, recall


def _best_features(
    features: torch.Tensor, labels: torch.Tensor, reserved: tuple[int, ...], quantiles: tuple[float, ...]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each class's best `(feature, threshold)` on these tokens (reserved features excluded), and its F1
    there. Thresholds: the `quantiles` of each feature's positive activations (0.0 = it fires)."""
    firing = torch.where(features > 0, features, torch.nan)
    best_f1 = torch.full((labels.shape[1],), -1.0)
    best_feature = torch.zeros(labels.shape[1], dtype=torch.long)
    best_threshold = torch.zeros(labels.shape[1])
    for q in quantiles:
        row = torch.nanquantile(firing, q, dim=0).nan_to_num(0.0) if q > 0 else torch.zeros(features.shape[1])
        f1 = f1_scores(features > row, labels)[0]
        if reserved:
            f1[:, list(reserved)] = -1.0
        value, feature = f1.max(dim=1)
        better = value > best_f1
        best_f1 = torch.where(better, value, best_f1)
        best_feature = torch.where(better, feature, best_feature)
        best_threshold = torch.where(better, row[feature], best_threshold)
    return best_feature, best_threshold, best_f1


def _best_dimensions(
    x: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each class's best raw `(column, threshold)` on these tokens, and its F1 there. Columns index
    `[x, -x]` (both signs); thresholds come from the grid of `QUANTILES` of each column."""
    signed = torch.cat([x, -x], dim=1)  # [n, 2 * d_in]
    thresholds = torch.quantile(signed, torch.tensor(QUANTILES), dim=0)  # [n_q, 2 * d_in]
    best_f1 = torch.full((labels.shape[1],), -1.0)
    best_column = torch.zeros(labels.shape[1], dtype=torch.long)
    best_threshold = torch.zeros(labels.shape[1])
    for row in thresholds:
        value, column = f1_scores(signed > row, labels)[0].max(dim=1)
        better = value > best_f1
        best_f1 = torch.where(better, value, best_f1)
        best_column = torch.where(better, column, best_column)
        best_threshold = torch.where(better, row[column], best_threshold)
    return best_column, best_threshold, best_f1


def _fold(tokens: ProbeTokens, choose: torch.Tensor, reserved: tuple[int, ...]) -> dict[str, list]:
    """Choose each class's best feature and best raw dimension on the tokens where `choose`, score both on
    the others."""
    diagonal = torch.arange(tokens.labels.shape[1])
    labels, score = tokens.labels[~choose], ~choose
    chosen = tokens.features[choose], tokens.labels[choose], reserved
    features, thresholds, feature_choice_f1 = _best_features(*chosen, THRESHOLD_QUANTILES)
    f1, precision, recall = f1_scores(tokens.features[score][:, features] > thresholds, labels)
    fires_features, _, _ = _best_features(*chosen, (0.0,))
    fires_f1 = f1_scores(tokens.features[score][:, fires_features] > 0, labels)[0]
    columns, raw_thresholds, raw_choice_f1 = _best_dimensions(tokens.residual[choose], tokens.labels[choose])
    x = tokens.residual[score]
    raw_fires = torch.cat([x, -x], dim=1)[:, columns] > raw_thresholds
    raw_f1, raw_precision, raw_recall = f1_scores(raw_fires, labels)
    d_in = x.shape[1]
    return {
        "positives": (labels == 1).sum(0).tolist(),
        "feature": features.tolist(),
        "threshold": thresholds.tolist(),
        "f1": f1[diagonal, diagonal].tolist(),
        "precision": precision[diagonal, diagonal].tolist(),
        "recall": recall[diagonal, diagonal].tolist(),
        "f1_selection": feature_choice_f1.tolist(),
        "fires_feature": fires_features.tolist(),
        "fires_f1": fires_f1[diagonal, diagonal].tolist(),
        "raw_dim": [f"{'+' if c < d_in else '-'}{c % d_in}" for c in columns.tolist()],
        "raw_f1": raw_f1[diagonal, diagonal].tolist(),
        "raw_precision": raw_precision[diagonal, diagonal].tolist(),
        "raw_recall": raw_recall[diagonal, diagonal].tolist(),
        "raw_f1_selection": raw_choice_f1.tolist(),
    }


def probe_f1(scope: Engine, sae: SaeRef = None, sentences: list[str] | None = None) -> pd.DataFrame:
    """One row per word class: the best single feature and threshold chosen on the even sentences and
    its held-out F1, precision and recall on the odd ones (`f1_selection`: its F1 where it was chosen);
    `fires_*` the same with the threshold fixed at 0 (the feature fires); the best raw residual dimension
    (`raw_*`, `raw_dim` = sign and index). `*_2fold`: the mean of that held-out F1 and the swapped one
    (chosen on the odd sentences, scored on the even), steadier.

    `sae`: an SAE object (need not be registered on `scope`) or index; None = the scope's first SAE.
    Example: `probe_f1(sw.demo())[["f1", "raw_f1"]].mean()`.
    """
    chosen = scope.sae(sae)
    tokens = probe_tokens(scope, chosen, sentences)
    table = pd.DataFrame(_fold(tokens, tokens.selection, chosen.reserved_features))
    swapped = _fold(tokens, ~tokens.selection, chosen.reserved_features)
    table["f1_2fold"] = (table["f1"] + pd.Series(swapped["f1"])) / 2
    table["fires_f1_2fold"] = (table["fires_f1"] + pd.Series(swapped["fires_f1"])) / 2
    table["raw_f1_2fold"] = (table["raw_f1"] + pd.Series(swapped["raw_f1"])) / 2
    table.index = pd.Index(list(CONCEPT_CLASSES), name="class")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sae", help="an SAE folder loadable by sw.load_sae (default: the demo SAE)")
    args = parser.parse_args()
    scope = sw.demo()
    sae = sw.load_sae(args.sae) if args.sae else scope.sae()
    table = probe_f1(scope, sae)
    shown = ["positives", "feature", "threshold", "f1", "precision", "recall", "f1_2fold", "fires_feature",
             "fires_f1_2fold", "raw_dim", "raw_f1", "raw_f1_2fold"]  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
        print(table[shown])
    n_tokens = sum(len(concept_labels(scope.tokenizer, s)[0]) for s in concept_probe_sentences())
    print(f"\nSAE: {args.sae or 'demo SAE'} ({sae.cfg.d_sae} features); {n_tokens} probe tokens")
    print("mean held-out F1         best SAE feature   the same, threshold 0   best raw residual dim")
    for name, suffix in (("chosen even, scored odd", ""), ("2-fold (both ways)", "_2fold")):
        f1, fires, raw = (table[f"{k}{suffix}"].mean() for k in ("f1", "fires_f1", "raw_f1"))
        print(f"  {name:<27}{f1:.3f}{'':14}{fires:.3f}{'':18}{raw:.3f}")


if __name__ == "__main__":
    main()
