#!/usr/bin/env python3
"""What larger transforms or intra prediction would buy `.mdc` 2.1: an experiment, no format change.

Usage (from the repository root; heavy, run it niced)::

    nice -n 10 python benchmarks/explore_transforms.py                  # 6 slices per series
    nice -n 10 python benchmarks/explore_transforms.py --frames 2 --series ct_head_phantom_philips_ingenuity

Per series (chest CT, head CT, 256x256 MR of the shared data, evenly spaced slices, each coded
on its own as in ``bench_mdc2.py``; PSNR peak ``2**bits_stored - 1``, BD-rate from the points
between 0.2 and 3.5 bpp) it prints rate-PSNR points and BD-rates of:

* ``2.1 fast``: the real encoder (``medcodec.encode(entropy="arith", intra=False)``: rounding, centroid
  offsets, deblocking and restoration filter chosen by the encoder);
* ``8x8 plain``: the experiment's baseline: the 2.1 steps (``quantize.quant_table`` with the range
  bits 2.1 picks), rounded levels, plain dequantisation. Its levels are checked against the
  real encoder's (all but a few ties of a float DCT are equal);
* ``quadtree 16`` / ``quadtree 32``: per 16x16 (32x32) area, one orthonormal 16x16 (32x32) DCT
  or a split into four, chosen by D + lambda R. An NxN step at frequency (u, v) is the 8x8 step
  at the same spatial frequency, ``steps8[u // (N/8), v // (N/8)]``; the DC is quantised with
  ``N/8`` times the 8x8 DC step, so its level has the scale of an 8x8 DC; ``coarse DC``: x1.5;
* ``intra ...``: 8x8 blocks in raster order predicted from the reconstructed row above (with the
  above-right) and column to the left (:data:`MODE_NAMES`: DC, AV1 SMOOTH, paeth, vertical,
  horizontal, oblique angles at HEVC displacements), the residual DCT-coded with the 2.1 steps,
  the mode by D + lambda R; ``smoothed refs``: [1, 2, 1]-filtered references for oblique modes;
* ``intra 16 modes 8+4x4`` / ``16+8`` / ``16+8+4x4``: the same on 4x4 and 16x16 blocks too, per
  16x16 macroblock (:func:`code_intra_mb`).

Each candidate is printed twice: as coded, and ``+filters``: 2.1's decoder filters (deblocking
search, one-class restoration filter, as the fast encoder chooses them) applied to its pixels,
their bytes counted. The ``+filters`` rows are the ones comparable with 2.1 fast.

The rate is the REAL 2.1 level coder (``mdc2.encode_levels``, multi-symbol) on the candidate's
levels: a larger block's zigzag is cut into 63-coefficient runs laid onto the AC slots of the
8x8 blocks it covers (its DC level copied into their DC slots, so the coder's DC prediction sees
a flat area; the last ``(N/8)^2 - 1`` AC coefficients of the NxN zigzag, the highest
frequencies, are dropped and their error counted); four 4x4 blocks of an 8x8 cell are
interleaved. Side information that 2.1 lacks (split flags, intra modes) is counted at its
empirical entropy per frame (an adaptive coder's rate without its learning cost), plus the frame
and container overhead of a one-frame 2.1 stream. Decisions use a static estimate of the level
coder (per zigzag position, learned from the same frame's levels), rescaled per frame to the
real coder's bits (the calibration: its raw error is printed per series); the bits counted in
the results are always the real coder's. Distortion: pixels reconstructed, rounded and clipped
to the declared range.

BD-rates are printed against OpenJPEG (``external.jpeg2k_encode``, PSNR targets), against
``8x8 plain`` (``+filters`` rows against ``8x8 plain +filters``: the gain of the tool alone) and
against ``2.1 fast``; then the thread time of the candidate's encoder-side search relative to
``8x8 plain`` (this script's implementations: numba per-block loops against vectorised NumPy),
the share of side information in the stream and with a mode context (``ctx``), and the shares of
block sizes or modes at two qualities. For intra candidates a decoder loop rebuilds one frame
from levels and modes (checked equal to the encoder's reconstruction) and is timed with and
without the prediction. Results: docs/design-notes.md, "Which coding tool would close the head
CT gap".
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import math
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pydicom

import medcodec
from medcodec import external
from medcodec.codec import _kernels_v2 as K2
from medcodec.codec import container, levelshift, mdc2, quantize
from medcodec.codec.framecoder import FrameCoder
from medcodec.codec.mdc import arith_range_bits
from medcodec.codec.zigzag import ZIGZAG
from medcodec.evaluate.bjontegaard import bd_rate
from medcodec.spec import PixelSpec, value_range

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
SERIES = ("ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity", "mr_head_ge_signa_t1_ctk")
QUALITIES = (15, 25, 35, 45, 55, 65, 72, 80, 87, 93, 97, 100)
MULTI = container.ENTROPY_MULTI
#: Bytes of a one-frame 2.1 stream besides its coded levels (container + frame segment).
FRAME_BYTES = container.FIXED_BYTES + mdc2.DCT_FRAME_OVERHEAD
#: lambda = LAMBDA_SCALE * step^2 (step: geometric mean of the first 9 AC steps): dD/dR of a
#: uniform quantiser at high rate is 2 ln2 * step^2 / 12 = 0.116 step^2.
LAMBDA_SCALE = 0.116


# -- transforms ------------------------------------------------------------------------------


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (rows: frequencies)."""
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    a = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2 / n)
    a[0] /= math.sqrt(2)
    return a


def zigzag_order(n: int) -> np.ndarray:
    """JPEG zigzag of an n x n block: natural (row-major) index of the k-th coefficient."""
    idx = sorted((u + v, u if (u + v) % 2 else v, u * n + v) for u in range(n) for v in range(n))
    return np.array([i for _, _, i in idx])


assert np.array_equal(zigzag_order(8), ZIGZAG), "the generic zigzag must be JPEG's on 8x8"


def blocks(img: np.ndarray, n: int) -> np.ndarray:
    r, c = img.shape
    return img.reshape(r // n, n, c // n, n).swapaxes(1, 2).reshape(-1, n, n)


def unblocks(b: np.ndarray, rows: int, cols: int) -> np.ndarray:
    n = b.shape[-1]
    return b.reshape(rows // n, cols // n, n, n).swapaxes(1, 2).reshape(rows, cols)


def size_steps(steps8: np.ndarray, n: int) -> np.ndarray:
    """n x n steps (natural order): the 8x8 step of the same spatial frequency; DC x n/8."""
    f = n // 8
    s = np.asarray(steps8, dtype=np.float64).reshape(8, 8)[np.arange(n)[:, None] // f, np.arange(n)[None, :] // f]
    s = s.copy()
    s[0, 0] *= f
    return s


class Setup:
    """One frame at one quality: the 2.1 steps, level shift and range."""

    def __init__(self, frame: np.ndarray, bits: int, signed: bool, q: float):
        vr = levelshift.check_range(frame[None], bits, signed)
        rb = arith_range_bits(levelshift.content_range_bits(frame[None], vr[0], vr[1], bits), bits, frame[None])
        self.steps8 = quantize.quant_table(q, rb).astype(np.float64).reshape(8, 8)
        self.offset = levelshift.level_offset(bits, signed)
        self.lo, self.hi = value_range(bits, signed)
        self.coder = FrameCoder.for_table(quantize.quant_table(q, rb), bits, signed)
        ac = self.steps8.ravel()[ZIGZAG[1:10]]
        self.lam = LAMBDA_SCALE * float(np.exp(np.mean(np.log(ac)))) ** 2
        self.x = frame.astype(np.float64) - self.offset


def quantise(c: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Round half away from zero (the 2.1 fast rule: rounding 0.5 everywhere)."""
    s = c / steps
    return (np.sign(s) * np.floor(np.abs(s) + 0.5)).astype(np.int64)


class SizeCoding:
    """Every n x n block of a frame DCT-coded: levels laid onto 8x8 slots, reconstruction, error."""

    def __init__(self, st: Setup, n: int, dc_scale: float = 1.0):
        rows, cols = st.x.shape
        a = dct_matrix(n)
        steps = size_steps(st.steps8, n)
        steps[0, 0] *= dc_scale
        coef = a @ blocks(st.x, n) @ a.T  # (nb, n, n)
        zz = zigzag_order(n)
        m = (n // 8) ** 2
        keep = np.zeros(n * n, bool)
        keep[zz[: 1 + 63 * m]] = True  # DC + the first 63 m AC of the zigzag
        lv = quantise(coef, steps).reshape(-1, n * n) * keep
        self.recon = unblocks(a.T @ (lv.reshape(-1, n, n) * steps) @ a, rows, cols) + st.offset
        np.clip(self.recon, st.lo, st.hi, out=self.recon)
        self.err = (self.recon - st.offset - st.x) ** 2  # per pixel, after clipping
        # pseudo 8x8 blocks: (nb, m, 64) zigzag; AC runs of 63, the DC level copied
        zl = lv[:, zz]
        pseudo = np.zeros((lv.shape[0], m, 64), np.int64)
        pseudo[:, :, 0] = zl[:, :1]
        pseudo[:, :, 1:] = zl[:, 1 : 1 + 63 * m].reshape(-1, m, 63)
        self.pseudo = pseudo
        self.n = n


def to_frame_levels(pseudo: np.ndarray, n: int, rows: int, cols: int) -> np.ndarray:
    """(nb_n, m, 64) pseudo blocks -> (nb_8, 64) in 8x8 raster order."""
    f = n // 8
    by, bx = rows // n, cols // n
    return pseudo.reshape(by, bx, f, f, 64).transpose(0, 2, 1, 3, 4).reshape(by * f * bx * f, 64)


def from_frame_levels(lv8: np.ndarray, n: int, rows: int, cols: int) -> np.ndarray:
    f = n // 8
    by, bx = rows // n, cols // n
    return lv8.reshape(by, f, bx, f, 64).transpose(0, 2, 1, 3, 4).reshape(by * bx, f * f, 64)


class RateModel:
    """Static estimate of the 2.1 level coder's bits per 8x8 block, learned from 8x8 levels:
    -log2 p(min(|level|, 15) | zigzag position) up to the last non-zero level (+ sign, + an
    Elias-gamma escape), -log2 p(non-zero count), DC by its difference to the previous block."""

    def __init__(self, lv8: np.ndarray):
        mag = np.minimum(np.abs(lv8), 15)
        self.cost = np.empty((64, 16))
        for k in range(64):
            h = np.bincount(mag[:, k], minlength=16).astype(np.float64) + 0.5
            self.cost[k] = -np.log2(h / h.sum())
        self.cost[:, 1:] += 1.0  # sign
        self.cost[0] = 0.0  # DC: see dc_bits
        nz = np.minimum(np.count_nonzero(lv8[:, 1:], axis=1), 63)
        h = np.bincount(nz, minlength=64).astype(np.float64) + 0.5
        self.nz_cost = -np.log2(h / h.sum())
        self.scale = 1.0  # real coder bits / estimated bits of a whole frame (set by the caller)

    def block_bits(self, lv: np.ndarray) -> np.ndarray:
        """(..., 64) zigzag levels -> AC bits per block (DC excluded)."""
        a = np.abs(lv)
        mag = np.minimum(a, 15)
        ac = a[..., 1:] != 0
        last = np.where(ac.any(-1), 63 - np.argmax(ac[..., ::-1], axis=-1), 0)  # last non-zero position
        c = self.cost[np.arange(64), mag]
        c = np.where(np.arange(64) <= last[..., None], c, 0.0)
        c[..., 0] = 0.0
        esc = np.where(a >= 15, 2 * np.log2(np.maximum(a, 15) - 13) + 1, 0.0)
        return c.sum(-1) + esc[..., 1:].sum(-1) + self.nz_cost[np.count_nonzero(lv[..., 1:], axis=-1)]


def dc_bits(d: np.ndarray) -> np.ndarray:
    return 1 + 2 * np.log2(1 + np.abs(d))


def entropy_bits(symbols: np.ndarray) -> float:
    """Empirical entropy x count (an adaptive coder's rate without learning cost)."""
    if symbols.size == 0:
        return 0.0
    h = np.bincount(symbols.ravel()).astype(np.float64)
    p = h[h > 0] / symbols.size
    return float(-(h[h > 0] * np.log2(p)).sum())


# -- candidates ------------------------------------------------------------------------------


def code_plain(st: Setup) -> tuple[np.ndarray, np.ndarray]:
    c8 = SizeCoding(st, 8)
    return to_frame_levels(c8.pseudo, 8, *st.x.shape), c8.recon


def code_quadtree(st: Setup, max_n: int, dc_scale: float = 1.0, lam_scale: float = 1.0) -> dict:
    """Bottom-up quadtree over 8 .. max_n: a block keeps its size if D + lam R is lower than the
    best coding of its four quarters. Returns levels, reconstruction, side bits and size shares."""
    rows, cols = st.x.shape
    lam = st.lam * lam_scale
    codings = {8: SizeCoding(st, 8)}
    n = 8
    while n < max_n:
        n *= 2
        codings[n] = SizeCoding(st, n, dc_scale)
    # a rate model per size, learned from the whole frame coded at that size and scaled so that
    # its total is the real coder's bits of that frame (the encoder could afford such a pre-pass)
    models = {}
    for n, cn in codings.items():
        lv = to_frame_levels(cn.pseudo, n, rows, cols)
        model = RateModel(lv)
        model.scale = len(mdc2.encode_levels(lv, cols // 8, MULTI)) * 8 / max(model.block_bits(lv).sum(), 1.0)
        models[n] = model
    # per 8x8 cell: chosen size, and per size the cost of the best coding of each n x n area
    by8, bx8 = rows // 8, cols // 8
    size_map = np.full((by8, bx8), 8)
    c8 = codings[8]
    d8 = blocks(c8.err, 8).sum((1, 2)).reshape(by8, bx8)
    lv8 = c8.pseudo[:, 0].reshape(by8, bx8, 64)
    dcl = lv8[..., 0]
    r8 = models[8].scale * (models[8].block_bits(lv8) + dc_bits(dcl - np.roll(dcl, 1, axis=1)))
    best = d8 + lam * r8  # J of the best coding of each n x n area (n = 8 here)
    n = 8
    while n < max_n:
        n *= 2
        f = n // 8
        cn = codings[n]
        by, bx = rows // n, cols // n
        dn = blocks(cn.err, n).sum((1, 2)).reshape(by, bx)
        ps = cn.pseudo.reshape(by, bx, f * f, 64)
        dcn = ps[..., 0, 0]
        rn = models[n].block_bits(ps).sum(-1) + dc_bits(dcn - np.roll(dcn, 1, axis=1)) + (f * f - 1)
        jn = dn + lam * (models[n].scale * rn + 1)  # + a split flag's bit, on either side
        split = best.reshape(by, 2, bx, 2).sum((1, 3)) + lam
        take = jn < split
        best = np.where(take, jn, split)
        size_map = np.where(np.repeat(np.repeat(take, f, 0), f, 1), n, size_map)
    # assemble levels and pixels
    lv = to_frame_levels(c8.pseudo, 8, rows, cols).copy()
    recon = c8.recon.copy()
    pix_map = np.repeat(np.repeat(size_map, 8, 0), 8, 1)
    for n, cn in codings.items():
        if n == 8:
            continue
        sel = size_map.ravel() == n
        lv[sel] = to_frame_levels(cn.pseudo, n, rows, cols)[sel]
        recon = np.where(pix_map == n, cn.recon, recon)
    # split flags: coded top-down; a flag per max_n area, then per quarter of a split one, ...
    side = 0.0
    n, region = max_n, np.ones((1, 1), bool)
    while n > 8:
        f = n // 8
        at = size_map[::f, ::f]
        here = np.ones(at.shape, bool) if n == max_n else np.repeat(np.repeat(region, 2, 0), 2, 1)
        side += entropy_bits((at[here] == n).astype(np.int64))
        region = here & (at < n)
        n //= 2
    shares = {n: float(np.mean(size_map == n)) for n in codings}
    return {"levels": lv, "recon": recon, "side_bits": side, "shares": shares}


# -- intra prediction (numba: blocks depend on their reconstructed neighbours) --------------------


#: Intra modes: 0 DC, 1 smooth (AV1 SMOOTH), 2 paeth, then angular ones as (family, A): family 1
#: predicts from the row above (A = 0 vertical), 0 from the column to the left (A = 0
#: horizontal); A is HEVC's displacement in 1/32 sample per row (column): +32 is 45 degrees
#: toward the above-right (below-left) references, -32 the 135-degree diagonal through the corner.
ANGULAR = np.array([(1, 0), (0, 0), (1, 32), (1, -32), (1, -21), (1, -9), (1, 9), (1, 21),
                    (0, -21), (0, -9), (0, 9), (0, 21), (0, 32)], dtype=np.int64)  # fmt: skip
MODE_NAMES = ("DC", "smooth", "paeth", "V", "H", "D45", "D135", "V-21", "V-9", "V+9", "V+21",
              "H-21", "H-9", "H+9", "H+21", "H+32")  # fmt: skip
MODE_SETS = {
    "DC/V/H": (0, 3, 4),
    "7 modes": (0, 1, 2, 3, 4, 5, 6),  # DC, smooth, paeth, V, H, D45, D135
    "16 modes": tuple(range(16)),  # + 9 more angles (AV1 has 56 directional, HEVC 33)
}


@numba.njit(cache=True)
def _line(ref: np.ndarray, corner: float, t: float) -> float:
    """The reference line at real position t: t = -1 the corner, t = k ref[k], linear in between,
    the last sample repeated beyond the end."""
    if t <= -1.0:
        return corner
    k = int(np.floor(t))
    f = t - k
    v0 = corner if k < 0 else ref[min(k, ref.size - 1)]
    v1 = ref[min(k + 1, ref.size - 1)]
    return (1 - f) * v0 + f * v1


@numba.njit(cache=True)
def _predict(mode: int, top: np.ndarray, left: np.ndarray, corner: float, out: np.ndarray) -> None:
    """8x8 prediction from top[0:16] (above and above-right), left[0:16] (left and below-left, the
    latter a copy of left[7]) and the corner (above-left); ``mode`` as in :data:`MODE_NAMES`."""
    if mode == 0:  # DC
        s = 0.0
        for i in range(8):
            s += top[i] + left[i]
        out[:, :] = s / 16
    elif mode == 1:  # smooth (AV1 SMOOTH: quadratic weights toward the bottom-left / top-right)
        w = np.array([255.0, 197, 146, 105, 73, 50, 37, 32]) / 256
        for i in range(8):
            for j in range(8):
                out[i, j] = (w[i] * top[j] + (1 - w[i]) * left[7] + w[j] * left[i] + (1 - w[j]) * top[7]) / 2
    elif mode == 2:  # paeth
        for i in range(8):
            for j in range(8):
                base = top[j] + left[i] - corner
                pt, pl, pc = abs(base - top[j]), abs(base - left[i]), abs(base - corner)
                out[i, j] = left[i] if (pl <= pt and pl <= pc) else (top[j] if pt <= pc else corner)
    else:
        fam, ang = ANGULAR[mode - 3, 0], ANGULAR[mode - 3, 1]
        d = ang / 32.0
        main, side = (top, left) if fam == 1 else (left, top)
        for i in range(8):
            for j in range(8):
                r, c = (i, j) if fam == 1 else (j, i)  # r: distance from the main line, c: along it
                t = c + (r + 1) * d
                if t >= -1.0 or d >= 0:
                    out[i, j] = _line(main, corner, t)
                else:  # the ray leaves through the side line
                    out[i, j] = _line(side, corner, r - (c + 1) / -d)


@numba.njit(cache=True)
def _refs(recon: np.ndarray, r0: int, c0: int, top: np.ndarray, left: np.ndarray) -> float:
    """Fill top[0:16] (above, above-right) and left[0:16] (left, then left[7] repeated) of the 8x8
    block at (r0, c0) from the reconstruction; returns the corner. Missing samples copy the
    nearest available one (HEVC-style substitution), 0 (mid-grey after the level shift) if none."""
    cols = recon.shape[1]
    if r0 > 0:
        for j in range(16):
            top[j] = recon[r0 - 1, c0 + j] if c0 + j < cols else top[7]
    if c0 > 0:
        for i in range(8):
            left[i] = recon[r0 + i, c0 - 1]
    if r0 == 0 and c0 == 0:
        top[:] = 0.0
        left[:8] = 0.0
    elif r0 == 0:
        top[:] = left[0]
    elif c0 == 0:
        left[:8] = top[0]
    left[8:] = left[7]  # below-left: not yet decoded in raster order
    return recon[r0 - 1, c0 - 1] if (r0 > 0 and c0 > 0) else (top[0] if r0 > 0 else left[0])


@numba.njit(cache=True)
def _smooth_refs(top, left, corner, ftop, fleft) -> float:
    """[1, 2, 1]-filtered references; returns the filtered corner."""
    ftop[0] = (corner + 2 * top[0] + top[1]) / 4
    fleft[0] = (corner + 2 * left[0] + left[1]) / 4
    for k in range(1, 16):
        ftop[k] = (top[k - 1] + 2 * top[k] + top[min(k + 1, 15)]) / 4
        fleft[k] = (left[k - 1] + 2 * left[k] + left[min(k + 1, 15)]) / 4
    return (left[0] + 2 * corner + top[0]) / 4


@numba.njit(cache=True)
def _intra_decode(levels, modes, mode_set, steps, a, zz, smooth_ref, offs, lo, hi, use_pred, recon):
    """The decoder's side of :func:`_intra_frame`: prediction + inverse DCT block by block.
    ``use_pred=False`` skips the prediction (plain 8x8 reconstruction in the same loop), for timing."""
    rows, cols = recon.shape
    bx = cols // 8
    pred = np.zeros((8, 8))
    top, left, ftop, fleft = np.empty(16), np.empty(16), np.empty(16), np.empty(16)
    res = np.empty((8, 8))
    for by in range(rows // 8):
        for bxi in range(bx):
            r0, c0 = by * 8, bxi * 8
            b = by * bx + bxi
            if use_pred:
                corner = _refs(recon, r0, c0, top, left)
                m = mode_set[modes[b]]
                if smooth_ref and m >= 5:
                    fcorner = _smooth_refs(top, left, corner, ftop, fleft)
                    _predict(m, ftop, fleft, fcorner, pred)
                else:
                    _predict(m, top, left, corner, pred)
            for k in range(64):
                p = zz[k]
                res[p // 8, p % 8] = (levels[b, k] - np.sign(levels[b, k]) * offs[k]) * steps[p // 8, p % 8]
            rr = a.T @ res @ a
            for i in range(8):
                for j in range(8):
                    recon[r0 + i, c0 + j] = min(max(pred[i, j] + rr[i, j], lo), hi)


@numba.njit(cache=True)
def _intra_frame(x, steps, a, zz, cost, nz_cost, lam, lo, hi, mode_set, mode_cost, smooth_ref, offs, osum, ocnt, levels,
                 modes, recon):  # fmt: skip
    """Raster-order 8x8 intra coding of x (level-shifted); fills levels (zigzag), modes, recon.
    cost[k, min(|l|, 15)]: static bits of a level at zigzag position k (sign included).
    smooth_ref: the oblique modes (not DC, smooth, paeth, V, H) predict from references filtered
    with [1, 2, 1] (as HEVC's intra smoothing). offs: per zigzag position, how far toward zero a
    non-zero level is dequantised (in steps, 2.1's centroid offsets); osum / ocnt gather
    ``|level| - |coefficient / step|`` of the chosen non-zero levels (to derive them)."""
    rows, cols = x.shape
    bx = cols // 8
    pred = np.empty((8, 8))
    best_pred = np.empty((8, 8))
    top = np.empty(16)
    left = np.empty(16)
    ftop = np.empty(16)
    fleft = np.empty(16)
    res = np.empty((8, 8))
    lvz = np.empty(64, np.int64)
    best_lv = np.empty(64, np.int64)
    sz = np.empty(64)
    best_s = np.empty(64)
    for by in range(rows // 8):
        for bxi in range(bx):
            r0, c0 = by * 8, bxi * 8
            corner = _refs(recon, r0, c0, top, left)
            best_j = 1e300
            best_m = 0
            fcorner = _smooth_refs(top, left, corner, ftop, fleft)
            for mi in range(mode_set.size):
                if smooth_ref and mode_set[mi] >= 5:
                    _predict(mode_set[mi], ftop, fleft, fcorner, pred)
                else:
                    _predict(mode_set[mi], top, left, corner, pred)
                for i in range(8):
                    for j in range(8):
                        res[i, j] = x[r0 + i, c0 + j] - pred[i, j]
                coef = a @ res @ a.T
                d = 0.0
                bits = mode_cost[mi]
                last = 0
                nz = 0
                for k in range(64):
                    p = zz[k]
                    c = coef[p // 8, p % 8]
                    s = c / steps[p // 8, p % 8]
                    lv = np.int64(np.floor(abs(s) + 0.5))
                    if s < 0:
                        lv = -lv
                    lvz[k] = lv
                    sz[k] = s
                    e = c - (lv - np.sign(lv) * offs[k]) * steps[p // 8, p % 8]
                    d += e * e
                    if lv != 0 and k > 0:
                        last = k
                        nz += 1
                for k in range(1, last + 1):
                    al = abs(lvz[k])
                    bits += cost[k, min(al, 15)]
                    if al >= 15:
                        bits += 2 * np.log2(al - 13) + 1
                bits += nz_cost[nz] + 1 + 2 * np.log2(1 + abs(lvz[0]))
                jc = d + lam * bits
                if jc < best_j:
                    best_j = jc
                    best_m = mi
                    best_pred[:, :] = pred
                    best_lv[:] = lvz
                    best_s[:] = sz
            # reconstruct
            for i in range(8):
                for j in range(8):
                    res[i, j] = 0.0
            for k in range(64):
                p = zz[k]
                res[p // 8, p % 8] = (best_lv[k] - np.sign(best_lv[k]) * offs[k]) * steps[p // 8, p % 8]
                if k > 0 and best_lv[k] != 0:
                    osum[k] += abs(best_lv[k]) - abs(best_s[k])
                    ocnt[k] += 1
            rr = a.T @ res @ a
            for i in range(8):
                for j in range(8):
                    v = best_pred[i, j] + rr[i, j]
                    recon[r0 + i, c0 + j] = min(max(v, lo), hi)
            b = by * bx + bxi
            levels[b, :] = best_lv
            modes[b] = best_m


def code_intra(
    st: Setup,
    mode_set: tuple[int, ...] = MODE_SETS["7 modes"],
    lam_scale: float = 1.0,
    smooth_ref: bool = False,
    offsets: bool = False,
) -> dict:
    """Two passes: the first decides with the rate model of the plain 8x8 levels and a flat mode
    cost, the second with a model learned from the first pass's residual levels and modes (both
    scaled to the real coder's bits of the levels they were learned from). ``offsets``: the
    second pass dequantises with 2.1's centroid offsets (half the mean ``|level| - |c / step|``
    of the first pass's non-zero levels per position, at least 8 of them, 0 .. 1/2 step, in
    1/256; 63 bytes counted)."""
    rows, cols = st.x.shape
    cols8 = cols // 8
    nb = (rows // 8) * cols8
    n_modes = len(mode_set)
    lv, _ = code_plain(st)
    mode_cost = np.full(n_modes, math.log2(n_modes))
    offs = np.zeros(64)
    for pas in range(2):
        model = RateModel(lv)
        scale = len(mdc2.encode_levels(lv, cols8, MULTI)) * 8 / max(model.block_bits(lv).sum(), 1.0)
        levels = np.zeros((nb, 64), np.int64)
        modes = np.zeros(nb, np.int64)
        recon = np.zeros((rows, cols))
        osum, ocnt = np.zeros(64), np.zeros(64, np.int64)
        _intra_frame(st.x, st.steps8, dct_matrix(8), ZIGZAG.astype(np.int64), model.cost * scale,
                     model.nz_cost[:64] * scale, st.lam * lam_scale, float(st.lo - st.offset),
                     float(st.hi - st.offset), np.array(mode_set, np.int64), mode_cost, smooth_ref, offs, osum,
                     ocnt, levels, modes, recon)  # fmt: skip
        lv = levels
        if offsets and pas == 0:
            offs = np.where(ocnt >= 8, 0.5 * osum / np.maximum(ocnt, 1), 0.0)
            offs = np.clip(np.rint(offs * 256), 0, 128) / 256
            offs[0] = 0.0
        h = np.bincount(modes, minlength=n_modes) + 0.5
        mode_cost = -np.log2(h / h.sum())
    shares = {MODE_NAMES[m]: float(np.mean(modes == i)) for i, m in enumerate(mode_set)}
    side = entropy_bits(modes) + (63 * 8 if offsets else 0)
    return {"levels": levels, "recon": recon + st.offset, "side_bits": side, "shares": shares,
            "mode_ctx_bits": context_entropy_bits(modes.reshape(rows // 8, cols8)) + (63 * 8 if offsets else 0),
            "intra": (modes, np.array(mode_set, np.int64), smooth_ref, offs)}  # fmt: skip


# -- intra with 4x4 / 8x8 / 16x16 blocks (item 3: a split for edges, a larger block for smooth areas) --

SMOOTH_W = {  # AV1 sm_weight_arrays, / 256
    4: np.array([255.0, 149, 85, 64]) / 256,
    8: np.array([255.0, 197, 146, 105, 73, 50, 37, 32]) / 256,
    16: np.array([255.0, 225, 196, 170, 145, 123, 102, 84, 68, 54, 43, 33, 26, 20, 17, 16]) / 256,
}


@numba.njit(cache=True)
def _predict_n(mode, n, w, top, left, corner, out):
    """:func:`_predict` for an n x n block (top, left: 2n samples; w: the SMOOTH weights of n)."""
    if mode == 0:
        s = 0.0
        for i in range(n):
            s += top[i] + left[i]
        out[:n, :n] = s / (2 * n)
    elif mode == 1:
        for i in range(n):
            for j in range(n):
                out[i, j] = (w[i] * top[j] + (1 - w[i]) * left[n - 1] + w[j] * left[i] + (1 - w[j]) * top[n - 1]) / 2
    elif mode == 2:
        for i in range(n):
            for j in range(n):
                base = top[j] + left[i] - corner
                pt, pl, pc = abs(base - top[j]), abs(base - left[i]), abs(base - corner)
                out[i, j] = left[i] if (pl <= pt and pl <= pc) else (top[j] if pt <= pc else corner)
    else:
        fam, ang = ANGULAR[mode - 3, 0], ANGULAR[mode - 3, 1]
        d = ang / 32.0
        main, side = (top[: 2 * n], left[: 2 * n]) if fam == 1 else (left[: 2 * n], top[: 2 * n])
        for i in range(n):
            for j in range(n):
                r, c = (i, j) if fam == 1 else (j, i)
                t = c + (r + 1) * d
                if t >= -1.0 or d >= 0:
                    out[i, j] = _line(main, corner, t)
                else:
                    out[i, j] = _line(side, corner, r - (c + 1) / -d)


@numba.njit(cache=True)
def _refs_n(recon, avail, r0, c0, n, top, left):
    """References of the n x n block at (r0, c0) from decoded samples (avail: 4x4 units decoded);
    unavailable ones copy the last available (0 if none). Returns the corner."""
    rows, cols = recon.shape
    has_top = r0 > 0
    has_left = c0 > 0
    if has_top:
        for j in range(2 * n):
            c = c0 + j
            if j < n or (c < cols and avail[(r0 - 1) // 4, c // 4]):
                top[j] = recon[r0 - 1, c]
            else:
                top[j] = top[j - 1]
    if has_left:
        for i in range(2 * n):
            r = r0 + i
            if i < n or (r < rows and avail[r // 4, (c0 - 1) // 4]):
                left[i] = recon[r, c0 - 1]
            else:
                left[i] = left[i - 1]
    if not has_top and not has_left:
        top[: 2 * n] = 0.0
        left[: 2 * n] = 0.0
    elif not has_top:
        top[: 2 * n] = left[0]
    elif not has_left:
        left[: 2 * n] = top[0]
    if has_top and has_left:
        return recon[r0 - 1, c0 - 1]
    return top[0] if has_top else left[0]


@numba.njit(cache=True)
def _block_bits(n, lz, cost, nz_cost):
    """Static bits of an n x n block's zigzag levels as laid onto 8x8 slots (see code_intra_mb)."""
    bits = 1 + 2 * np.log2(1 + abs(lz[0]))
    if n == 8 or n == 16:
        for p in range(n * n // 64):
            last, nz = 0, 0
            for k in range(1, 64):
                if lz[p * 63 + k] != 0:
                    last = k
                    nz += 1
            for k in range(1, last + 1):
                al = abs(lz[p * 63 + k])
                bits += cost[k, min(al, 15)] + (2 * np.log2(al - 13) + 1 if al >= 15 else 0.0)
            bits += nz_cost[nz]
        return bits + (n * n // 64 - 1)  # DC copies
    last, nz = 0, 0  # 4x4: slot 4 j + b of its 8x8 cell, b the quarter; a quarter of the count's cost
    for j in range(1, 16):
        if lz[j] != 0:
            last = j
            nz += 1
    for j in range(1, last + 1):
        al = abs(lz[j])
        bits += cost[4 * j, min(al, 15)] + (2 * np.log2(al - 13) + 1 if al >= 15 else 0.0)
    return bits + nz_cost[min(4 * nz, 63)] / 4


@numba.njit(cache=True)
def _try_block(x, recon, avail, r0, c0, n, steps, a, zz, w, cost, nz_cost, lam, mode_set, mode_cost, smooth_ref,
               nkeep, best_rec, best_lz):  # fmt: skip
    """Best mode of the n x n block at (r0, c0): returns (J, mode index); best_rec gets its
    reconstruction (before clipping), best_lz its zigzag levels (the first nkeep kept)."""
    top, left = np.empty(32), np.empty(32)
    ftop, fleft = np.empty(32), np.empty(32)
    pred = np.empty((n, n))
    res = np.empty((n, n))
    lz = np.zeros(n * n, np.int64)
    corner = _refs_n(recon, avail, r0, c0, n, top, left)
    ftop[0] = (corner + 2 * top[0] + top[1]) / 4
    fleft[0] = (corner + 2 * left[0] + left[1]) / 4
    for k in range(1, 2 * n):
        ftop[k] = (top[k - 1] + 2 * top[k] + top[min(k + 1, 2 * n - 1)]) / 4
        fleft[k] = (left[k - 1] + 2 * left[k] + left[min(k + 1, 2 * n - 1)]) / 4
    fcorner = (left[0] + 2 * corner + top[0]) / 4
    best_j, best_m = 1e300, 0
    for mi in range(mode_set.size):
        m = mode_set[mi]
        if smooth_ref and m >= 5:
            _predict_n(m, n, w, ftop, fleft, fcorner, pred)
        else:
            _predict_n(m, n, w, top, left, corner, pred)
        for i in range(n):
            for j in range(n):
                res[i, j] = x[r0 + i, c0 + j] - pred[i, j]
        coef = a @ res @ a.T
        d = 0.0
        for k in range(n * n):
            p = zz[k]
            c = coef[p // n, p % n]
            s = c / steps[p // n, p % n]
            lv = np.int64(np.floor(abs(s) + 0.5)) if k < nkeep else 0
            lz[k] = -lv if s < 0 else lv
            e = c - lz[k] * steps[p // n, p % n]
            d += e * e
        jc = d + lam * (_block_bits(n, lz, cost, nz_cost) + mode_cost[mi])
        if jc < best_j:
            best_j, best_m = jc, mi
            best_lz[: n * n] = lz
            for k in range(n * n):
                p = zz[k]
                res[p // n, p % n] = lz[k] * steps[p // n, p % n]
            rr = a.T @ res @ a
            for i in range(n):
                for j in range(n):
                    best_rec[i, j] = pred[i, j] + rr[i, j]
    return best_j, best_m


@numba.njit(cache=True)
def _place(recon, avail, r0, c0, n, rec, lo, hi):
    for i in range(n):
        for j in range(n):
            recon[r0 + i, c0 + j] = min(max(rec[i, j], lo), hi)
    for i in range(n // 4):
        for j in range(n // 4):
            avail[r0 // 4 + i, c0 // 4 + j] = True


@numba.njit(cache=True)
def _intra_mb_frame(x, st4, st8, st16, a4, a8, a16, zz4, zz8, zz16, w4, w8, w16, cost, nz_cost, lam, lo, hi,
                    mode_set, mode_cost, smooth_ref, allow4, allow16, levels, sizes, modes, recon):  # fmt: skip
    """16x16 macroblocks in raster order: one 16x16 block, or four 8x8 cells (z-order) each one
    8x8 block or four 4x4 blocks (z-order), by D + lam R. Fills levels (8x8 slots, see
    code_intra_mb), sizes (per 8x8 cell: 4, 8 or 16) and modes (per 4x4 unit: mode index)."""
    rows, cols = x.shape
    avail = np.zeros((rows // 4, cols // 4), np.bool_)
    bx8 = cols // 8
    rec16 = np.empty((16, 16))
    rec8 = np.empty((8, 8))
    rec4 = np.empty((4, 4))
    lz16 = np.zeros(256, np.int64)
    lz8 = np.zeros(64, np.int64)
    lz4 = np.zeros(16, np.int64)
    split_lv = np.zeros((4, 64), np.int64)
    flag_bits = 1.0
    for mr in range(rows // 16):
        for mc in range(cols // 16):
            R, C = mr * 16, mc * 16
            j16 = 1e300
            m16 = 0
            if allow16:
                j16, m16 = _try_block(x, recon, avail, R, C, 16, st16, a16, zz16, w16, cost, nz_cost, lam, mode_set,
                                      mode_cost, smooth_ref, 1 + 63 * 4, rec16, lz16)  # fmt: skip
                j16 += lam * flag_bits
                rec16_keep = rec16.copy()
                lz16_keep = lz16.copy()
            jsplit = lam * flag_bits if allow16 else 0.0
            for q in range(4):
                r0, c0 = R + 8 * (q // 2), C + 8 * (q % 2)
                j8, m8 = _try_block(x, recon, avail, r0, c0, 8, st8, a8, zz8, w8, cost, nz_cost, lam, mode_set,
                                    mode_cost, smooth_ref, 64, rec8, lz8)  # fmt: skip
                rec8_keep = rec8.copy()
                lz8_keep = lz8.copy()
                best_cell = j8 + (lam * flag_bits if allow4 else 0.0)
                use4 = False
                if allow4:
                    j4 = lam * flag_bits
                    m4s = np.zeros(4, np.int64)
                    for s in range(4):
                        rr0, cc0 = r0 + 4 * (s // 2), c0 + 4 * (s % 2)
                        js, ms = _try_block(x, recon, avail, rr0, cc0, 4, st4, a4, zz4, w4, cost, nz_cost, lam,
                                            mode_set, mode_cost, smooth_ref, 16, rec4, lz4)  # fmt: skip
                        _place(recon, avail, rr0, cc0, 4, rec4, lo, hi)
                        j4 += js
                        m4s[s] = ms
                        for jj in range(16):
                            split_lv[0, 4 * jj + s] = lz4[jj]
                    if j4 < best_cell:
                        use4, best_cell = True, j4
                b = (r0 // 8) * bx8 + c0 // 8
                if use4:
                    levels[b, :] = split_lv[0]
                    sizes[r0 // 8, c0 // 8] = 4
                    for s in range(4):
                        modes[r0 // 4 + s // 2, c0 // 4 + s % 2] = m4s[s]
                else:
                    _place(recon, avail, r0, c0, 8, rec8_keep, lo, hi)
                    levels[b, :] = lz8_keep
                    sizes[r0 // 8, c0 // 8] = 8
                    modes[r0 // 4 : r0 // 4 + 2, c0 // 4 : c0 // 4 + 2] = m8
                jsplit += best_cell
            if allow16 and j16 < jsplit:
                _place(recon, avail, R, C, 16, rec16_keep, lo, hi)
                for p in range(4):
                    b = (R // 8 + p // 2) * bx8 + C // 8 + p % 2
                    levels[b, 0] = lz16_keep[0]
                    levels[b, 1:] = lz16_keep[1 + 63 * p : 64 + 63 * p]
                sizes[R // 8 : R // 8 + 2, C // 8 : C // 8 + 2] = 16
                modes[R // 4 : R // 4 + 4, C // 4 : C // 4 + 4] = m16


def steps_n(steps8: np.ndarray, n: int) -> np.ndarray:
    """n x n steps: the 8x8 step of the same spatial frequency, the DC's times n/8."""
    idx = (np.arange(n) * 8) // n
    s = np.asarray(steps8, dtype=np.float64)[idx[:, None], idx[None, :]].copy()
    s[0, 0] = steps8[0, 0] * n / 8
    return s


def code_intra_mb(st: Setup, allow4: bool = True, allow16: bool = True, lam_scale: float = 1.0) -> dict:
    """Intra prediction (16 modes, smoothed references) on 4x4, 8x8 and 16x16 blocks: per 16x16
    macroblock one 16x16 block or four 8x8 cells, each one 8x8 block or four 4x4 blocks.
    Levels onto the 2.1 coder's 8x8 slots: an 8x8 block as is; a 16x16 block as in the quadtree
    (DC copied, AC runs of 63, its last 3 AC dropped); four 4x4 blocks of a cell interleaved
    (slot 4 j + b holds coefficient j of quarter b, so the four DCs lead). Two passes as
    :func:`code_intra`; split flags and modes at their empirical entropy."""
    rows, cols = st.x.shape
    mode_set = np.array(MODE_SETS["16 modes"], np.int64)
    lv, _ = code_plain(st)
    mode_cost = np.full(mode_set.size, math.log2(mode_set.size))
    mats = [dct_matrix(n) for n in (4, 8, 16)]
    zzs = [zigzag_order(n).astype(np.int64) for n in (4, 8, 16)]
    stps = [steps_n(st.steps8, n) for n in (4, 8, 16)]
    for _ in range(2):
        model = RateModel(lv)
        scale = len(mdc2.encode_levels(lv, cols // 8, MULTI)) * 8 / max(model.block_bits(lv).sum(), 1.0)
        levels = np.zeros(((rows // 8) * (cols // 8), 64), np.int64)
        sizes = np.zeros((rows // 8, cols // 8), np.int64)
        modes = np.zeros((rows // 4, cols // 4), np.int64)
        recon = np.zeros((rows, cols))
        _intra_mb_frame(st.x, *stps, *mats, *zzs, SMOOTH_W[4], SMOOTH_W[8], SMOOTH_W[16], model.cost * scale,
                        model.nz_cost[:64] * scale, st.lam * lam_scale, float(st.lo - st.offset),
                        float(st.hi - st.offset), mode_set, mode_cost, True, allow4, allow16, levels, sizes, modes,
                        recon)  # fmt: skip
        lv = levels
        # one mode per coded block: its top-left 4x4 unit
        s4 = np.repeat(np.repeat(sizes, 2, 0), 2, 1)
        rr, cc = np.indices(s4.shape)
        first = ((rr * 4) % s4 == 0) & ((cc * 4) % s4 == 0)
        coded_modes = modes[first]
        h = np.bincount(coded_modes, minlength=mode_set.size) + 0.5
        mode_cost = -np.log2(h / h.sum())
    side = entropy_bits(coded_modes)
    mb = sizes[::2, ::2]
    if allow16:
        side += entropy_bits((mb == 16).astype(np.int64))
    if allow4:
        side += entropy_bits((sizes[np.repeat(np.repeat(mb != 16, 2, 0), 2, 1)] == 4).astype(np.int64))
    shares = {n: float(np.mean(sizes == n)) for n in (4, 8, 16)}
    return {"levels": levels, "recon": recon + st.offset, "side_bits": side, "shares": shares}


def context_entropy_bits(modes: np.ndarray) -> float:
    """Empirical conditional entropy of the modes given (left mode == above mode, left mode):
    what a most-probable-mode context could save (an optimistic bound: no learning cost)."""
    left = np.pad(modes, ((0, 0), (1, 0)), constant_values=0)[:, :-1]
    above = np.pad(modes, ((1, 0), (0, 0)), constant_values=0)[:-1]
    ctx = (left * 2 + (left == above)).ravel()
    return sum(entropy_bits(modes.ravel()[ctx == c]) for c in np.unique(ctx))


def intra_decode_check(st: Setup, out: dict, repeat: int = 5) -> tuple[bool, float, float]:
    """Decode an intra frame as a decoder would (:func:`_intra_decode`): whether it gives the
    encoder's reconstruction, and the best thread time of the reconstruction with prediction and
    without (the same loop reconstructing plain 8x8 blocks), in ms."""
    modes, mode_set, smooth_ref, offs = out["intra"]
    args = (out["levels"], modes, mode_set, st.steps8, dct_matrix(8), ZIGZAG.astype(np.int64), smooth_ref, offs,
            float(st.lo - st.offset), float(st.hi - st.offset))  # fmt: skip
    rec = np.zeros(st.x.shape)
    _intra_decode(*args, True, rec)
    same = bool(np.array_equal(rec + st.offset, out["recon"]))
    times = []
    for use_pred in (True, False):
        best = float("inf")
        for _ in range(repeat):
            t = time.thread_time()
            _intra_decode(*args, use_pred, rec)
            best = min(best, time.thread_time() - t)
        times.append(best * 1e3)
    return same, times[0], times[1]


def postfilter(st: Setup, recon: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, int]:
    """2.1's decoder filters on a candidate's pixels, chosen as the 2.1 fast encoder does: the best
    of the deblocking candidates (8x8 edges) if it lowers the error, then the restoration filter
    (``mdc2.choose_restoration``, one class). Returns the filtered frame and the side bytes."""
    coder = st.coder
    img = np.clip(np.rint(recon), st.lo, st.hi).astype(coder._dtype)
    s0 = float(coder.steps[0])
    best, best_err, side = img, float(np.sum((img.astype(np.float64) - frame) ** 2)), 0
    for ma, mt in mdc2.DEBLOCK_CANDIDATES:
        alpha = int(min(65535, round(ma * s0)))
        trial = img.copy()
        K2.deblock(trial, alpha, alpha // 2 + 1, int(min(65535, max(1, round(mt * s0)))), coder._lo, coder._hi)
        err = float(np.sum((trial.astype(np.float64) - frame) ** 2))
        if err < best_err:
            best, best_err, side = trial, err, mdc2._DEBLOCK.size
    flt = mdc2.choose_restoration(coder, best, frame, mdc2.FAST_FILTER_CLASSES)
    if flt is not None:
        best = flt.apply(best, coder._lo, coder._hi)
        side += len(flt.to_bytes())
    return best, side


# -- running -------------------------------------------------------------------------------------

DECODE_QUALITY = 72  # the intra decoder's check and timing (~0.8 bpp on the head CT)
SHARE_QUALITIES = (55, 87)  # mode shares reported at a low and a high rate

CANDIDATES = {
    "8x8 plain": lambda st: dict(zip(("levels", "recon"), code_plain(st), strict=True), side_bits=0.0, shares={8: 1.0}),
    "quadtree 16": lambda st: code_quadtree(st, 16),
    "quadtree 32": lambda st: code_quadtree(st, 32),
    "quadtree 32 coarse DC": lambda st: code_quadtree(st, 32, dc_scale=1.5),
    "intra DC/V/H": lambda st: code_intra(st, MODE_SETS["DC/V/H"]),
    "intra 7 modes": lambda st: code_intra(st, MODE_SETS["7 modes"]),
    "intra 16 modes": lambda st: code_intra(st, MODE_SETS["16 modes"]),
    "intra 16 modes smoothed refs": lambda st: code_intra(st, MODE_SETS["16 modes"], smooth_ref=True),
    "intra 16 modes smoothed refs offsets": lambda st: code_intra(
        st, MODE_SETS["16 modes"], smooth_ref=True, offsets=True
    ),
    "intra 16 modes 8+4x4": lambda st: code_intra_mb(st, allow16=False),
    "intra 16 modes 16+8": lambda st: code_intra_mb(st, allow4=False),
    "intra 16 modes 16+8+4x4": lambda st: code_intra_mb(st),
    # not run by default (--candidates): the lambda of the decisions
    "intra 16 modes lambda x0.5": lambda st: code_intra(st, MODE_SETS["16 modes"], lam_scale=0.5),
    "intra 16 modes lambda x2": lambda st: code_intra(st, MODE_SETS["16 modes"], lam_scale=2.0),
    "quadtree 32 lambda x0.5": lambda st: code_quadtree(st, 32, lam_scale=0.5),
    "quadtree 32 lambda x2": lambda st: code_quadtree(st, 32, lam_scale=2.0),
}
DEFAULT_CANDIDATES = [c for c in CANDIDATES if "lambda" not in c]


def load(folder: Path, n: int) -> tuple[np.ndarray, int, bool]:
    paths = sorted(folder.glob("*.dcm"))
    picks = sorted({round(i * (len(paths) - 1) / max(n - 1, 1)) for i in range(n)})
    dss = [pydicom.dcmread(paths[i]) for i in picks]
    return np.stack([d.pixel_array for d in dss]), int(dss[0].BitsStored), bool(dss[0].PixelRepresentation)


def point(frames: np.ndarray, bits: int, nbytes: float, se: float) -> tuple[float, float]:
    mse = se / frames.size
    return nbytes * 8 / frames.size, 10 * math.log10(((1 << bits) - 1) ** 2 / mse) if mse > 0 else float("inf")


def real_curve(frames, bits, signed) -> list[tuple[float, float]]:
    pts = []
    for q in QUALITIES:
        nb, se = 0, 0.0
        for f in frames:
            b = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1, entropy="arith", intra=False)
            d = np.asarray(medcodec.decode(b, jobs=1)).reshape(f.shape).astype(np.float64)
            nb, se = nb + len(b), se + float(np.sum((d - f) ** 2))
        pts.append(point(frames, bits, nb, se))
    return pts


def j2k_curve(frames, bits, signed, psnrs) -> list[tuple[float, float]]:
    spec = PixelSpec(bits_stored=bits, signed=signed)
    off = external.unsigned_offset(spec)
    pts = []
    for p in psnrs:
        nb, se = 0, 0.0
        for f in frames:
            b = external.jpeg2k_encode(external.to_unsigned(f, spec)[0], bits_stored=bits, psnr_db=float(p))
            d = external.from_unsigned(external.jpeg2k_decode(b), spec, off).astype(np.float64)
            nb, se = nb + len(b), se + float(np.sum((d - f) ** 2))
        pts.append(point(frames, bits, nb, se))
    return pts


def check_baseline(frames, bits, signed) -> None:
    """The experiment's 8x8 levels are the real encoder's (same steps, same rounding)."""
    for q in (25, 80):
        st = Setup(frames[0], bits, signed, q)
        mine, _ = code_plain(st)
        real = mdc2.round_scaled(st.coder.scaled(frames[0]))
        diff = np.count_nonzero(mine != real)
        coded = len(mdc2.encode_levels(mine, frames.shape[2] // 8, MULTI)) * 8
        est = RateModel(mine).block_bits(mine).sum() + dc_bits(np.diff(mine[:, 0], prepend=0)).sum()
        print(f"  check q{q}: {diff} of {mine.size} levels differ from the 2.1 encoder's; the static decision "
              f"model estimates {est / coded:.2f}x the real coder's bits (decisions use it rescaled per frame)",
              flush=True)  # fmt: skip


def bd(anchor, test) -> float:
    a = [(b, p) for b, p in anchor if 0.2 <= b <= 3.5 and np.isfinite(p)]
    t = [(b, p) for b, p in test if 0.2 <= b <= 3.5 and np.isfinite(p)]
    try:
        return bd_rate([b for b, _ in a], [p for _, p in a], [b for b, _ in t], [p for _, p in t])
    except medcodec.CodecError:
        return float("nan")


def nanmean(values: list[float]) -> float:
    v = [x for x in values if np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--series", nargs="*", default=list(SERIES))
    ap.add_argument("--candidates", nargs="*", default=DEFAULT_CANDIDATES, choices=list(CANDIDATES))
    args = ap.parse_args(argv)
    summary = []
    for name in args.series:
        frames, bits, signed = load(args.data / name, args.frames)
        cols = frames.shape[2]
        print(f"\n## {name}: {frames.shape} {bits}-bit {'signed' if signed else 'unsigned'}", flush=True)
        check_baseline(frames, bits, signed)
        curves: dict[str, list[tuple[float, float]]] = {"2.1 fast": real_curve(frames, bits, signed)}
        times: dict[str, float] = {}
        shares: dict[str, dict] = {}
        side: dict[str, float] = {}
        side_ctx: dict[str, float] = {}  # intra modes with a (left, left == above) context
        for label in args.candidates:
            fn = CANDIDATES[label]
            fn(Setup(frames[0], bits, signed, QUALITIES[0]))  # numba compilation outside the timing
            raw, filt, t_tot, sh_acc, side_b, all_b, ctx_b = [], [], 0.0, {}, 0.0, 0.0, 0.0
            for q in QUALITIES:
                nb, se, nbf, sef = 0.0, 0.0, 0.0, 0.0
                for fi, f in enumerate(frames):
                    st = Setup(f, bits, signed, q)
                    t = time.thread_time()
                    out = fn(st)
                    t_tot += time.thread_time() - t
                    coded = len(mdc2.encode_levels(out["levels"], cols // 8, MULTI)) + FRAME_BYTES
                    coded += out["side_bits"] / 8
                    nb += coded
                    se += float(np.sum((np.clip(np.rint(out["recon"]), st.lo, st.hi) - f) ** 2))
                    img, fside = postfilter(st, out["recon"], f)
                    nbf += coded + fside
                    sef += float(np.sum((img.astype(np.float64) - f) ** 2))
                    if "intra" in out and q == DECODE_QUALITY and fi == 0:
                        same, t_pred, t_plain = intra_decode_check(st, out)
                        print(f"  {label} q{q}: decoder loop reproduces the encoder's frame: {same}; "
                              f"reconstruction {t_pred:.2f} ms with prediction, {t_plain:.2f} ms without "
                              f"({t_pred / t_plain:.2f}x)", flush=True)  # fmt: skip
                    if q in SHARE_QUALITIES:
                        for k, v in out["shares"].items():
                            sh_acc.setdefault(q, {}).setdefault(k, []).append(v)
                        side_b, all_b = side_b + out["side_bits"] / 8, all_b + coded
                        ctx_b += out.get("mode_ctx_bits", out["side_bits"]) / 8
                raw.append(point(frames, bits, nb, se))
                filt.append(point(frames, bits, nbf, sef))
            curves[label], curves[label + " +filters"] = raw, filt
            times[label] = t_tot
            shares[label] = {q: {k: float(np.mean(v)) for k, v in d.items()} for q, d in sh_acc.items()}
            side[label] = side_b / max(all_b, 1)
            side_ctx[label] = ctx_b / max(all_b, 1)
        ps = [p for pts in curves.values() for b, p in pts if 0.2 <= b <= 3.5]
        curves["OpenJPEG"] = j2k_curve(frames, bits, signed, np.linspace(min(ps) - 2, max(ps) + 2, 10).round(1))
        for label, pts in curves.items():
            print(f"{label:32s} " + " ".join(f"{b:.2f}/{p:.1f}" for b, p in pts), flush=True)
        j2k, real = curves["OpenJPEG"], curves["2.1 fast"]
        print(f"  {'BD-rate':30s} {'vs OpenJPEG':>11s} {'vs same 8x8':>11s} {'vs 2.1 fast':>11s} {'time/8x8':>8s} "
              f"{'side':>5s} {'ctx':>5s}  shares at q{SHARE_QUALITIES[0]} | q{SHARE_QUALITIES[1]}")  # fmt: skip
        for label, pts in curves.items():
            if label == "OpenJPEG":
                continue
            base = label.replace(" +filters", "")
            ref = curves.get("8x8 plain" + (" +filters" if label.endswith("+filters") else ""))
            gain = bd(ref, pts) if ref is not None and label != "2.1 fast" else float("nan")
            tr = times.get(base, float("nan")) / times.get("8x8 plain", float("nan"))
            sh = " | ".join(" ".join(f"{k}:{v:.2f}" for k, v in d.items())
                            for d in shares.get(base, {}).values())  # fmt: skip
            print(f"  {label:30s} {bd(j2k, pts):+10.1f}% {gain:+10.1f}% {bd(real, pts):+10.1f}% {tr:8.2f} "
                  f"{side.get(base, 0) * 100:4.1f}% {side_ctx.get(base, 0) * 100:4.1f}%  {sh}", flush=True)  # fmt: skip
            summary.append((name, label, bd(j2k, pts), gain, bd(real, pts)))
    print("\n## mean over the series: BD-rate vs OpenJPEG, vs the same pipeline's 8x8, vs 2.1 fast (per series)")
    for label in dict.fromkeys(lbl for _, lbl, *_ in summary):
        rows_ = [r for r in summary if r[1] == label]
        print(f"  {label:30s} " + " ".join(f"{nanmean([r[i] for r in rows_]):+6.1f}%" for i in (2, 3, 4))
              + "  (vs OpenJPEG: " + ", ".join(f"{r[2]:+.1f}" for r in rows_) + ")", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
