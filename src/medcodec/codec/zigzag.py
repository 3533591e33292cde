"""Zigzag scan order (T.81 Figure A.6).

``ZIGZAG[k]`` is the natural (row-major, ``8*v + u``) index of the k-th coefficient in
zigzag order; ``UNZIGZAG`` is its inverse, so ``natural[..., ZIGZAG]`` is zigzag order and
``zz[..., UNZIGZAG]`` is natural order again.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ZIGZAG", "UNZIGZAG", "to_zigzag", "from_zigzag"]


def _zigzag_order(n: int = 8) -> np.ndarray:
    order = sorted(
        ((r, c) for r in range(n) for c in range(n)),
        key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else rc[1]),
    )
    return np.array([r * n + c for r, c in order], dtype=np.intp)


ZIGZAG: np.ndarray = _zigzag_order()
ZIGZAG.flags.writeable = False
UNZIGZAG: np.ndarray = np.argsort(ZIGZAG)
UNZIGZAG.flags.writeable = False


def to_zigzag(natural: np.ndarray) -> np.ndarray:
    """(..., 64) natural order -> (..., 64) zigzag order."""
    return natural[..., ZIGZAG]


def from_zigzag(zz: np.ndarray) -> np.ndarray:
    """(..., 64) zigzag order -> (..., 64) natural order."""
    return zz[..., UNZIGZAG]
