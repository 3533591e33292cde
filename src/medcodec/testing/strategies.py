"""Hypothesis strategies for medcodec inputs, importable by tests and by users' own tests."""

from __future__ import annotations

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # a plain install: hypothesis comes with the [test] extra
    raise ImportError("medcodec.testing.strategies needs hypothesis: pip install 'medcodec[test]'") from exc

from ..spec import storage_dtype, value_range

__all__ = ["pixel_specs", "images"]


@st.composite
def pixel_specs(draw: st.DrawFn, min_bits: int = 8, max_bits: int = 16) -> tuple[int, bool]:
    """(bits_stored, signed) pairs."""
    return draw(st.integers(min_bits, max_bits)), draw(st.booleans())


@st.composite
def images(
    draw: st.DrawFn,
    *,
    min_bits: int = 8,
    max_bits: int = 16,
    max_side: int = 40,
    max_frames: int = 3,
) -> tuple[np.ndarray, int, bool]:
    """(pixels, bits_stored, signed): 2-D or 3-D arrays of any size, values in range.

    Half the draws are smooth (a gradient plus noise, like real images), half are
    arbitrary values, which stress the entropy coder with large categories.
    """
    bits, signed = draw(pixel_specs(min_bits, max_bits))
    lo, hi = value_range(bits, signed)
    frames = draw(st.integers(1, max_frames))
    rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    dtype = storage_dtype(bits, signed)
    if draw(st.booleans()):
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        y, x = np.mgrid[0:rows, 0:cols]
        base = lo + (hi - lo) * (0.2 + 0.6 * ((x + y) / max(1, rows + cols - 2)))
        arr = base[None] + rng.normal(0, (hi - lo) * 0.02, (frames, rows, cols))
        arr = np.clip(np.rint(arr), lo, hi).astype(dtype)
    else:
        arr = draw(hnp.arrays(dtype, (frames, rows, cols), elements=st.integers(lo, hi)))
    if frames == 1 and draw(st.booleans()):
        arr = arr[0]
    return arr, bits, signed
