"""`DashboardWidget`: one feature's dashboard, moving between features of a pass (front end:
js/dashboard.js)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch
import traitlets

from ..core.display import presents
from ..core.effects import similar_features
from ..dashboards.result import DashboardSet
from ..features.columns import known_stats
from ..features.logit import steered_logits, stored_steering_jacobian
from ._base import Widget, shows_errors
from ._dashboard_view import dashboard_state


class DashboardWidget(Widget):
    """Header (feature, label, density, max), activation histogram, top and bottom logits (direct, and by
    steering through the later layers when the model's steering Jacobian is known: the demo ships one,
    `features.logit.steering_jacobian` computes and caches it), top examples as
    token strips shaded by the feature (hover a token for its value), collapsible quantile groups, and
    similar features with their density: click one to open its dashboard here (`feature` follows both
    ways). A similar feature's density comes from the pass when it covers it, else from the SAE's feature
    statistics when they are known without a pass (`features.columns.known_stats`). Examples show
    `context` tokens each side of their peak; the view can widen that up to what the pass kept.

    `opener(feature) -> DashboardSet` opens features outside the pass (every similar feature is then
    clickable). By default, when the pass's corpus can be read again, a click on a similar feature outside
    it runs the same pass for that feature and its own similar features (as the explorer does). For
    composed views, `actions` adds buttons whose clicks call the callbacks registered with `on_action`.

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, tok = tiny_gemma3()
        >>> scope = sw.Scope(model, tok, saes=[random_sae(model, d_sae=16, threshold=0.3)])
        >>> dashes = scope.dashboards(None, corpus=["the cat sat on the mat"] * 8, seq_len=16,
        ...                           cache=False, progress=False)
        >>> view = DashboardWidget(dashes, feature=3)
        >>> view.feature = 5
        >>> view.header["feature"]
        5
    """

    _module = "dashboard"

    feature = traitlets.Int(
        help="The feature shown; set it (or click a similar feature) to open another."
    ).tag(sync=True)
    header = traitlets.Dict(
        help="{feature, label, density, max_activation, mean_activation, n_tokens, source} (None: unknown)."
    ).tag(sync=True)
    histogram = traitlets.Dict(help="{counts, edges}: binary float64 [n_bins] and [n_bins + 1].").tag(
        sync=True
    )
    logits = traitlets.Dict(
        help="{top, bottom}: the direct logit effect, lists of {token, value}, strongest first; {steer_top, "
        "steer_bottom}: the same by steering through the later layers, [] unless the model's steering "
        "Jacobian is known (`features.logit.stored_steering_jacobian`)."
    ).tag(sync=True)
    examples = traitlets.Dict(
        help="Token strips: flat tokens and binary values/special, per-example lengths/focus/max_values/"
        "seq_index/position, groups [{kind, first, count, ...}] and colour limits."
    ).tag(sync=True)
    similar = traitlets.List(
        traitlets.Dict(),
        help="[{feature, cosine, density, label, covered}] (density None: unknown), reserved features left "
        "out; covered ones can be opened here.",
    ).tag(sync=True)
    context = traitlets.Int(
        5, help="Tokens shown each side of an example's peak, two-way (the view offers up to what was kept)."
    ).tag(sync=True)
    offline_features = traitlets.List(
        traitlets.Int(), help="In an exported page, the features it can open without a kernel; [] when live."
    ).tag(sync=True)
    actions = traitlets.List(
        traitlets.Dict(), help="Extra buttons [{name, label}]; a click calls the `on_action` callbacks."
    ).tag(sync=True)

    def __init__(
        self,
        dashes: DashboardSet,
        feature: int | None = None,
        *,
        opener: Callable[[int], DashboardSet] | None = None,
        **kwargs: Any,
    ) -> None:
        self._dashes = dashes
        self._opener = opener if opener is not None else pass_opener(dashes)
        self._action_callbacks: list[Callable[[str, int], None]] = []
        self._steering: tuple[DashboardSet | None, torch.Tensor | None] = (None, None)
        feature = _first_firing(dashes) if feature is None else feature
        super().__init__(**self._state(feature), **kwargs)
        self.on_msg(self._on_message)

    def on_action(self, callback: Callable[[str, int], None]) -> None:
        """Call `callback(name, feature)` when an `actions` button is clicked on the shown feature.

        Example:
            >>> view = DashboardWidget(dashes, actions=[{"name": "steer", "label": "steer"}])  # doctest: +SKIP
            >>> view.on_action(lambda name, feature: print(name, feature))                   # doctest: +SKIP
        """
        self._action_callbacks.append(callback)

    @shows_errors
    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if content.get("kind") == "action":
            for callback in self._action_callbacks:
                callback(str(content["name"]), int(content["feature"]))

    def _pass_for(self, feature: int) -> DashboardSet:
        """The pass that shows `feature`: this one, or (with an opener) the opener's."""
        if self._opener is None or feature in self._dashes:
            return self._dashes
        return self._opener(feature)

    def _state(self, feature: int, dashes: DashboardSet | None = None) -> dict[str, Any]:
        dashes = self._dashes if dashes is None else dashes
        bos = dashes.scope.tokenizer.bos_token_id
        covered = dashes.__contains__ if self._opener is None else _anything
        jacobian = self._jacobian_for(dashes)
        steered = None if jacobian is None else steered_logits(dashes.scope, dashes.sae, feature, jacobian)
        return dashboard_state(dashes[feature], covered, bos, known_stats(dashes.sae, dashes.scope), steered)

    def _jacobian_for(self, dashes: DashboardSet) -> torch.Tensor | None:
        """The model's steering Jacobian when known, looked up once per pass (like the pass itself, a
        snapshot of the model: the lookup hashes the whole model, ~60 ms for the demo)."""
        if self._steering[0] is not dashes:
            self._steering = (dashes, stored_steering_jacobian(dashes.scope, dashes.sae))
        return self._steering[1]

    @traitlets.observe("feature")
    @shows_errors
    def _open_feature(self, change: dict[str, Any]) -> None:
        shown = self.header.get("feature")
        if change["new"] == shown:
            return
        try:
            dashes = self._pass_for(change["new"])
            state = self._state(change["new"], dashes)
        except Exception:
            self.set_trait("feature", shown)  # the kernel and the view keep agreeing on what is shown
            raise
        self._dashes = dashes
        with self.hold_sync():
            for name, value in state.items():
                if name != "feature":
                    setattr(self, name, value)

    def _export_state(self) -> dict[str, Any]:
        """Offline there is no kernel: the page can open the shown feature and its covered similar ones."""
        return {"offline_features": self._offline(), "actions": []}

    def _offline(self) -> list[int]:
        covered = [item["feature"] for item in self.similar if item["covered"]]
        return [self.feature, *(f for f in covered if f in self._dashes)]

    def _export_responses(self) -> dict[str, dict[str, dict[str, Any]]]:
        """What the kernel would send when the page opens one of `_offline()` (precomputed)."""
        replies = {}
        for feature in self._offline():
            state = self._state(feature)
            state.pop("feature")
            replies[json.dumps(feature)] = state
        return {"feature": replies}


def pass_opener(dashes: DashboardSet) -> Callable[[int], DashboardSet] | None:
    """`open(feature)`: the pass of `dashes` run again for `feature` and its similar features (None when
    the pass cannot be run again, e.g. over a one-shot iterator or Gemma Scope evidence files).

    Example:
        >>> pass_opener(dashes)(77).features                       # doctest: +SKIP
        [12, 77, 301, ...]
    """
    rerun = dashes._shared.get("rerun")
    if rerun is None:
        return None

    def open_feature(feature: int) -> DashboardSet:
        feature = dashes.sae.check_feature(feature)  # a bad one is named with the allowed range
        similar, _ = similar_features(dashes.sae, torch.tensor([feature]))
        return rerun([feature, *similar[0].tolist()])

    return open_feature


def _anything(_feature: int) -> bool:
    return True


def _first_firing(dashes: DashboardSet) -> int:
    """The first feature of a pass that fires at all (else the first feature)."""
    peaks = dashes.rows.stats()["max_activation"]
    firing = [f for f, peak in zip(dashes.features, peaks, strict=True) if peak > 0]
    return (firing or dashes.features)[0]


@presents(DashboardSet)
def _widget(dashes: DashboardSet, feature: int | None = None) -> DashboardWidget:
    return DashboardWidget(dashes, feature)
