from __future__ import annotations

import copy
import pickle

import pytest
import torch

import scopewidgets as sw
from scopewidgets.testing import fake_activations
from scopewidgets.widgets._serialize import from_binary
from scopewidgets.widgets._tokens import PACKED, display_text, pack_entries, topk_entries, unpack_entries
from scopewidgets.widgets.activations import ActivationsWidget


def decode_topk(view: ActivationsWidget) -> list[list[tuple[int, float]]]:
    features, values, counts = unpack_entries({name: getattr(view, name) for name in PACKED})
    features, values = features.tolist(), values.tolist()
    out, start = [], 0
    for count in counts.tolist():
        out.append(list(zip(features[start : start + count], values[start : start + count], strict=True)))
        start += count
    return out


@pytest.mark.parametrize(
    ("raw", "special", "shown"),
    [(" ", False, "·"), ("\n\n", False, "↵\n↵\n"), ("\t", False, "⇥"), (" the", False, " the"),
     (".\n", False, ".↵\n"), ("", False, "∅"), ("<bos>", True, "<bos>"), ("<b>x</b>", False, "<b>x</b>")],
)  # fmt: skip
def test_display_text_makes_whitespace_visible(raw: str, special: bool, shown: str) -> None:
    assert display_text(raw, special) == shown


def test_topk_entries_match_a_dense_top_k() -> None:
    values = torch.relu(torch.randn(20, 50))
    values[3] = 0
    features, kept, counts = topk_entries(values, k=6)
    start = 0
    for row, count in zip(values, counts.tolist(), strict=True):
        top_values, top_features = row.topk(6)
        positive = top_values > 0
        assert count == int(positive.sum())
        assert features[start : start + count].tolist() == top_features[positive].tolist()
        assert torch.equal(kept[start : start + count], top_values[positive])
        start += count
    assert counts[3] == 0 and start == len(features) == len(kept)


@pytest.mark.parametrize("d_sae", [50, 2**20])
def test_packed_entries_round_trip_within_quantization(d_sae: int) -> None:
    values = torch.relu(torch.randn(30, 50)) * 7
    features, kept, counts = topk_entries(values, k=16)
    packed = pack_entries(features * (d_sae // 50), kept, counts, d_sae)
    got_features, got_values, got_counts = unpack_entries(packed)
    assert got_counts.tolist() == counts.tolist()
    assert got_features.tolist() == (features * (d_sae // 50)).tolist()
    firsts = (torch.cumsum(counts, 0) - counts)[counts > 0]
    assert got_values[firsts.numpy()].tolist() == kept[firsts].tolist()  # each token's strongest is exact
    owner = torch.repeat_interleave(torch.arange(30), counts)
    scale = kept[firsts][owner]
    assert abs(torch.tensor(got_values) - kept).max() <= (scale / 510).max() + 1e-6
    assert packed["topk_values"]["dtype"] == "uint8" and packed["topk_features"]["dtype"] == "uint16"
    assert bool(packed["feature_table"]) == (d_sae > 65536)


def test_widget_data_matches_the_activations(scope: sw.Scope) -> None:
    acts = scope.activations("The cat sat.\n")
    view = acts.widget(k=5, rank="activation")
    assert view.k == 5
    assert view.tokens[0] == "<bos>" and view.special == [0] and view.tokens[-1] == "↵\n"
    assert view.row_lengths == [len(acts)]
    for position, entries in enumerate(decode_topk(view)):
        top = acts.values[position].topk(5)
        expected = [(int(f), float(v)) for v, f in zip(*top, strict=True) if v > 0]
        assert [f for f, _ in entries] == [f for f, _ in expected]
        assert [v for _, v in entries] == pytest.approx(
            [v for _, v in expected], rel=0.01, abs=expected[0][1] / 500 if expected else 0
        )
    table = acts.top_features(10, rank="activation")
    assert [item["feature"] for item in view.top_features[:10]] == table["feature"].tolist()
    assert [item["count"] for item in view.top_features[:10]] == table["n_active"].tolist()
    assert view.color_limits == pytest.approx([0.0, float(acts.values.max())])
    listed = {item["feature"] for item in view.top_features}
    assert view.labels == {str(f): label for f, label in scope.saes[0].labels.items() if f in listed}


def test_labels_of_hovered_features_are_sent_on_request(
    scope: sw.Scope, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = scope.activations("Labels").widget()
    sent: list[dict] = []
    monkeypatch.setattr(view, "send", lambda content, buffers=None: sent.append(content))
    view._send_labels(view, {"kind": "labels", "features": [3, 4, 10]}, [])
    assert sent == [{"kind": "labels", "labels": {"3": "third <b>feature</b>", "10": "tenth"}}]
    view._send_labels(view, {"kind": "labels", "features": ["x"]}, [])
    assert "invalid literal" in view.error and len(sent) == 1  # shown in the widget, not raised


def test_selecting_sends_the_exact_column(scope: sw.Scope) -> None:
    acts = scope.activations("Exact values, please")
    view = acts.widget(k=1)  # top-1 lists leave most of any feature's activations out
    feature = view.top_features[1]["feature"]
    view.selected_feature = feature
    column = view.selected_column
    assert column["feature"] == feature and column["dtype"] == "float32"
    assert from_binary(column).tolist() == pytest.approx(acts.values[:, feature].tolist())
    assert column["limits"] == pytest.approx([0.0, float(acts.values[:, feature].max())])
    view.selected_feature = -1
    assert view.selected_feature is None and view.selected_column == {}


def test_out_of_range_selection_is_shown_and_the_widget_recovers(scope: sw.Scope) -> None:
    view = scope.activations("Hello").widget()
    view.selected_feature = 10_000
    assert "Feature 10000 is out of range" in view.error and "[0, 64)" in view.error
    view.selected_feature = 2
    assert view.error == "" and view.selected_column["feature"] == 2


def test_several_texts_are_rows_sharing_one_scale(scope: sw.Scope) -> None:
    rows = scope.activations(["First text", "Second, longer text"])
    view = rows.widget()
    assert view.row_lengths == [len(rows[0]), len(rows[1])]
    assert view.special == [0, len(rows[0])]
    both = torch.cat([rows[0].values, rows[1].values])
    assert view.color_limits == pytest.approx([0.0, float(both.max())])
    view.selected_feature = 7
    assert from_binary(view.selected_column).tolist() == pytest.approx(both[:, 7].tolist())


def test_mimebundle_has_widget_text_and_escaped_static_html() -> None:
    acts = fake_activations(["<bos>", "<b>x</b>", " "], [[0, 0], [2.0, 0], [0, 1.0]], labels={0: "bold"})
    data, _ = acts._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == acts._view.model_id
    assert (
        data["text/plain"].startswith("Activations: 3 tokens")
        and "strongest: #0 (peak 2)" in data["text/plain"]
    )
    assert "&lt;b&gt;x&lt;/b&gt;" in data["text/html"] and "<b>" not in data["text/html"]
    assert "<script" not in data["text/html"] and "·" in data["text/html"]
    assert acts._view is acts._view  # built once


def test_bad_arguments_raise(scope: sw.Scope) -> None:
    acts = scope.activations("Hi")
    with pytest.raises(ValueError, match=r"k must be in \[1, 255\]"):
        acts.widget(k=0)
    with pytest.raises(TypeError, match="colour"):
        ActivationsWidget(acts, colour="red")
    other = fake_activations(["<bos>", "x"], [[0.0] * 3, [1.0] * 3])
    with pytest.raises(ValueError, match="same SAE"):
        ActivationsWidget(sw.ActivationsSet((acts, other)))


def test_a_displayed_result_still_pickles_and_copies() -> None:
    acts = fake_activations(["<bos>", "a"], [[0.0, 0.0], [1.0, 2.0]])
    acts._repr_mimebundle_()
    for clone in (pickle.loads(pickle.dumps(acts)), copy.deepcopy(acts)):
        assert clone.tokens == acts.tokens and torch.equal(clone.values, acts.values)
        assert "_view" not in clone.__dict__ and clone._view is not acts._view


def test_text_summary_names_the_side_lists_order(scope: sw.Scope) -> None:
    from scopewidgets.widgets.activations import summary_text

    acts = scope.activations("The cat sat on the mat")
    for rank, word in (("specific", "most specific"), ("activation", "strongest")):
        view = acts.widget(rank=rank)
        listed = ", ".join(f"#{item['feature']} (peak {item['max']:.3g})" for item in view.top_features[:3])
        assert summary_text(view, 3).endswith(f"; {word}: {listed}")
    by_peak = acts.values.amax(0)
    shown = [item["feature"] for item in acts.widget(rank="activation").top_features[:3]]
    assert shown == [f for f in by_peak.argsort(descending=True).tolist()][:3]
