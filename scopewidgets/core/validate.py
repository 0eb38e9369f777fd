"""Argument checks shared by every public call: a bad value raises an error that names the argument, what
was given and what is allowed. Nothing is coerced silently: a float is not truncated to an id, a batch is
not flattened into one sequence, a list mixing texts and ids is refused.

A value of the wrong kind raises `ArgumentTypeError`, which is both a `TypeError` and a `ValueError` (the
package's errors are `ValueError`s; Python's convention for a wrong type is `TypeError`: both catch it).
NumPy and 0-d torch integers count as ints wherever an int is expected; bools never do.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind (caught by `except TypeError` and by `except ValueError`)."""


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor | np.ndarray):
        return f"a {value.ndim}-D {value.dtype} {type(value).__name__}"
    return "None" if value is None else type(value).__name__


def integer(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` as an int (NumPy / 0-d tensor integers accepted), within `[minimum, maximum]`.

    Example:
        >>> integer(np.int64(3), "k", minimum=1)
        3
    """
    allowed = _range_text(minimum, maximum)
    if isinstance(value, bool | np.bool_):
        raise ArgumentTypeError(f"{name} must be an int{allowed}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ArgumentTypeError(f"{name} must be an int{allowed}, got {value!r} ({_kind(value)})") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name}={number} is out of range: it must be an int{allowed}")
    return number


def _range_text(minimum: int | float | None, maximum: int | float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    return f" <= {maximum}" if maximum is not None else ""


def number(value: Any, name: str, minimum: float | None = None, maximum: float | None = None) -> float:
    """`value` as a finite float within `[minimum, maximum]` (bools refused)."""
    allowed = _range_text(minimum, maximum)
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a finite number{allowed}, got {value!r} ({_kind(value)})")
    result = float(value)
    low = minimum if minimum is not None else -math.inf
    high = maximum if maximum is not None else math.inf
    if not (math.isfinite(result) and low <= result <= high):
        raise ValueError(f"{name}={value!r} is out of range: it must be a finite number{allowed}")
    return result


def text(value: Any, name: str) -> str:
    """A non-empty `str` that UTF-8 can encode (no lone surrogates)."""
    if not isinstance(value, str):
        hint = " (decode bytes first: data.decode('utf-8'))" if isinstance(value, bytes | bytearray) else ""
        raise ArgumentTypeError(f"{name} must be a str, got {_kind(value)}{hint}")
    if not value:
        raise ValueError(f"The {name} is empty; give at least one character")
    return encodable(value, name)


def encodable(value: str, name: str) -> str:
    """`value` itself when UTF-8 can encode it; a lone surrogate raises a `ValueError` saying where."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"{name} holds a lone surrogate {value[err.start]!r} at character {err.start}, which is not "
            "valid Unicode text; remove it (or decode the source with errors='replace')"
        ) from None
    return value


def token_ids(value: Any, name: str) -> torch.Tensor:
    """`[n]` int64 ids from a 1-D integer tensor / array or a list, tuple or range of ints. A batch
    (2-D), float ids, bools and lists mixing ids with anything else are refused."""
    allowed = "a str, or one sequence of int token ids (a 1-D int tensor, or a list of ints)"
    if isinstance(value, torch.Tensor | np.ndarray):
        tensor = torch.as_tensor(value)
        if tensor.ndim != 1:
            batch = " (a batch: pass one sequence at a time)" if tensor.ndim > 1 else ""
            raise ArgumentTypeError(f"{name} must be {allowed}; got {_kind(value)}{batch}")
        if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
            raise ArgumentTypeError(f"{name} must hold int token ids, got {_kind(value)}")
        return tensor.to(torch.long).cpu()
    if not isinstance(value, list | tuple | range):
        hint = " (decode bytes to a str first)" if isinstance(value, bytes | bytearray) else ""
        raise ArgumentTypeError(f"{name} must be {allowed}; got {_kind(value)}{hint}")
    ids = []
    for position, item in enumerate(value):
        try:
            ids.append(integer(item, f"{name}[{position}]"))
        except ArgumentTypeError:
            raise ArgumentTypeError(
                f"{name} must be {allowed}; item {position} is {item!r} ({_kind(item)}). A list is either "
                "all texts or all ids"
            ) from None
    if any(not -(2**63) <= i < 2**63 for i in ids):
        raise ValueError(f"{name} holds an id too large for a token id: {max(ids, key=abs)}")
    return torch.tensor(ids, dtype=torch.long)


def texts(value: Any, name: str) -> list[str]:
    """A non-empty list or tuple of texts, each checked by `text`."""
    if not isinstance(value, list | tuple) or not value:
        raise ArgumentTypeError(f"{name} must be a non-empty list of str, got {_kind(value)}")
    return [text(item, f"{name}[{i}]") for i, item in enumerate(value)]


def feature_list(value: Any, name: str, d_sae: int) -> list[int]:
    """One feature id or an iterable of them (a list, tuple, range, 1-D tensor or array), each in
    `[0, d_sae)`; NumPy integers accepted. Empty input is refused."""
    if isinstance(value, str | bytes | Mapping) or value is None:
        raise ArgumentTypeError(
            f"{name} must be a feature id or a list of feature ids in [0, {d_sae}), got {_kind(value)}"
        )
    if isinstance(value, torch.Tensor | np.ndarray) and value.ndim == 0:
        value = value.item()
    items = list(value) if isinstance(value, Iterable) else [value]
    if not items:
        raise ValueError(f"{name} is empty; give at least one feature id in [0, {d_sae})")
    return [feature(item, f"{name}[{i}]" if len(items) > 1 else name, d_sae) for i, item in enumerate(items)]


def feature(value: Any, name: str, d_sae: int) -> int:
    """One feature id in `[0, d_sae)`."""
    index = integer(value, name)
    if not 0 <= index < d_sae:
        raise ValueError(f"Feature {index} ({name}) is out of range: this SAE has features [0, {d_sae})")
    return index
