"""A stable integer index per measurement kind, so per-kind tables are numpy arrays.

The index is the position of the kind in `vitals.Kind` (enum order). Appending a kind to the enum keeps every
existing index; reordering the enum would change them, so tables are always rebuilt from this module, never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from vitals import KINDS, Kind

KIND_ORDER: tuple[Kind, ...] = tuple(Kind)
N_KINDS = len(KIND_ORDER)
KIND_INDEX: Mapping[Kind, int] = MappingProxyType({kind: i for i, kind in enumerate(KIND_ORDER)})
_SCALE: NDArray[np.float64] = np.array([10.0 ** KINDS[k].decimals for k in KIND_ORDER])
"""10 ** the displayed decimals per kind index (from `vitals.KINDS`, the one decimals table)."""


def round_as_shown(values: NDArray[np.float64], kind_idx: NDArray[np.int64] | int) -> NDArray[np.float64]:
    """Values at their kind's displayed decimals (half to even), as `vitals.KindInfo.rounded`: what every rule
    compares and every text shows, so "35,1 °C, under rød grense 35,1 °C" cannot be written."""
    scale = _SCALE[kind_idx]
    return np.asarray(np.rint(np.asarray(values, dtype=np.float64) * scale) / scale, dtype=np.float64)


def kind_index(kind: Kind | str) -> int:
    """The table index of one kind; raises ValueError naming an unknown kind."""
    try:
        return KIND_INDEX[Kind(kind)]
    except ValueError:
        raise ValueError(f"unknown measurement kind {kind!r}") from None


def kind_indices(kinds: Iterable[Kind | str] | NDArray[np.str_]) -> NDArray[np.int64]:
    """Map an array of kind names to table indices; looks up each distinct name once, not each reading."""
    names = np.asarray(kinds if isinstance(kinds, np.ndarray) else list(kinds), dtype=np.str_)
    if names.size == 0:
        return np.zeros(0, dtype=np.int64)
    distinct, inverse = np.unique(names, return_inverse=True)
    codes = np.array([kind_index(str(name)) for name in distinct], dtype=np.int64)
    return codes[inverse.reshape(names.shape)]
