"""Held-out probe text: labels, the concept probe's vectorised F1, and the spliced loss on short texts."""

from __future__ import annotations

import math

import pytest
import torch
from repo_module import load_repo_module

from scopewidgets.demo.probe_text import (
    CONCEPT_CLASSES,
    concept_labels,
    concept_probe_sentences,
    short_modern_texts,
    spliced_loss_increase,
)
from scopewidgets.testing import tiny_scope, tiny_tokenizer


@pytest.fixture(scope="module")
def concept_probe():
    return load_repo_module("benchmarks/concept_probe.py")


def test_texts_are_distinct_and_every_class_has_positives() -> None:
    sentences, texts = concept_probe_sentences(), short_modern_texts()
    assert len(set(sentences)) == len(sentences) and len(set(texts)) == len(texts)
    assert not set(sentences) & set(texts)
    tokenizer = tiny_tokenizer()
    positives = sum((concept_labels(tokenizer, s)[1] == 1).sum(0) for s in sentences)
    assert positives.min() >= 40, dict(zip(CONCEPT_CLASSES, positives.tolist(), strict=True))


def test_labels_mark_the_first_token_of_each_class_word() -> None:
    ids, labels = concept_labels(tiny_tokenizer(), "Two cats in Paris")  # one token per byte
    cities, numbers = list(CONCEPT_CLASSES).index("cities"), list(CONCEPT_CLASSES).index("numbers")
    assert len(ids) == len("Two cats in Paris") == labels.shape[0]
    assert labels[:, numbers].tolist()[:4] == [1, -1, -1, 0]
    assert labels[12:, cities].tolist() == [1, -1, -1, -1, -1]
    assert (labels[:, cities][:12] == 0).all()


def test_vectorised_f1_matches_a_brute_force_count(concept_probe) -> None:
    generator = torch.Generator().manual_seed(0)
    fires = torch.rand(200, 7, generator=generator) > 0.6
    labels = torch.randint(-1, 2, (200, 3), generator=generator, dtype=torch.int8)
    fires[:, 6] = False  # a predictor that never fires
    f1, precision, recall = concept_probe.f1_scores(fires, labels)
    for c in range(3):
        for p in range(7):
            scored = labels[:, c] >= 0
            tp = int((fires[:, p] & (labels[:, c] == 1)).sum())
            fp = int((fires[:, p] & (labels[:, c] == 0)).sum())
            fn = int((~fires[:, p] & (labels[:, c] == 1)).sum())
            assert int((fires[:, p] & scored).sum()) == tp + fp
            expected = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
            assert math.isclose(float(f1[c, p]), expected, abs_tol=1e-6)
            assert math.isclose(float(precision[c, p]), tp / (tp + fp) if tp + fp else 0.0, abs_tol=1e-6)
            assert math.isclose(float(recall[c, p]), tp / (tp + fn) if tp + fn else 0.0, abs_tol=1e-6)


def test_best_feature_and_threshold_match_a_brute_force_search(concept_probe) -> None:
    generator = torch.Generator().manual_seed(1)
    features = torch.rand(300, 9, generator=generator).sub(0.5).clamp_min(0) * 10  # about half the rows fire
    labels = torch.randint(0, 2, (300, 2), generator=generator, dtype=torch.int8)
    features[:, 4] = torch.where(labels[:, 0] == 1, features[:, 4] + 2.0, features[:, 4] * 0.3)  # class 0's
    quantiles = (0.0, 0.25, 0.5, 0.75)
    feature, threshold, f1 = concept_probe._best_features(features, labels, (3,), quantiles)
    assert feature[0] == 4 and threshold[0] > 0  # a threshold above 0 separates it better than firing does
    for c in range(2):
        best = (-1.0, None, None)
        for p in range(9):
            if p == 3:  # reserved
                continue
            firing = features[:, p][features[:, p] > 0]
            for q in quantiles:
                t = float(torch.quantile(firing, q)) if q > 0 and len(firing) else 0.0
                value = float(concept_probe.f1_scores(features[:, p : p + 1] > t, labels[:, c : c + 1])[0])
                if value > best[0] + 1e-9:
                    best = (value, p, t)
        assert math.isclose(float(f1[c]), best[0], abs_tol=1e-6)
        assert int(feature[c]) == best[1] and math.isclose(float(threshold[c]), best[2], rel_tol=1e-5)


def test_probe_f1_chooses_on_one_half_and_reports_on_the_other(concept_probe) -> None:
    scope = tiny_scope(d_sae=32)
    sentences = concept_probe_sentences()[:40]
    table = concept_probe.probe_f1(scope, sentences=sentences)
    assert list(table.index) == list(CONCEPT_CLASSES)
    assert table[["f1", "fires_f1", "raw_f1"]].stack().between(0, 1).all()
    assert (table["threshold"] >= 0).all()
    tokens = concept_probe.probe_tokens(scope, sentences=sentences)
    held_out = (tokens.labels[~tokens.selection] == 1).sum(0)
    assert table["positives"].tolist() == held_out.tolist()


def test_spliced_loss_increase_is_spliced_minus_clean_over_each_text() -> None:
    scope = tiny_scope()
    texts = ["The cat sat.", "Hello there, friend!", "x"]  # "x" has one token: skipped
    result = spliced_loss_increase(scope, texts)
    assert result["texts"] == 2 and result["predictions"] == 11 + 19
    assert math.isclose(result["increase"], result["ce_spliced"] - result["ce_clean"], rel_tol=1e-9)
    losses = []  # each text on its own, BOS first; the prediction made from BOS left out
    for text in texts[:2]:
        ids = scope.tokenize(text)[None]
        with torch.inference_mode():
            logits = scope.model(input_ids=ids).logits[0, 1:-1]
        losses.append(torch.nn.functional.cross_entropy(logits, ids[0, 2:], reduction="none"))
    assert math.isclose(result["ce_clean"], float(torch.cat(losses).mean()), rel_tol=1e-5)
    assert result["ce_spliced"] > result["ce_clean"]  # a random SAE loses information
