"""The on-disk cache of activations that `train_demo_sae.py` trains on, written by `cache_activations.py` and
`generate_modern_text.py`: `acts.npy` (fp16 memmap `[n_windows * (seq_len - 1), d_model]`, BOS excluded),
`tokens.npy` (int32 `[n_windows, seq_len]`), `progress.json` (windows done, seconds, values clipped to the fp16
range: a stopped run resumes from it) and, once finished, `meta.json`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

FP16_MAX = 65504.0


class ActivationCache:
    """A cache of `n_windows` windows of `seq_len` tokens in `out`, resumed where a run stopped; with `grow`,
    a smaller earlier cache is extended in place (its rows stay the first rows) rather than refused."""

    def __init__(self, out: Path, n_windows: int, seq_len: int, d_model: int, grow: bool = False) -> None:
        self.out, self.n_windows, self.seq_len, self.d_model = out, n_windows, seq_len, d_model
        self.body = seq_len - 1
        out.mkdir(parents=True, exist_ok=True)
        self.progress_file = out / "progress.json"
        state = json.loads(self.progress_file.read_text()) if self.progress_file.is_file() else None
        if state is not None and grow and state["n_windows"] < n_windows:
            self._extend(state["done"], state["n_windows"])
            state["n_windows"] = n_windows
        if state is not None and state["n_windows"] != n_windows:
            raise SystemExit(
                f"{out} holds a cache of {state['n_windows']} windows, not {n_windows}: use the same --tokens "
                "(or another --out)"
            )
        mode = "r+" if state is not None else "w+"
        self.acts = np.lib.format.open_memmap(
            out / "acts.npy", mode=mode, dtype=np.float16, shape=(n_windows * self.body, d_model)
        )
        self.tokens = np.lib.format.open_memmap(
            out / "tokens.npy", mode=mode, dtype=np.int32, shape=(n_windows, seq_len)
        )
        self.state = {"n_windows": n_windows, "done": 0, "seconds": 0.0, "clipped": 0, **(state or {})}
        self._start = time.time() - self.state["seconds"]

    @property
    def done(self) -> int:
        """Windows written so far."""
        return self.state["done"]

    def append(self, ids: torch.Tensor, resid: torch.Tensor) -> None:
        """Write the next windows: token ids `[rows, seq_len]` and their non-BOS activations
        `[rows, seq_len - 1, d_model]` (clamped to the fp16 range; `clipped` counts the values that were)."""
        done, rows = self.done, len(ids)
        self.state["clipped"] += int((resid.abs() > FP16_MAX).sum())
        flat = resid.reshape(-1, self.d_model).clamp(-FP16_MAX, FP16_MAX).float().numpy().astype(np.float16)
        self.acts[done * self.body : (done + rows) * self.body] = flat
        self.tokens[done : done + rows] = ids.numpy()
        self.state["done"] = done + rows

    def save_progress(self) -> None:
        """Flush the memmaps and record how far the run got (what a resumed run starts from)."""
        self.acts.flush()
        self.tokens.flush()
        self.state["seconds"] = time.time() - self._start
        self.progress_file.write_text(json.dumps(self.state))

    def finish(self, layer: int, corpus: str) -> dict:
        """Save the progress and write `meta.json` (what `train_demo_sae.py` records); returns it."""
        self.save_progress()
        meta = {
            "layer": layer,
            "site": "resid_post",
            "seq_len": self.seq_len,
            "n_windows": self.n_windows,
            "n_tokens": self.n_windows * self.body,
            "d_model": self.d_model,
            "seconds": round(self.state["seconds"], 1),
            "clipped_values": self.state["clipped"],
            "corpus": corpus,
        }
        (self.out / "meta.json").write_text(json.dumps(meta, indent=2))
        return meta

    def _extend(self, done: int, old_windows: int) -> None:
        """Grow the memmaps to `n_windows`, copying the `done` windows already cached (chunks, then swap)."""
        for name, shape, dtype in (
            ("acts.npy", (self.n_windows * self.body, self.d_model), np.float16),
            ("tokens.npy", (self.n_windows, self.seq_len), np.int32),
        ):
            old = np.load(self.out / name, mmap_mode="r")
            new = np.lib.format.open_memmap(self.out / f"{name}.grow", mode="w+", dtype=dtype, shape=shape)
            rows = done * self.body if name == "acts.npy" else done
            for start in range(0, rows, 1 << 18):
                stop = min(rows, start + (1 << 18))
                new[start:stop] = old[start:stop]
            new.flush()
            del old, new
            (self.out / f"{name}.grow").replace(self.out / name)
        print(f"extended the cache from {old_windows} to {self.n_windows} windows ({done} already done)")
