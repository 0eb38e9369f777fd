"""`ActivationsWidget`: a text's tokens coloured by SAE feature activations (front end: js/activations.js)."""

from __future__ import annotations

import html
import json
from typing import Any

import torch
import traitlets

from ..activations import Activations, ActivationsSet
from ..core.display import presents
from ._base import Widget, shows_errors
from ._serialize import from_binary, to_binary
from ._tokens import PACKED, Ranked, labels_of, limits, ranked_data, unpack_entries, view_data


class ActivationsWidget(Widget):
    """Tokens in reading order coloured by the selected feature (or each token's strongest non-reserved
    feature), the features most specific to the text(s) (`rank="specific"`, see
    `scopewidgets.features.ranking`; or `rank="activation"`), each with its density, and the features of
    the hovered or pinned token in the same order. Reserved features are hidden until `include_reserved`
    (a toggle in the view) shows them.

    Several texts (an `ActivationsSet`) are shown as rows sharing one colour scale. Click a feature to
    select it; `selected_feature` follows both ways.

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, tok = tiny_gemma3()
        >>> scope = sw.Scope(model, tok, saes=[random_sae(model, d_sae=32)])
        >>> view = ActivationsWidget(scope.activations("Hi there"), k=4)
        >>> view.tokens[:3], view.k
        (['<bos>', 'H', 'i'], 4)
        >>> view.selected_feature = view.top_features[0]["feature"]
        >>> view.selected_column["feature"] == view.selected_feature
        True
    """

    _module = "activations"

    tokens = traitlets.List(traitlets.Unicode(), help="Display text of every token, rows concatenated.").tag(
        sync=True
    )
    row_lengths = traitlets.List(
        traitlets.Int(), help="Number of tokens in each row (one row per text)."
    ).tag(sync=True)
    special = traitlets.List(traitlets.Int(), help="Positions of special tokens (BOS), drawn dim.").tag(
        sync=True
    )
    feature_table = traitlets.Dict(help="Distinct features the top-k entries name: binary int32.").tag(
        sync=True
    )
    topk_features = traitlets.Dict(
        help="Per-token top-k features, strongest first: binary uint16 [nnz] ids (or slots of `feature_table`)."
    ).tag(sync=True)
    topk_values = traitlets.Dict(
        help="Each entry as a fraction of its token's strongest value, in 1/255 steps: binary uint8 [nnz]."
    ).tag(sync=True)
    topk_scale = traitlets.Dict(help="Each token's strongest value (exact): binary float32 [n].").tag(
        sync=True
    )
    topk_counts = traitlets.Dict(help="Top-k entries of each token (values > 0 only): binary uint8 [n].").tag(
        sync=True
    )
    top_features = traitlets.List(
        traitlets.Dict(), help="Side list: {feature, max, count, density, score}, best first by `rank`."
    ).tag(sync=True)
    color_values = traitlets.Dict(
        help="Default colouring: each token's strongest non-hidden feature's value, binary float32 [n]."
    ).tag(sync=True)
    color_features = traitlets.Dict(help="Which feature that is, binary int32 [n] (-1: none fires).").tag(
        sync=True
    )
    densities = traitlets.Dict(help="Density of every listed feature, keyed by str(feature).").tag(sync=True)
    reserved = traitlets.List(traitlets.Int(), help="The SAE's reserved features (hidden by default).").tag(
        sync=True
    )
    include_reserved = traitlets.Bool(
        False, help="Show reserved features in lists and colours, two-way."
    ).tag(sync=True)
    rank = traitlets.Enum(
        ["specific", "activation"], "specific", help="Order of the lists: specific first, or raw activation."
    ).tag(sync=True)
    labels = traitlets.Dict(help="Labels of the side list's features, keyed by str(feature).").tag(sync=True)
    color_limits = traitlets.List(
        traitlets.Float(), [0.0, 1.0], help="[lo, hi] of `color_values` (when no feature is selected)."
    ).tag(sync=True)
    selected_feature = traitlets.Int(
        None, allow_none=True, help="Feature colouring the tokens; None (or -1): `color_values`."
    ).tag(sync=True)
    selected_column = traitlets.Dict(
        help="Exact values of the selected feature: {feature, limits, buffer, dtype: float32, shape: [n]}."
    ).tag(sync=True)
    k = traitlets.Int(16, read_only=True, help="Features listed per token.").tag(sync=True)

    def __init__(
        self,
        acts: Activations | ActivationsSet,
        *,
        k: int = 16,
        n_features: int = 50,
        rank: str = "specific",
        include_reserved: bool = False,
        **kwargs: Any,
    ) -> None:
        if isinstance(acts, ActivationsSet):
            self._rows = list(acts.items)
        elif isinstance(acts, Activations):
            self._rows = [acts]
        else:
            raise TypeError(
                f"ActivationsWidget shows Activations or ActivationsSet, got {type(acts).__name__}"
            )
        if not self._rows:
            raise ValueError("An ActivationsSet with no texts has nothing to show")
        self.set_trait("k", k)
        self._n_features = n_features
        ranked = Ranked.of(self._rows, rank, include_reserved)
        super().__init__(
            **view_data(self._rows, k, n_features, ranked),
            rank=ranked.rank,  # "activation" where no statistics could be had
            include_reserved=include_reserved,
            **kwargs,
        )
        self.on_msg(self._send_labels)

    @traitlets.observe("include_reserved", "rank")
    @shows_errors
    def _rerank(self, _change: dict[str, Any]) -> None:
        with self.hold_sync():
            for name, value in self._ranked_data(self.include_reserved).items():
                setattr(self, name, value)

    def _ranked_data(self, include_reserved: bool) -> dict[str, Any]:
        ranked = Ranked.of(self._rows, self.rank, include_reserved)
        return ranked_data(self._rows, self.k, self._n_features, ranked)

    @traitlets.validate("selected_feature")
    def _none_for_minus_one(self, proposal: dict[str, Any]) -> int | None:
        return None if proposal["value"] == -1 else proposal["value"]

    @traitlets.observe("selected_feature")
    @shows_errors
    def _send_column(self, change: dict[str, Any]) -> None:
        feature = change["new"]
        self.selected_column = {} if feature is None else self._column(feature)

    @shows_errors
    def _send_labels(self, _: Any, content: dict[str, Any], buffers: list[bytes]) -> None:
        """Answer the front end's `{kind: "labels", features}` (a hovered token's features) with labels."""
        if content.get("kind") == "labels":
            self.send({"kind": "labels", "labels": labels_of(self._rows[0].sae, content["features"][:256])})

    def _column(self, feature: int) -> dict[str, Any]:
        """The exact activations of `feature` on every token, with its colour limits."""
        feature = self._rows[0].sae.check_feature(feature)
        values = torch.cat([row.values[:, feature] for row in self._rows])
        return {"feature": feature, "limits": limits(values), **to_binary(values, "float32")}

    def listed_features(self) -> list[int]:
        """The features a click in this view can select: the side list's and every token's top-k, ascending.

        Example:
            >>> view.listed_features()[:5]                            # doctest: +SKIP
            [0, 3, 7, 12, 13]
        """
        listed = set(unpack_entries({name: getattr(self, name) for name in PACKED})[0].tolist())
        return sorted(listed | {item["feature"] for item in self.top_features})

    def _export_state(self) -> dict[str, Any]:
        """Offline there is no kernel to ask: the page carries the labels of every feature it lists."""
        return {"labels": labels_of(self._rows[0].sae, self.listed_features())}

    def _export_responses(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Offline, selecting a feature of the side list gets its exact column (others: top-k colours)."""
        features = {item["feature"] for item in self.top_features}
        features |= {item["feature"] for item in self._ranked_data(not self.include_reserved)["top_features"]}
        replies = {json.dumps(f): {"selected_column": self._column(f)} for f in sorted(features)}
        toggle = {json.dumps(flag): self._ranked_data(flag) for flag in (False, True)}
        return {"selected_feature": replies, "include_reserved": toggle}


def summary_text(view: ActivationsWidget, n: int = 5) -> str:
    """One plain-text line describing a view, for front ends that cannot show widgets: the side list's first
    `n` features in its order ("most specific" or "strongest", after `rank`), each with its peak activation.

    Example:
        >>> summary_text(acts.widget())                            # doctest: +SKIP
        'Activations: 6 tokens, SAE resid_post@1 (32 features); most specific: #13 (peak 4.41), #29 (peak 3.91)'
    """
    cfg = view._rows[0].sae.cfg
    texts = f" in {len(view.row_lengths)} texts" if len(view.row_lengths) > 1 else ""
    order = "strongest" if view.rank == "activation" else "most specific"
    listed = ", ".join(f"#{item['feature']} (peak {item['max']:.3g})" for item in view.top_features[:n])
    return (
        f"Activations: {len(view.tokens)} tokens{texts}, SAE {cfg.site}@{cfg.layer} ({cfg.d_sae} features); "
        f"{order}: {listed or 'none fire'}"
    )


def static_html(view: ActivationsWidget, max_tokens: int = 400) -> str:
    """A static, escaped, script-free HTML preview of a view (tokens shaded by their strongest feature),
    what a notebook viewer without the widget manager shows.

    Example:
        >>> "<script" in static_html(acts.widget())                # doctest: +SKIP
        False
    """
    strongest = from_binary(view.color_values)
    special, top, html_rows, start = set(view.special), view.color_limits[1], [], 0
    for length in view.row_lengths:
        spans = []
        for i in range(start, min(start + length, max_tokens)):
            alpha = 0.12 + 0.78 * min(strongest[i] / top, 1.0) if strongest[i] > 0 else 0.0
            style = f"background:rgba(234,88,12,{alpha:.2f})" + (";opacity:.6" if i in special else "")
            spans.append(f'<span style="{style}">{html.escape(view.tokens[i])}</span>')
        html_rows.append(
            f'<div style="white-space:pre-wrap;font-family:monospace;line-height:1.8">{"".join(spans)}</div>'
        )
        start += length
    hidden = len(view.tokens) - min(len(view.tokens), max_tokens)
    note = f" ({hidden} more tokens not shown)" if hidden else ""
    return (
        f'<div class="scopewidgets-static">{"".join(html_rows)}<p style="opacity:.7;font-size:12px">'
        f"{html.escape(summary_text(view))}{note}. Static preview shaded by each token's strongest feature: "
        "the interactive view needs the widget manager and a kernel (or <code>save_html()</code>).</p></div>"
    )


@presents(Activations, ActivationsSet)
def _widget(acts: Activations | ActivationsSet, **options: Any) -> ActivationsWidget:
    return ActivationsWidget(acts, **options)


@presents(Activations, ActivationsSet, role="text")
def _text(acts: Activations | ActivationsSet) -> str:
    return summary_text(acts._view)


@presents(Activations, ActivationsSet, role="html")
def _html(acts: Activations | ActivationsSet) -> str:
    return static_html(acts._view)
