"""Tensor primitives of the dashboard pass: sampling keys, power-of-two scales, grouped selection, and
the flat record tables that hold example windows.

Everything here is order independent by construction, which is what makes a pass mergeable exactly:

- `sample_keys` gives every (token, feature) a pseudo-random 56-bit key from a keyed Feistel permutation of
  the token's global index, so keys never tie within a feature and "the P smallest keys of a set" is a
  uniform sample that does not depend on the order in which the set was seen.
- `scale_exponents` maps a maximum to the smallest power of two strictly above it. Bins of `[0, 2**e)` fold
  exactly into bins of `[0, 2**(e+s))` (bin `j` becomes `j >> s`), so histograms and bucketed samples kept
  at a per-feature power-of-two scale can follow a growing maximum without ever re-reading data.
- `ranked` orders records by group and then by any keys and keeps the first `limit` of each group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch

_HALF_BITS = 28
_HALF_MASK = (1 << _HALF_BITS) - 1
EMPTY_KEY = (1 << 63) - 2  # larger than every key (sample keys < 2**56, order keys < 2**63 - 2**32)
_PAD_KEY = (1 << 63) - 1  # larger still: fills rows of the insert matrix that hold no candidate
EMPTY_EXPONENT = -(1 << 20)  # the scale exponent of a feature that never fired
_ROUND_SALTS = (0x3C6EF372, 0x1B873593, 0x5BD1E995, 0x27D4EB2F)
_CANONICAL_BLOCK = 1 << 15  # groups sorted per step of `Table.canonical`


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 28-bit integer mixer; every product stays below 2**59, so int64 never overflows."""
    x = x ^ (x >> 13)
    x = (x * 0x5BD1E995) & _HALF_MASK
    x = x ^ (x >> 15)
    x = (x * 0x27D4EB2F) & _HALF_MASK
    return x ^ (x >> 13)


def sample_keys(token_index: torch.Tensor, feature: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """`[N]` int64 keys in `[0, 2**56)`: a Feistel permutation of `token_index` keyed by feature and seed.

    A permutation never maps two tokens to one key, so within one feature keys are distinct.

    Example:
        >>> keys = sample_keys(torch.arange(1000), torch.zeros(1000, dtype=torch.long))
        >>> keys.unique().numel(), bool((keys < EMPTY_KEY).all())
        (1000, True)
    """
    left = (token_index >> _HALF_BITS) & _HALF_MASK
    right = token_index & _HALF_MASK
    tweak = (feature * 0x9E3779B1 + seed * 0x85EBCA6B) & _HALF_MASK
    for salt in _ROUND_SALTS:
        left, right = right, left ^ _mix(right ^ tweak ^ (salt & _HALF_MASK))
    return (left << _HALF_BITS) | right


def order_keys(value: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """`[N]` int64 keys that sort ascending as (value descending, sequence index ascending).

    `value` must be positive float32 (its bit pattern is then monotonic) and `seq` below 2**32.

    Example:
        >>> order_keys(torch.tensor([1.0, 2.0, 2.0]), torch.tensor([0, 5, 3])).argsort().tolist()
        [2, 1, 0]
    """
    bits = value.float().contiguous().view(torch.int32).long()
    return ((0x7FFFFFFF - bits) << 32) | seq


def scale_exponents(max_values: torch.Tensor) -> torch.Tensor:
    """`[n]` int32 `e` with `2**(e-1) <= max < 2**e`; `EMPTY_EXPONENT` where `max <= 0`.

    Example:
        >>> scale_exponents(torch.tensor([0.75, 1.0, 3.0, 0.0])).tolist()[:3]
        [0, 1, 2]
    """
    exponent = torch.frexp(max_values.float()).exponent.int()
    return torch.where(max_values > 0, exponent, torch.full_like(exponent, EMPTY_EXPONENT))


def pow2(exponent: torch.Tensor) -> torch.Tensor:
    """`2.0 ** exponent` in float64, built from the exponent bits (exact on every device)."""
    return ((exponent.long() + 1023) << 52).view(torch.float64)


def bucket_index(values: torch.Tensor, exponent: torch.Tensor, resolution: int) -> torch.Tensor:
    """`floor(value * resolution / 2**exponent)`, exact (a float32 times a small int fits a float64)."""
    return torch.floor(values.double() * resolution * pow2(-exponent)).long()


def ranked(
    group: torch.Tensor, orders: Sequence[tuple[torch.Tensor, bool]], limit: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Order N records by `group`, then by each `(key, descending)` in turn; keep `limit` per group.

    Returns `(index, group, rank)` of the kept records: `index` into the inputs, their group, and their
    0-based rank inside it. With keys that never tie inside a group, the result is order independent.

    Example:
        >>> order = [(torch.tensor([5.0, 3.0, 9.0, 7.0]), True)]
        >>> index, group, rank = ranked(torch.tensor([1, 0, 1, 1]), order, 2)
        >>> index.tolist(), rank.tolist()
        ([1, 2, 3], [0, 0, 1])
    """
    perm = torch.arange(group.numel(), device=group.device)
    for key, descending in reversed(orders):  # least significant first; stable sorts keep earlier orders
        perm = perm.index_select(
            0, torch.sort(key.index_select(0, perm), descending=descending, stable=True).indices
        )
    perm = perm.index_select(0, torch.sort(group.index_select(0, perm), stable=True).indices)
    sorted_group = group.index_select(0, perm)
    rank = torch.arange(perm.numel(), device=group.device) - torch.searchsorted(sorted_group, sorted_group)
    keep = rank < limit
    return perm[keep], sorted_group[keep], rank[keep]


@dataclass
class Entries:
    """N records of one activation each, with the feature's activations over a window around it.

    `key [N]` int64 sample key (`EMPTY_KEY` when unused), `value [N]` float32 activation at the token,
    `seq [N]` int64 sequence index (-1 marks an empty slot), `pos [N]` int64 position in the sequence,
    `ids [N, W]` int32 token ids of the window (-1 beyond the sequence), `acts [N, W]` float32.
    """

    key: torch.Tensor
    value: torch.Tensor
    seq: torch.Tensor
    pos: torch.Tensor
    ids: torch.Tensor
    acts: torch.Tensor

    @classmethod
    def empty(cls, n: int, width: int, device: torch.device | str = "cpu") -> Entries:
        """`n` empty slots."""
        return cls(
            key=torch.full((n,), EMPTY_KEY, dtype=torch.long, device=device),
            value=torch.zeros(n, device=device),
            seq=torch.full((n,), -1, dtype=torch.long, device=device),
            pos=torch.full((n,), -1, dtype=torch.long, device=device),
            ids=torch.full((n, width), -1, dtype=torch.int32, device=device),
            acts=torch.zeros(n, width, device=device),
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        """The fields by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def take(self, index: torch.Tensor) -> Entries:
        """The records at `index` (1-D)."""
        return Entries(**{name: t.index_select(0, index) for name, t in self.tensors().items()})

    def put(self, index: torch.Tensor, other: Entries) -> None:
        """Overwrite the records at `index` (1-D, no repeats) with `other`, in place."""
        for name, tensor in self.tensors().items():
            tensor.index_copy_(0, index, getattr(other, name))

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Entries:
        """A copy with `fn` applied to every tensor (e.g. `.to(device)`, `.clone()`)."""
        return Entries(**{name: fn(t) for name, t in self.tensors().items()})


@dataclass
class Table:
    """`n_groups x slots` records stored flat, group-major; each group keeps the `slots` records with the
    smallest keys. While a pass runs, slots hold their records in no particular order (an insert writes
    only the entering records, into the slots they free); `canonical` sorts every group by key."""

    entries: Entries
    slots: int

    @property
    def n_groups(self) -> int:
        return self.entries.key.numel() // self.slots

    def keys(self) -> torch.Tensor:
        """`[n_groups, slots]` view of the keys."""
        return self.entries.key.view(-1, self.slots)

    def flat(self, groups: torch.Tensor) -> torch.Tensor:
        """Flat record indices of all slots of `groups`."""
        return (groups[:, None] * self.slots + torch.arange(self.slots, device=groups.device)).flatten()

    def used(self, groups: torch.Tensor | None = None) -> tuple[Entries, torch.Tensor]:
        """The used records (of `groups`, default all) and the group of each."""
        index = self.flat(groups) if groups is not None else torch.arange(self.entries.key.numel())
        index = index.to(self.entries.key.device)
        index = index[self.entries.seq[index] >= 0]
        return self.entries.take(index), index // self.slots

    def clear(self, groups: torch.Tensor) -> None:
        """Empty every slot of `groups`."""
        index = self.flat(groups)
        self.entries.put(
            index, Entries.empty(index.numel(), self.entries.ids.shape[1], self.entries.ids.device)
        )

    def insert(
        self, group: torch.Tensor, key: torch.Tensor, records: Callable[[torch.Tensor], Entries]
    ) -> None:
        """Offer candidates (`group`, unique `key` within a group); those among their group's `slots`
        smallest keys replace the records they push out. `records(i)` builds the records of candidates `i`
        (indices into `group`), and is only called for the ones that enter.
        """
        table = self.keys()
        if group.numel() * 4 > table.shape[0]:
            worst = table.amax(dim=1).index_select(0, group)
        else:
            worst = table.index_select(0, group).amax(dim=1)
        candidate = torch.nonzero(key < worst).flatten()
        if not candidate.numel():
            return
        index, group, rank = ranked(
            group.index_select(0, candidate), [(key.index_select(0, candidate), False)], self.slots
        )
        groups, local = torch.unique_consecutive(group, return_inverse=True)
        offered = torch.full((len(groups), self.slots), _PAD_KEY, dtype=torch.long, device=key.device)
        source = torch.zeros_like(offered)
        offered[local, rank] = key[candidate[index]]
        source[local, rank] = candidate[index]
        rows = table.index_select(0, groups)
        # Groups with a free slot for every offered record take them all, the r-th into the r-th free
        # slot (nothing is pushed out: no merge). The others merge their keys with the offered ones.
        free, is_offered = rows == EMPTY_KEY, offered != _PAD_KEY
        n_offered = is_offered.sum(dim=1, keepdim=True)
        fits = n_offered <= free.sum(dim=1, keepdim=True)
        out_row, out_slot = torch.nonzero(free & (free.cumsum(dim=1) <= n_offered) & fits, as_tuple=True)
        in_row, in_rank = torch.nonzero(is_offered & fits, as_tuple=True)
        full = torch.nonzero(~fits.flatten()).flatten()
        if full.numel():
            both = torch.cat([rows.index_select(0, full), offered.index_select(0, full)], dim=1)
            kept = torch.zeros(both.shape, dtype=torch.bool, device=key.device)
            kept.scatter_(1, both.argsort(dim=1, stable=True)[:, : self.slots], True)
            merged_out, merged_slot = torch.nonzero(~kept[:, : self.slots], as_tuple=True)  # as many per
            merged_in, merged_rank = torch.nonzero(kept[:, self.slots :], as_tuple=True)  # row as enter
            out_row, out_slot = torch.cat([out_row, full[merged_out]]), torch.cat([out_slot, merged_slot])
            in_row, in_rank = torch.cat([in_row, full[merged_in]]), torch.cat([in_rank, merged_rank])
        self.entries.put(groups[out_row] * self.slots + out_slot, records(source[in_row, in_rank]))

    def canonical(self) -> None:
        """Sort every group's slots by key (empty slots last), so equal contents give equal tensors.

        Only the groups whose keys are out of order are rewritten (keys never tie within a group except
        `EMPTY_KEY`, so an ordered group is already canonical): on a wide SAE most groups are untouched and
        the whole table (gigabytes at 65k features) is not copied.
        """
        keys = self.keys()
        unsorted = torch.nonzero((keys[:, 1:] < keys[:, :-1]).any(dim=1)).flatten()
        for block in unsorted.split(_CANONICAL_BLOCK):  # a copy of one block at a time, not of the table
            order = keys.index_select(0, block).argsort(dim=1, stable=True)
            source = (order + block[:, None] * self.slots).flatten()
            self.entries.put(self.flat(block), self.entries.take(source))

    def ordered(self, first: int, count: int) -> Entries:
        """The records of groups `first .. first + count - 1`, each group's slots in canonical order (by
        key, empty slots last), read without reordering the table itself."""
        index = self.flat(torch.arange(first, first + count, device=self.entries.key.device))
        order = self.entries.key.index_select(0, index).view(count, self.slots).argsort(dim=1, stable=True)
        return self.entries.take((order + index.view(count, self.slots)[:, :1]).flatten())

    def column(self, name: str) -> torch.Tensor:
        """A field viewed as `[n_groups, slots, ...]`."""
        tensor = getattr(self.entries, name)
        return tensor.view(self.n_groups, self.slots, *tensor.shape[1:])
