"""numba kernels of the series mapping: one pass over a frame where NumPy needs nine to fourteen.

* :func:`map_frame` is :meth:`~.mapping.SeriesMapping.map`'s general path (clipping, scale,
  padding code), per voxel in the order the NumPy twin :func:`map_frame_reference` applies them;
* :func:`padding_extent` is what :func:`~.mapping.declare_padding` measures: the decoded range of
  the padding voxels, and how many tissue voxels decode into it (twin :func:`padding_extent_reference`);
* :func:`padding_scan` is what :func:`medcodec.dicom.compress.declare_coded_padding` asks first:
  is any voxel padding, and does tissue lie within one coded unit of the padding values
  (:func:`~.mapping.padding_touches_tissue`) (twin :func:`padding_scan_reference`). An MR whose
  background is padding value 0 and noise: answered without the masks (ten NumPy passes over
  the frame, ~50 us per 256x256 instance of a live archive).

Both give the twins' values exactly (integers only); ``tests/dicom/test_lossy.py`` checks them, also
under ``NUMBA_DISABLE_JIT=1``. Measured on a 512x512 GE CT with Pixel Padding Value (pydicom's
``693_UNCR``, best of 50 calls): the mapping 0.28 -> 0.09 ms, the padding measure 0.27 (its twin)
-> 0.06 ms, per frame of a live archive (whose whole cost per instance is about 5 ms).
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "map_frame",
    "map_frame_reference",
    "padding_extent",
    "padding_extent_reference",
    "padding_scan",
    "padding_scan_reference",
    "warm",
]

_jit = numba.njit(cache=True, nogil=True)


@_jit
def map_frame(src, out, clip_low, clip_high, offset, scale, lo_t, hi_t, pad_lo, pad_hi, pad_code, has_pad):  # type: ignore[no-untyped-def]
    """``out[...] = mapped(src)`` voxel by voxel; returns how many non-padding voxels were clipped.

    A padding voxel (``pad_lo <= v <= pad_hi`` when ``has_pad``) becomes ``pad_code``; any other is
    clipped to ``clip_low..clip_high`` (counted), shifted by ``-offset``, divided by ``scale``
    rounding half up (floor of ``(v + scale // 2) / scale``) and clipped to ``lo_t..hi_t``.
    """
    flat = src.reshape(-1)
    dst = out.reshape(-1)
    clipped = 0
    half = scale // 2
    for i in range(flat.size):
        v = np.int64(flat[i])
        if has_pad and pad_lo <= v <= pad_hi:
            dst[i] = pad_code
            continue
        if v < clip_low:
            v = np.int64(clip_low)
            clipped += 1
        elif v > clip_high:
            v = np.int64(clip_high)
            clipped += 1
        v -= offset
        if scale > 1:
            v = (v + half) // scale
        if v < lo_t:
            v = np.int64(lo_t)
        elif v > hi_t:
            v = np.int64(hi_t)
        dst[i] = v
    return clipped


def map_frame_reference(
    src: NDArray[np.integer], dtype: np.dtype, clip_low: int, clip_high: int, offset: int, scale: int,
    lo_t: int, hi_t: int, pad_lo: int, pad_hi: int, pad_code: int, has_pad: bool,
) -> tuple[NDArray[np.integer], int]:  # fmt: skip
    """:func:`map_frame` in NumPy (the twin): ``(mapped array of dtype, clipped count)``."""
    a = np.asarray(src).astype(np.int64)
    pad = (a >= pad_lo) & (a <= pad_hi) if has_pad else np.zeros(a.shape, bool)
    clipped = int(np.count_nonzero(((a < clip_low) | (a > clip_high)) & ~pad))
    a = np.clip(a, clip_low, clip_high) - offset
    if scale > 1:
        a = (a + scale // 2) // scale
    a = np.clip(a, lo_t, hi_t)
    a[pad] = pad_code
    return a.astype(dtype), clipped


@_jit
def padding_extent(decoded, pad, tissue):  # type: ignore[no-untyped-def]
    """``(lo, hi, mixed)``: the min and max of ``decoded`` over ``pad`` (``lo > hi`` when no voxel is
    padding), and how many ``tissue`` voxels decode into ``lo..hi``."""
    d = decoded.reshape(-1)
    p = pad.reshape(-1)
    t = tissue.reshape(-1)
    lo = np.int64(1) << 62
    hi = -lo
    for i in range(d.size):
        if p[i]:
            v = np.int64(d[i])
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    mixed = 0
    if lo <= hi:
        for i in range(d.size):
            if t[i]:
                v = np.int64(d[i])
                if lo <= v <= hi:
                    mixed += 1
    return lo, hi, mixed


def padding_extent_reference(
    decoded: NDArray[np.integer], pad: NDArray[np.bool_], tissue: NDArray[np.bool_]
) -> tuple[int, int, int]:
    """:func:`padding_extent` in NumPy (the twin)."""
    if not pad.any():
        return 1 << 62, -(1 << 62), 0
    values = decoded[pad].astype(np.int64)
    lo, hi = int(values.min()), int(values.max())
    other = decoded[tissue].astype(np.int64)
    return lo, hi, int(np.count_nonzero((other >= lo) & (other <= hi)))


@_jit
def padding_scan(src, pad_lo, pad_hi, has_pad, near_lo, near_hi, floor):  # type: ignore[no-untyped-def]
    """``(any padding, padding touches tissue)`` of stored values ``src``: a voxel is padding when
    ``has_pad`` and ``pad_lo <= v <= pad_hi``, tissue when ``v >= floor``; the padding touches
    tissue when a voxel that is tissue and not padding lies in ``near_lo..near_hi``."""
    flat = src.reshape(-1)
    any_pad = False
    touching = False
    for i in range(flat.size):
        v = np.int64(flat[i])
        if has_pad and pad_lo <= v <= pad_hi:
            any_pad = True
        elif near_lo <= v <= near_hi and v >= floor:
            touching = True
        if (any_pad or not has_pad) and touching:
            break
    return any_pad, touching


def padding_scan_reference(
    src: NDArray[np.integer], pad_lo: int, pad_hi: int, has_pad: bool, near_lo: int, near_hi: int, floor: int
) -> tuple[bool, bool]:
    """:func:`padding_scan` in NumPy (the twin)."""
    a = np.asarray(src).astype(np.int64)
    pad = (a >= pad_lo) & (a <= pad_hi) if has_pad else np.zeros(a.shape, bool)
    near = (a >= near_lo) & (a <= near_hi)
    return bool(pad.any()), bool((near & (a >= floor) & ~pad).any())


def warm() -> None:
    """Compile the kernels for the argument types of CT and MR series (numba caches them on disk):
    ``make install`` and the server's encoder processes call it, so no request pays for it."""
    for src in (np.int16, np.uint16):
        for dst in (np.uint16, np.int16):
            map_frame(np.zeros((2, 2), src), np.zeros((2, 2), dst), 0, 1, 0, 2, 0, 1, 0, -1, 0, True)
            padding_extent(np.zeros((1, 2, 2), dst), np.zeros((1, 2, 2), bool), np.ones((1, 2, 2), bool))
        padding_scan(np.zeros((1, 2, 2), src), 0, 0, True, -1, 1, 0)


if __name__ == "__main__":
    warm()
