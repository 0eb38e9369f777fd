"""`Scope`: a Gemma model, its tokenizer and SAEs placed on it, with the analysis calls users make."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from .activations import Activations, ActivationsSet, activations_of
from .core.engine import Engine, SaeRef
from .core.sae import SAE

if TYPE_CHECKING:
    from .features import FeatureStats
    from .steering.result import Steering


class Scope(Engine):
    """A hooked view of a Gemma model and one or more SAEs. The model is used as is (no weight processing).

    Example:
        >>> import scopewidgets as sw
        >>> from scopewidgets.testing import tiny_gemma3, random_sae
        >>> model, tok = tiny_gemma3()
        >>> scope = sw.Scope(model, tok, saes=[random_sae(model, "resid_post", 1, d_sae=32)])
        >>> scope.activations("The Eiffel Tower").top_features(3).columns[:3].tolist()
        ['feature', 'score', 'max_activation']
    """

    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str,
        saes: Sequence[SAE] | SAE = (),
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        **model_kwargs: Any,
    ) -> Scope:
        """Load a Gemma model (hub id or local folder) and wrap it with `saes`.

        Defaults: CUDA + bfloat16 when a GPU is available, else CPU + float32. Gemma 2 uses eager
        attention (its soft-capping needs it). Gated repos raise a `PermissionError` saying what to do.

        Example:
            >>> scope = Scope.from_pretrained("google/gemma-2-2b", saes=[sae])     # doctest: +SKIP
        """
        from .core.model import load_model

        model, tokenizer = load_model(model_id_or_path, device=device, dtype=dtype, **model_kwargs)
        return cls(model, tokenizer, saes)

    def activations(
        self, text_or_ids: str | Sequence[int] | torch.Tensor | Sequence[str], sae: SaeRef = None
    ) -> Activations | ActivationsSet:
        """SAE activations for every token of a text (or of each text in a list: an `ActivationsSet`).

        Example:
            >>> acts = scope.activations("The Eiffel Tower is in Paris")          # doctest: +SKIP
            >>> acts.top_features(5)                                             # doctest: +SKIP
        """
        return activations_of(self, text_or_ids, sae)

    def feature_stats(self, sae: SaeRef = None, *, progress: bool = True) -> FeatureStats:
        """Density, max and mean activation of every feature (`FeatureStats`), as rankings use them: from
        registered statistics, the SAE folder's `feature_stats.safetensors` or Gemma Scope evidence, a
        dashboard pass over every feature, or else one short pass over the default corpus (cached on disk).

        Example:
            >>> stats = scope.feature_stats()                                  # doctest: +SKIP
            >>> stats.density[3246], stats.source                              # doctest: +SKIP
        """
        from .features import feature_stats

        return feature_stats(self.sae(sae), self, progress=progress)

    def evaluate(
        self, texts: Any, sae: SaeRef | Sequence[SaeRef] = None, *, seq_len: int = 128, batch_size: int = 8
    ) -> pd.DataFrame:
        """Reconstruction metrics per SAE on `texts` (BOS excluded throughout): `l0`, `fvu`, `ce_clean`,
        `ce_spliced` (SAE output spliced in), `ce_ablated` (site zeroed), `frac_loss_recovered`.

        Example:
            >>> scope.evaluate(["Some held-out text ..."])                    # doctest: +SKIP
        """
        from .metrics import evaluate

        chosen = (
            self.saes
            if sae is None
            else [self.sae(s) for s in (sae if isinstance(sae, list | tuple) else [sae])]
        )
        return evaluate(self, texts, chosen, seq_len=seq_len, batch_size=batch_size)

    # ----------------------------------------------------------------------------------------- dashboards
    def dashboards(
        self, features: Any = None, corpus: Any = None, sae: SaeRef = None, **settings: Any
    ) -> Any:
        """One pass over `corpus` for all `features` at once (None: every feature) -> `DashboardSet`.

        `corpus`: a list / pandas Series / iterable of strings, a `datasets` dataset with a "text" column,
        or a `[n_seq, seq_len]` token tensor used as given. Settings (keyword only): `seq_len=128`,
        `batch_size` (8 on CPU, 32 on CUDA), `n_examples=20`, `context=5`, `n_quantile_groups=10`,
        `per_group=5`, `n_bins=50`, `cache=True`, `progress=True`, `shard=(rank, world)` (a slice of the sequences),
        `feature_shard=(rank, world)` (a slice of the features, whole corpus). Without a corpus,
        an SAE folder's Gemma Scope `examples.safetensors` is used when present. See `scopewidgets.dashboards`.

        Example:
            >>> dashes = scope.dashboards(range(16384), corpus=texts)          # doctest: +SKIP
            >>> dashes[1234].examples[0].tokens                                # doctest: +SKIP
        """
        from .dashboards.api import build_dashboards

        return build_dashboards(self, features, corpus, sae, **settings)

    def dashboard(self, feature: int, sae: SaeRef = None, corpus: Any = None) -> Any:
        """The `FeatureDashboard` of one feature, reusing an earlier pass that covers it (else a pass for it).

        Example:
            >>> dash = scope.dashboard(1234, corpus=texts)                     # doctest: +SKIP
            >>> dash.density, dash.top_logits[:3]                              # doctest: +SKIP
        """
        from .dashboards.api import feature_dashboard

        return feature_dashboard(self, feature, sae, corpus)

    def steered_logits(
        self, feature: int, k: int = 10, sae: SaeRef = None, *, compute: bool = False
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """What steering with `feature` does to the next token: the `k` tokens whose logits adding its decoder
        direction at every position (`steer(method="add")`) raises most and lowers most, per unit of strength,
        to first order through every layer after the SAE, as `(top, bottom)` lists of `(token, value)` (the
        dashboard widget's "Promoted by steering"; `scopewidgets.features.logit.steered_logits`). For an SAE
        in the middle of the model this is what the feature does, where a dashboard's `top_logits` (the
        decoder direction read straight by the unembedding, skipping those layers) is mostly noise.

        It needs the model's steering Jacobian at the SAE's site: the one stored on disk (the demo ships it),
        or with `compute=True` one computed now (one backward pass per residual dimension: minutes on a CPU)
        and cached. Without either, a `ValueError` says so.

        Example:
            >>> top, bottom = scope.steered_logits(285, k=5)                   # doctest: +SKIP
            >>> [t for t, _ in top]                                            # doctest: +SKIP
            [' Railroad', ' Telephone', ' Cables', ' Commercial', ' Transportation']
        """
        from .core import validate as checked
        from .features.logit import steered_logits, steering_jacobian, stored_steering_jacobian

        chosen = self.sae(sae)
        width = chosen.cfg.d_sae
        feature = checked.integer(feature, "feature", minimum=0, maximum=width - 1)
        k = checked.integer(k, "k", minimum=1)
        jacobian = stored_steering_jacobian(self, chosen)
        if jacobian is None and not compute:
            raise ValueError(
                "The model's steering Jacobian at this SAE's site is not known yet: pass compute=True to "
                "compute it once (minutes on a CPU, then cached on disk), or read a dashboard's top_logits "
                "(the direct effect)"
            )
        if jacobian is None:
            jacobian = steering_jacobian(self, chosen)
        return steered_logits(self, chosen, feature, jacobian, k)

    # ----------------------------------------------------------------------------------------- steering
    def steer(
        self,
        prompt: str | Sequence[int] | torch.Tensor,
        features: dict[int, float] | Sequence[int],
        method: str = "add",
        sae: SaeRef = None,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        seed: int = 0,
        positions: str = "all",
        *,
        on_token: Any = None,
    ) -> Steering:
        """Complete `prompt` twice in one batch, once as is and once with SAE features steered.

        `features` maps feature -> strength (a list of features for `ablate`). Methods: `add`
        (h += s * w_dec[f]), `add_scaled` (h += s * ||h|| * w_dec[f] / ||w_dec[f]||, per position),
        `clamp` (set the feature's activation to s through the SAE, keeping the error term), `ablate`
        (clamp to 0). `positions`: "all", "prompt" or "generated"; BOS is never edited. `temperature=0`
        is greedy; otherwise both completions share the sampling noise of `seed`, so a difference comes
        from the steering alone. `on_token(default_token, steered_token)` streams each step's token
        strings (None for a completion that has ended).

        Example:
            >>> out = scope.steer("I think", {3: 8.0}, max_new_tokens=8)    # doctest: +SKIP
            >>> out.default_text, out.steered_text                        # doctest: +SKIP
        """
        from .steering.result import steer

        return steer(
            self,
            prompt,
            features,
            method=method,
            sae=sae,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            positions=positions,
            on_token=on_token,
        )

    def steering_panel(
        self,
        prompt: str,
        features: dict[int, float] | Sequence[int] = (),
        method: str = "add",
        sae: SaeRef = None,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        seed: int = 0,
        positions: str = "all",
        *,
        live: bool = False,
    ) -> Any:
        """A live panel: one log-scaled slider per feature (captioned by its label or top promoted tokens),
        method and sampling controls, Generate (or `live=True`: regenerate when a slider settles), and the
        default and steered completions streamed side by side. Generation runs in a worker thread, so the
        kernel stays responsive; a slider moved during a generation supersedes it. "copy as code" shows the
        equivalent `scope.steer(...)` call.

        Example:
            >>> scope.steering_panel("I think", features=[1234, 77])       # doctest: +SKIP
        """
        from .steering.args import SteeringSettings, check_panel
        from .widgets.steering import SteeringPanel, settings_traits

        chosen = self.sae(sae)
        settings = SteeringSettings(method, max_new_tokens, temperature, seed, positions)
        check_panel(self, chosen, prompt, features, settings)
        traits = settings_traits(prompt, features, settings.plain())
        return SteeringPanel(scope=self, sae=chosen, live=live, **traits)

    # ----------------------------------------------------------------------------------------- explorer & checks
    def explorer(
        self,
        text: str | None = None,
        *,
        sae: SaeRef = None,
        corpus: Any = None,
        max_windows: int = 32,
        **settings: Any,
    ) -> Any:
        """One widget to explore: type a text -> its tokens -> click a feature -> its dashboard -> "steer"
        adds it to a steering panel (prompt: the text). A search box lists features (`scope.search`) whose
        rows open their dashboards too. `selected_feature` and `steer_features` follow every part.

        Dashboards come from passes over the first `max_windows` windows of `corpus` (default: the shipped
        `corpus.default()`): when the text changes, ONE pass covers every feature the token view lists, so
        clicks open at once; other features get a pass with their similar features. Passes are cached on
        disk like `scope.dashboards`. Other settings: `seq_len`, `batch_size`, `n_examples`, `context`,
        `n_quantile_groups`, `per_group`, `n_bins`, `cache`; and `k`, `n_features` (token view),
        `n_results` (search), `prebuild=False` (build a pass only when a feature is clicked).

        Example:
            >>> ex = scope.explorer("The Eiffel Tower is in Paris")            # doctest: +SKIP
            >>> ex.selected_feature = 1234        # opens its dashboard         # doctest: +SKIP
            >>> ex.steer_features                 # after "steer" on it: [1234] # doctest: +SKIP
        """
        from .widgets.explorer import ExplorerWidget

        return ExplorerWidget(
            self, text, sae=self.sae(sae), corpus=corpus, max_windows=max_windows, **settings
        )

    def search(
        self,
        query: str | None = None,
        k: int = 20,
        *,
        token: str | None = None,
        logit: str | int | None = None,
        sae: SaeRef = None,
        rank: str = "specific",
        include_reserved: bool = False,
        effect: str = "steer",
    ) -> Any:
        """Find features: those firing on a text (optionally only where `token` occurs in it: `"Paris"`
        matches `"Paris"` and `" Paris"`, `" Paris"` only itself, and a word the tokenizer splits matches
        each whole occurrence; `scopewidgets.checks.token_rows`), the ones specific to it first (`rank="specific"`, see `scopewidgets.features.ranking`; `rank="activation"`:
        highest activation first); or with `logit=" Paris"` the live features (density > 0) that most
        promote a token. `effect="steer"` (default): what adding the feature's decoder direction at every
        position (`steer(method="add")`) does to the token's log-probability, to first order, through every
        later layer, averaged over a few windows of the package's corpus (one forward pass, one backward pass
        through the layers per form of the token); `effect="direct"`: the decoder direction read straight by the unembedding, as in
        the dashboards' logit tables (`scopewidgets.features.logit`). A word typed without its leading space
        (`"Paris"`) tries both `"Paris"` and `" Paris"`; a word that is several tokens raises a `ValueError`
        listing them. Reserved features are left out unless `include_reserved`.

        Example:
            >>> scope.search("The Eiffel Tower is in Paris", token="Paris", k=5).features  # doctest: +SKIP
            >>> scope.search(logit="Paris")                                      # doctest: +SKIP
            >>> scope.search(logit="Paris", effect="direct")                     # doctest: +SKIP
        """
        from .checks import search

        return search(
            self,
            query,
            k,
            self.sae(sae),
            token,
            logit,
            rank=rank,
            include_reserved=include_reserved,
            effect=effect,
        )

    def ablate(self, prompt: str, features: Sequence[int] | int, sae: SaeRef = None, *, k: int = 10) -> Any:
        """Zero `features` at every non-BOS position (SAE error term kept) and compare next-token probabilities.

        Example:
            >>> scope.ablate("The Eiffel Tower is in the city of", [123]).plot()  # doctest: +SKIP
        """
        from .checks import ablate

        return ablate(self, prompt, features, self.sae(sae), k)

    def attribute(
        self,
        prompt: str,
        target: str | int,
        sae: SaeRef = None,
        *,
        k: int = 20,
        check: int = 5,
        include_reserved: bool = False,
    ) -> Any:
        """Which features at the SAE site drive the target token's logit at the last position: gradient x
        activation, with the exact effect of zeroing each of the `check` strongest for comparison. Reserved
        features (`sae.reserved_features`) are left out unless `include_reserved`.

        Example:
            >>> scope.attribute("The Eiffel Tower is in the city of", " Paris")  # doctest: +SKIP
        """
        from .checks import attribute

        return attribute(self, prompt, target, self.sae(sae), k, check, include_reserved=include_reserved)

    def compare(
        self,
        prompt_a: str,
        prompt_b: str,
        sae: SaeRef = None,
        *,
        k: int = 20,
        rank: str = "specific",
        include_reserved: bool = False,
    ) -> Any:
        """Features that differ most between two prompts: by the difference of their specificity scores
        (`rank="specific"`), or of their maximum activations (`rank="activation"`); reserved features are
        left out unless `include_reserved`.

        Example:
            >>> scope.compare("I love this film", "I hate this film")           # doctest: +SKIP
        """
        from .checks import compare

        return compare(
            self, prompt_a, prompt_b, self.sae(sae), k, rank=rank, include_reserved=include_reserved
        )
