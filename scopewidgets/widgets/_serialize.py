"""The one serializer for arrays sent to the browser: `{"buffer": bytes, "dtype": str, "shape": [...]}`.

ipywidgets sends `bytes` inside a trait's value as a binary buffer (no JSON, no base64); the JS side
(`js/lib/array.js`, `unpack`) turns it back into a typed array. Never send large data as lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: dtypes that have a JavaScript typed array.
DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64")
_CASTS = {"bool": "uint8", "float16": "float32", "bfloat16": "float32", "int64": "int32", "uint64": "uint32"}


def to_binary(array: Any, dtype: str | None = None) -> dict[str, Any]:
    """Serialize a numpy array, torch tensor or sequence for a binary trait.

    `dtype` forces the wire type; by default the array's own, with bool -> uint8, float16/bfloat16 ->
    float32 and int64 -> int32 (a `ValueError` if values do not fit).

    Example:
        >>> import numpy as np
        >>> payload = to_binary(np.arange(6).reshape(2, 3))
        >>> payload["dtype"], payload["shape"], len(payload["buffer"])
        ('int32', [2, 3], 24)
    """
    values = _as_numpy(array)
    wire = dtype or _CASTS.get(values.dtype.name, values.dtype.name)
    if wire not in DTYPES:
        raise ValueError(f"Cannot send dtype {values.dtype.name} as {wire!r}; allowed: {', '.join(DTYPES)}")
    if values.dtype.kind in "iu" and values.size and np.dtype(wire).kind in "iu":
        info = np.iinfo(wire)
        low, high = values.min(), values.max()
        if low < info.min or high > info.max:
            raise ValueError(f"Values in [{low}, {high}] do not fit {wire} [{info.min}, {info.max}]")
    values = np.ascontiguousarray(values, dtype=wire)
    return {"buffer": values.tobytes(), "dtype": wire, "shape": list(values.shape)}


def from_binary(payload: dict[str, Any]) -> np.ndarray:
    """The inverse of `to_binary` (for tests and exports).

    Example:
        >>> from_binary(to_binary([1.5, 2.5])).tolist()
        [1.5, 2.5]
    """
    return np.frombuffer(payload["buffer"], dtype=payload["dtype"]).reshape(payload["shape"])


def _as_numpy(array: Any) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor; bfloat16 has no numpy dtype
        tensor = array.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
        return tensor.numpy()
    return np.asarray(array)
