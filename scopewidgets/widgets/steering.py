"""`SteeringPanel`: sliders over SAE features, default and steered completions streamed side by side.

`scope.steering_panel(...)` builds a live panel; `Steering.widget()` builds the same view read-only from a
result. Generation runs in a worker thread (`SteeringRunner`), so the kernel stays responsive; tokens are
streamed to the front end as custom messages, and the finished result lands in the `result` trait (so a
saved notebook or exported page shows it). A newer request supersedes a running one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import traitlets

from ..core.display import presents
from ..features.columns import density_column, known_stats
from ..steering.args import SteeringSettings
from ..steering.controls import POWER, feature_captions, strength_limits
from ..steering.display import summary_line
from ..steering.result import Steering, significant, steer_code
from ..steering.runner import SteeringRunner
from ._base import Widget, shows_errors

if TYPE_CHECKING:
    from ..core.engine import Engine
    from ..core.sae import SAE

METHODS = ["add", "add_scaled", "clamp", "ablate"]
POSITIONS = ["all", "prompt", "generated"]


class SteeringPanel(Widget):
    """Steering sliders and the two completions. Traits are the view state; Python computes the rest."""

    _module = "steering"
    prompt = traitlets.Unicode("", help="The prompt, two-way.").tag(sync=True)
    method = traitlets.Enum(METHODS, "add", help="Steering method, two-way.").tag(sync=True)
    positions = traitlets.Enum(POSITIONS, "all", help="Which positions are edited, two-way.").tag(sync=True)
    max_new_tokens = traitlets.Int(32, help="Tokens to generate, two-way.").tag(sync=True)
    temperature = traitlets.Float(0.0, help="Sampling temperature (0 = greedy), two-way.").tag(sync=True)
    seed = traitlets.Int(0, help="Sampling seed, two-way.").tag(sync=True)
    live = traitlets.Bool(False, help="Regenerate when a slider settles, two-way.").tag(sync=True)
    features = traitlets.List(traitlets.Int(), help="Steered features in order, two-way.").tag(sync=True)
    strengths = traitlets.Dict(help="{'feature': strength} (JSON keys), two-way.").tag(sync=True)
    controls = traitlets.List(
        help="Per feature: {feature, caption, limit, density} (density None: unknown); from Python."
    ).tag(sync=True)
    power = traitlets.Float(POWER, help="Slider mapping: strength = limit * |position| ** power.").tag(
        sync=True
    )
    interactive = traitlets.Bool(True, help="False for a read-only view of a result.").tag(sync=True)
    generation = traitlets.Int(0, help="Id of the newest generation; from Python.").tag(sync=True)
    running = traitlets.Bool(False, help="A generation is running; from Python.").tag(sync=True)
    result = traitlets.Dict(help="The finished generation's tokens and marks; from Python.").tag(sync=True)
    code = traitlets.Unicode("", help="The equivalent scope.steer(...) call; from Python.").tag(sync=True)
    summary = traitlets.Unicode(
        "", help="What produced a shown result (features, method, ...); from Python."
    ).tag(sync=True)

    def __init__(
        self,
        scope: Engine | None = None,
        sae: SAE | None = None,
        *,
        densities: Mapping[int, float] | None = None,
        **kwargs: Any,
    ) -> None:
        self._scope, self._sae = scope, sae
        self._captions: dict[int, str] = {}
        self._densities = {int(f): float(d) for f, d in (densities or {}).items()}  # a result's, kept
        self._runner: SteeringRunner | None = None
        self._started = 0.0
        super().__init__(**kwargs)
        self.on_msg(self._on_message)
        self._refresh_controls()

    @classmethod
    def from_result(cls, result: Steering) -> SteeringPanel:
        """A read-only panel showing a finished `Steering` (no kernel needed to redraw it)."""
        panel = cls(
            sae=result.sae,
            densities=result.densities,
            interactive=False,
            **settings_traits(result.prompt, result.features, result.settings),
        )
        panel.summary = summary_line(result)
        panel.result = result_trait(result, generation=0)
        return panel

    @traitlets.validate("strengths")
    def _three_digits(self, proposal: dict[str, Any]) -> dict[str, float]:
        """Strengths keep 3 significant digits, so the generation is the one "copy as code" reproduces."""
        return {str(f): significant(s) for f, s in proposal["value"].items()}

    @traitlets.observe("features", "method", "prompt")
    @shows_errors
    def _on_features(self, change: dict[str, Any]) -> None:
        try:
            self._refresh_controls()
        except ValueError:
            if change["name"] == "features":
                self.features = change["old"]  # drop the bad feature; the message stays shown
            raise

    @traitlets.observe("strengths", "max_new_tokens", "temperature", "seed", "positions")
    @shows_errors
    def _on_settings(self, _change: dict[str, Any]) -> None:
        self.code = steer_code(self.prompt, self._strengths(), **self._settings().as_dict())

    def _refresh_controls(self) -> None:
        if self._sae is None and self._scope is not None:
            self._sae = self._scope.sae()
        features = [self._sae.check_feature(f) if self._sae is not None else f for f in self.features]
        new = [f for f in features if f not in self._captions]
        if new and self._scope is not None:
            self._captions.update(feature_captions(self._scope, self._sae, new))
        limits = (
            strength_limits(self._scope, self._sae, features, self.method, self.prompt)
            if self._scope is not None and self.prompt
            else {}
        )
        density = self._density_of(features)
        self.controls = [
            {"feature": f, "caption": self._caption(f), "limit": limits.get(f, 0.0), "density": density[f]}
            for f in features
        ]
        self.strengths = {str(f): float(self.strengths.get(str(f), 0.0)) for f in features}
        self.code = steer_code(self.prompt, self._strengths(), **self._settings().as_dict())

    def _caption(self, feature: int) -> str:
        """The caption computed with the scope, else (a result's read-only view) the SAE's label."""
        if feature in self._captions:
            return self._captions[feature]
        return (self._sae.label(feature) if self._sae is not None else None) or ""

    def _density_of(self, features: Sequence[int]) -> dict[int, float | None]:
        """Each feature's density: a shown result's, else the SAE's statistics known without a pass."""
        missing = [f for f in features if f not in self._densities]
        stats = known_stats(self._sae, self._scope) if missing and self._sae is not None else None
        found = dict(zip(missing, density_column(stats, missing), strict=True))
        density = {f: self._densities.get(f, found.get(f, math.nan)) for f in features}
        return {f: d if math.isfinite(d) else None for f, d in density.items()}

    def _strengths(self) -> dict[int, float]:
        zero = self.method == "ablate"
        return {int(f): 0.0 if zero else float(self.strengths.get(str(f), 0.0)) for f in self.features}

    def _settings(self) -> SteeringSettings:
        return SteeringSettings(**{name: getattr(self, name) for name in SteeringSettings.names()})

    @shows_errors
    def generate(self) -> int:
        """Start a generation with the current settings (superseding a running one); returns its id."""
        if self._scope is None:
            raise ValueError("This is a read-only view of a result; use scope.steering_panel(...) to steer")
        if self._runner is None:
            self._runner = SteeringRunner(self._scope, self._on_event)
        request = {
            "prompt": self.prompt,
            "features": self._strengths(),
            "sae": self._sae,
            **self._settings().as_dict(),
        }
        self._started = time.perf_counter()
        self.error = ""
        # Publish the id first: the worker may send this generation's first messages before submit returns,
        # and the front end draws only messages of the current `generation`. Only this thread submits.
        self.generation, self.running = self._runner.latest_id + 1, True
        gen = self._runner.submit(request)
        assert gen == self.generation, (gen, self.generation)
        return gen

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if content.get("type") == "generate":
            self.generate()
        elif content.get("type") == "cancel" and self._runner is not None:
            self._runner.cancel()
            self.running = False

    def _on_event(self, event: dict[str, Any]) -> None:
        """Called by the worker thread for the newest generation only (see `SteeringRunner`)."""
        kind = event["kind"]
        if kind == "token":
            self.send(
                {
                    "kind": "token",
                    "id": event["id"],
                    "step": event["step"],
                    "default": event["default"],
                    "steered": event["steered"],
                }
            )
        elif kind == "start":
            self.send({"kind": "start", "id": event["id"]})
        elif kind == "done":
            seconds = time.perf_counter() - self._started
            self.summary = summary_line(event["result"])  # before the result it describes
            self.result = result_trait(event["result"], generation=event["id"], seconds=seconds)
            self.running = False
        elif kind == "error":
            self.error, self.running = event["message"], False

    def _export_state(self) -> dict[str, Any]:
        """A saved page has no kernel to generate with: it shows the result read-only."""
        return {"interactive": False, "running": False}

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        super().close()


def settings_traits(
    prompt: str, features: Mapping[int, float] | Sequence[int], settings: SteeringSettings
) -> dict[str, Any]:
    """Trait values for a panel with these settings (`features`: a list, or a dict with strengths)."""
    strengths = dict(features) if isinstance(features, Mapping) else dict.fromkeys(features, 0.0)
    return {
        "prompt": prompt,
        "features": [int(f) for f in strengths],
        "strengths": {str(int(f)): float(s) for f, s in strengths.items()},
        **settings.as_dict(),
    }


def result_trait(result: Steering, generation: int, seconds: float | None = None) -> dict[str, Any]:
    """What the front end draws for a finished generation: tokens as text (shown with whitespace kept),
    the prompt without BOS, and which generated steps differ."""
    return {
        "id": generation,
        "prompt_tokens": list(result.prompt_tokens[1:]),
        "default_tokens": list(result.default_tokens),
        "steered_tokens": list(result.steered_tokens),
        "differs": result.differs,
        "default_text": result.default_text,
        "steered_text": result.steered_text,
        "code": result.code(),
        "seconds": seconds,
    }


@presents(Steering)
def _widget(result: Steering) -> SteeringPanel:
    return SteeringPanel.from_result(result)
