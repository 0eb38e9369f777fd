from __future__ import annotations

import numpy as np
import pytest
import torch

from scopewidgets.widgets._serialize import from_binary, to_binary


def test_float_matrix_round_trips_as_raw_bytes() -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    payload = to_binary(values)
    assert payload["dtype"] == "float32" and payload["shape"] == [3, 4]
    assert isinstance(payload["buffer"], bytes) and len(payload["buffer"]) == 48
    np.testing.assert_array_equal(from_binary(payload), values)


def test_non_contiguous_arrays_are_sent_in_row_major_order() -> None:
    values = np.arange(6, dtype=np.int32).reshape(2, 3).T
    np.testing.assert_array_equal(from_binary(to_binary(values)), values)


def test_torch_tensors_and_default_casts() -> None:
    assert to_binary(torch.tensor([1, 2, 3]))["dtype"] == "int32"  # int64 -> int32
    assert to_binary(torch.tensor([True, False]))["dtype"] == "uint8"
    bf16 = to_binary(torch.tensor([1.5, -2.0], dtype=torch.bfloat16))
    assert bf16["dtype"] == "float32" and from_binary(bf16).tolist() == [1.5, -2.0]


def test_values_that_do_not_fit_raise() -> None:
    with pytest.raises(ValueError, match="do not fit int32"):
        to_binary(np.array([2**40]))
    with pytest.raises(ValueError, match="do not fit uint8"):
        to_binary([300], "uint8")


def test_unsupported_dtype_raises() -> None:
    with pytest.raises(ValueError, match="complex128"):
        to_binary(np.array([1j]))
