from __future__ import annotations

import pytest
import traitlets

from scopewidgets.widgets import MissingBundleError, Widget, _bundle, shows_errors


class Doubler(Widget):
    """A minimal widget whose observer fails on negative input."""

    _module = "activations"
    value = traitlets.Int(0).tag(sync=True)
    doubled = traitlets.Int(0).tag(sync=True)

    @traitlets.observe("value")
    @shows_errors
    def _double(self, change: dict) -> None:
        if change["new"] < 0:
            raise ValueError(f"value must be >= 0, got {change['new']}")
        self.doubled = 2 * change["new"]


def test_observer_errors_are_shown_and_the_widget_keeps_working() -> None:
    widget = Doubler()
    widget.value = -3
    assert widget.error == "value must be >= 0, got -3"
    assert widget.doubled == 0
    widget.value = 4
    assert widget.error == ""
    assert widget.doubled == 8


def test_unknown_keyword_arguments_raise() -> None:
    with pytest.raises(TypeError, match="valu"):
        Doubler(valu=3)


def test_bundle_is_loaded_into_esm_and_css() -> None:
    widget = Doubler()
    assert "render" in widget._esm and ".scopewidgets" in widget._css


def test_missing_bundle_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(_bundle, "STATIC", tmp_path)
    with pytest.raises(MissingBundleError, match=r"npm install && npm run build"):
        Doubler()
