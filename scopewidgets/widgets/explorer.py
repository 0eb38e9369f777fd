"""`ExplorerWidget`: one view to type a text, see its tokens, open a feature's dashboard and steer with it.

It is an `ipywidgets.VBox` of the package's own widgets, wired in Python: `ExplorerControls` (text box,
search box, status; front end js/explorer.js), a `SearchWidget` (search results), an `ActivationsWidget`
(the tokens), a `DashboardWidget` and a `SteeringPanel`. One selection (`selected_feature`) is kept equal
in every part; dashboards come from `DashboardLibrary` passes over a bounded corpus.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets
import traitlets

from ..dashboards.library import DashboardLibrary
from ._base import Widget, shows_errors
from .activations import ActivationsWidget
from .dashboard import DashboardWidget
from .search import SearchWidget

if TYPE_CHECKING:
    from ..core.engine import Engine
    from ..core.sae import SAE
    from .steering import SteeringPanel

STEER = {"name": "steer", "label": "steer with this feature"}
START = "Type a text and press Enter to see its tokens; or search for features."
CLICK = "Click a feature (side list, or a token's list) to open its dashboard."
STEERING_TITLE = 'Steering: the features added with "steer"; Generate compares default and steered text'


class ExplorerControls(Widget):
    """The explorer's own controls: text box, search box, status line and error banner."""

    _module = "explorer"
    text = traitlets.Unicode("", help="The text shown as tokens (submitted with Enter), two-way.").tag(
        sync=True
    )
    query = traitlets.Unicode("", help="The search query (submitted with Enter), two-way.").tag(sync=True)
    search_by = traitlets.Enum(["text", "logit"], "text", help="Search mode, two-way.").tag(sync=True)
    status = traitlets.Unicode("", help="What the explorer is doing, or what to do next; from Python.").tag(
        sync=True
    )


class ExplorerWidget(ipywidgets.VBox):
    """Type a text -> its tokens -> click a feature -> its dashboard -> "steer" -> a steering slider.

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, tok = tiny_gemma3()
        >>> scope = sw.Scope(model, tok, saes=[random_sae(model, d_sae=32, threshold=0.3)])
        >>> ex = scope.explorer("The cat sat", corpus=["the cat sat on the mat"] * 8, max_windows=4,
        ...                     seq_len=16, cache=False)
        >>> ex.selected_feature = ex.tokens.top_features[0]["feature"]
        >>> ex.dashboard.header["feature"] == ex.selected_feature
        True
        >>> ex.steer_features = [ex.selected_feature]
        >>> ex.steering.features == ex.steer_features
        True
    """

    text = traitlets.Unicode("", help="The text shown as tokens; set it (or type it) to show another.")
    selected_feature = traitlets.Int(
        None, allow_none=True, help="The feature selected in any part; its dashboard is shown (None: none)."
    )
    steer_features = traitlets.List(traitlets.Int(), help="The steering panel's features (steer adds one).")
    query = traitlets.Unicode("", help="The search query; set it (or type it) to search.")
    search_by = traitlets.Enum(["text", "logit"], "text", help="'text': features firing on the query; "
                               "'logit': features promoting the query token.")  # fmt: skip
    status = traitlets.Unicode("", help="What the explorer is doing, or what to do next.")
    error = traitlets.Unicode("", help="Message of the last failure, shown inline; '' if none.")

    def __init__(
        self,
        scope: Engine,
        text: str | None = None,
        *,
        sae: SAE,
        corpus: Any = None,
        max_windows: int = 32,
        k: int = 16,
        n_features: int = 50,
        n_results: int = 20,
        prebuild: bool = True,
        **settings: Any,
    ) -> None:
        self._error_source: str | None = None
        self._scope, self._sae, self._k, self._n_features = scope, sae, k, n_features
        self._n_results, self._prebuild = n_results, prebuild
        self.library = DashboardLibrary(scope, sae, corpus, max_windows=max_windows, settings=settings,
                                        report=lambda message: setattr(self, "status", message))  # fmt: skip
        self.controls = ExplorerControls()
        self.search_results = SearchWidget(layout=ipywidgets.Layout(display="none"))
        self.tokens: ActivationsWidget | None = None
        self.dashboard: DashboardWidget | None = None
        self.steering: SteeringPanel | None = None
        self._unlink_tokens: Callable[[], None] = lambda: None
        self._shown_text = ""
        self._last_search = ("", "text")
        self._steering_title = ipywidgets.Label(STEERING_TITLE, style={"font_weight": "bold"})
        super().__init__(children=[self.controls, self.search_results])
        for name in ("text", "query", "search_by", "status", "error"):
            mirror(self, name, self.controls, name)
        mirror(self, "selected_feature", self.search_results, "selected_feature")
        self.controls.observe(self._search, names=["query", "search_by"])
        self.status = START
        if text is not None:
            self.text = text

    @traitlets.validate("selected_feature")
    def _none_for_minus_one(self, proposal: dict[str, Any]) -> int | None:
        return None if proposal["value"] == -1 else proposal["value"]

    @traitlets.observe("text")
    @shows_errors
    def _show_text(self, change: dict[str, Any]) -> None:
        acts = self._scope.activations(change["new"], self._sae)
        view = ActivationsWidget(acts, k=self._k, n_features=self._n_features)
        self._forget_stale(acts.values)
        self._unlink_tokens()
        if self.tokens is not None:
            self.tokens.close()
        self.tokens = view
        self._unlink_tokens = mirror(self, "selected_feature", view, "selected_feature")
        if self.steering is not None and self.steering.prompt in ("", self._shown_text):
            self.steering.prompt = change["new"]  # the prompt follows the text unless it was edited
        self._shown_text = change["new"]
        self._arrange()
        self.status = CLICK
        if self._prebuild:
            self.library.prepare(view.listed_features())
            if self.status != CLICK:  # a pass ran and reported
                self.status = f"{self.status} {CLICK}"

    def _forget_stale(self, values: Any) -> None:
        """A new text: the old search's results go (their query is cleared), and so does a selection
        that is silent on the new text (it would leave every token uncoloured). `values`: [n_tokens, d_sae]."""
        self.query = ""
        feature = self.selected_feature
        if feature is not None and not bool((values[:, feature] > 0).any()):
            self.selected_feature = None

    @traitlets.observe("selected_feature")
    @shows_errors
    def _open_dashboard(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            return
        try:
            feature = self._sae.check_feature(change["new"])
            dashes = self.library.covering(feature)
            if self.dashboard is None:
                view = DashboardWidget(dashes, feature, opener=self.library.covering, actions=[STEER])
                view.on_action(self._on_action)
                view.observe(self._follow_dashboard, names=["feature"])
                self.dashboard = view
                self._arrange()
        except Exception:
            self.selected_feature = _previous(change, None)  # every part stays on what is shown
            raise
        self.dashboard.feature = feature

    def _follow_dashboard(self, _change: dict[str, Any]) -> None:
        """A similar feature opened in the dashboard becomes the selection (read as it is now: the
        dashboard sets `feature` back when it cannot open one)."""
        self.selected_feature = self.dashboard.feature

    @shows_errors
    def _on_action(self, name: str, feature: int) -> None:
        if name == "steer" and feature not in self.steer_features:
            self.steer_features = [*self.steer_features, feature]
            self.status = f"Feature #{feature} is in the steering panel below."

    @traitlets.observe("steer_features")
    @shows_errors
    def _show_steering(self, change: dict[str, Any]) -> None:
        try:
            for feature in change["new"]:
                self._sae.check_feature(feature)
        except ValueError:
            self.steer_features = _previous(change, [])
            raise
        if self.steering is None and change["new"]:
            prompt = self._shown_text  # not a text that failed
            self.steering = self._scope.steering_panel(prompt, features=change["new"], sae=self._sae)
            mirror(self, "steer_features", self.steering, "features")
            self._arrange()

    @shows_errors
    def _search(self, _change: dict[str, Any]) -> None:
        """Observes the controls, where every query or mode change lands (typed, or set here and mirrored):
        one message from the browser sets both before either is announced, so both are read there."""
        query, by = self.controls.query, self.controls.search_by
        if (query, by) == self._last_search:
            return  # the second notification of one submit
        if not query:
            self._last_search = (query, by)
            self.search_results.layout.display = "none"
            self.search_results.rows = []  # not saved with the page either
            return
        by_logit = by == "logit"
        result = self._scope.search(
            None if by_logit else query, self._n_results, logit=query if by_logit else None, sae=self._sae
        )
        self._last_search = (query, by)
        self.search_results.show(result)
        self.search_results.layout.display = None
        if self._prebuild:
            self.library.prepare(result.features)

    def _arrange(self) -> None:
        steering = [self._steering_title, self.steering] if self.steering is not None else []
        parts = [self.controls, self.tokens, self.search_results, self.dashboard, *steering]  # results below
        self.children = [part for part in parts if part is not None]

    def save_html(self, path: str | Path, title: str | None = None) -> Path:
        """Write one offline page with the parts shown now (tokens, search results, dashboard, a steering
        result), each interactive on its own; the parts are not linked without a kernel.

        Example:
            >>> ex.save_html("explorer.html")                        # doctest: +SKIP
        """
        from ._export import save_html

        parts = [self.tokens, self.dashboard]
        if self.search_results.rows:
            parts.insert(1, self.search_results)
        if self.steering is not None and self.steering.result:
            parts.append(self.steering)
        shown = [part for part in parts if part is not None]
        if not shown:
            raise ValueError(
                "The explorer shows nothing to save yet: give it a text first (explorer.text = ...)"
            )
        return save_html(shown, path, title=title or f"Explorer: {self.text[:60]}")

    def close(self) -> None:
        """Close every part (the steering panel's worker thread stops) and the explorer."""
        for name in ("controls", "search_results", "tokens", "dashboard", "steering", "_steering_title"):
            part = getattr(self, name, None)  # a constructor that failed may not have made them all
            if part is not None:
                part.close()
        super().close()


def _previous(change: dict[str, Any], default: Any) -> Any:
    """The value before a change (`default` when the trait had not been read or set before)."""
    return default if change["old"] is traitlets.Undefined else change["old"]


def mirror(a: traitlets.HasTraits, a_name: str, b: traitlets.HasTraits, b_name: str) -> Callable[[], None]:
    """Keep `b.b_name` equal to `a.a_name` both ways (starting from a's value); returns the unlink function.

    Unlike `traitlets.link`, each side copies the other's value as it is after the change, so an observer
    that sets a trait back (to refuse a value) leaves both sides agreeing.

    Example:
        >>> unlink = mirror(explorer, "selected_feature", view, "selected_feature")   # doctest: +SKIP
    """

    def copy(source: Any, source_name: str, target: Any, target_name: str) -> Callable[[Any], None]:
        def update(_change: Any) -> None:
            value = getattr(source, source_name)
            if getattr(target, target_name) != value:
                setattr(target, target_name, value)

        return update

    to_b, to_a = copy(a, a_name, b, b_name), copy(b, b_name, a, a_name)
    a.observe(to_b, names=[a_name])
    b.observe(to_a, names=[b_name])
    to_b(None)

    def unlink() -> None:
        a.unobserve(to_b, names=[a_name])
        b.unobserve(to_a, names=[b_name])

    return unlink
