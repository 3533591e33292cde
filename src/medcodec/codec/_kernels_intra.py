"""Numba kernels of 8x8 intra prediction (``.mdc`` format 2.2, ``docs/format.md`` §14).

Integer prediction of an 8x8 block from its reconstructed neighbours (16 modes: DC, AV1 SMOOTH,
paeth, vertical, horizontal and 11 oblique angles at HEVC displacements; the oblique ones from
[1, 2, 1]-smoothed references), a residual DCT-coded with the frame's quantization steps, and the
reconstruction loop shared by the encoder and the decoder, so the encoder's reconstruction is the
decoder's output bit for bit. :mod:`.intra` wraps them; its docstring states the equations, and
``tests/codec/test_intra.py`` checks the predictor against a plain NumPy twin.

Two forms of the decoding process: :func:`predict_mode` and :func:`reconstruct_block` (the
equations as written: per-sample geometry, the dense IDCT in the spec's summation order;
:func:`decode_intra_plain`) and what the encoder and :func:`decode_intra` run, equal to them
integer for integer: :func:`predict_fast` (the angular geometry resolved once into
:data:`ANG_TAB`) and :func:`reconstruct_fast` (the IDCT without its zero terms, the same order
otherwise), no allocation per block.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba.cpython.unsafe import numbers as _nb_numbers

from ._kernels_ms import (
    CDF_BITS,
    FINE_POSITION_BLOCKS,
    NBR_BUCKETS,
    NBR_LUT,
    O_BASE,
    POS_FINE,
    REM_BUCKETS,
    REM_LUT,
    _adapt,
    _dec_start,
    _dec_sym,
    _enc_sym,
)
from ._kernels_v2 import (
    E_OVERFLOW,
    E_RANGE,
    E_TRUNCATED,
    OK,
    POS_BAND,
    _bitlen,
    _dc_context,
    _enc_flush,
    _enc_init,
    _nz_ctx,
)
from ._rdoq_ms import _nz_rate, neighbour_buckets, rdoq_block, rdoq_block_counted

_jit = numba.njit(cache=True, nogil=True)
_helper = numba.njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]


def _trailing_zeros_py(x: Any) -> int:
    """The index of the lowest set bit of a non-zero int64 (plain Python, for the no-JIT runs)."""
    x = int(x)
    return (x & -x).bit_length() - 1


#: Index of the lowest set bit: numba's ``cttz`` intrinsic, its value in plain Python without JIT.
trailing_zeros: Any = _trailing_zeros_py if getattr(numba.config, "DISABLE_JIT", 0) else _nb_numbers.trailing_zeros

N_MODES = 16
#: Oblique and straight modes 3..15 as (family, A): family 1 predicts from the row above, 0 from the
#: column to the left; A is the displacement in 1/32 sample per row (column) away from the line.
ANGULAR = np.array([(1, 0), (0, 0), (1, 32), (1, -32), (1, -21), (1, -9), (1, 9), (1, 21),
                    (0, -21), (0, -9), (0, 9), (0, 21), (0, 32)], dtype=np.int64)  # fmt: skip
#: Modes from this one on predict from the smoothed references.
FIRST_SMOOTHED = 5
#: AV1 SMOOTH weights of an 8-sample block, in 1/256.
SMOOTH_W = np.array([255, 197, 146, 105, 73, 50, 37, 32], dtype=np.int64)
#: Modes the encoder DCT-codes (besides the context's) after ranking the candidates by SAD
#: (3 until the ranking got cheaper: +0.5 % BD-rate, docs/design-notes.md).
N_FULL = 2
#: The encoder's estimate of a mode's bits: the context's mode again, or another one.
MODE_BITS_SAME = 1.0
MODE_BITS_OTHER = 4.5
#: Mode model 2's encoder: a mode is charged MODE2_SCALE x its bits under the adaptive model, plus
#: MODE2_BIAS if it is not the context's mode (the cost of leaving the context's chain; measured on
#: 15 slices, docs/design-notes.md: the plain model bits, 1 x + 0, lost to the static 1 / 4.5).
MODE2_SCALE = 0.5
MODE2_BIAS = 1.0
#: Mode model 2: references within ``step(0, 1) >> FLAT_TOL_SHIFT`` of each other code no mode
#: (tolerance 0, 1/16 and 1/4 step measured 0.17 %, 0.09 %, +0.08 % and +0.41 % worse on 15 slices).
FLAT_TOL_SHIFT = 3
#: Context rows of the mode model: the left neighbour's mode (16 rows of 16 int16 entries).
MODE_MODEL_SIZE = N_MODES * N_MODES


def dst7_matrix() -> np.ndarray:
    """The orthonormal 8-point DST-VII of format 2.5 (``docs/format.md`` §18): row k, column n,
    ``sqrt(4 / 17) sin(pi (2k + 1)(n + 1) / 17)`` in float64 (n = 0 the sample next to the
    references; rows are basis functions, as in the DCT matrix)."""
    k = np.arange(8, dtype=np.float64)[:, None]
    n = np.arange(8, dtype=np.float64)[None, :]
    return np.sqrt(4.0 / 17.0) * np.sin(np.pi * (2.0 * k + 1.0) * (n + 1.0) / 17.0)


#: Format 2.5's DST-VII (:func:`dst7_matrix`; ``tests/codec/test_intra_tx.py`` pins its doubles).
DST7 = dst7_matrix()
DST7.flags.writeable = False


def _tx_pairs() -> np.ndarray:
    """Per mode, (vertical, horizontal) 1 where the family's pair takes the DST-VII (format 2.5, the
    note's A2): DC none (it codes no choice); SMOOTH, paeth and the negative displacements, which
    predict from both lines, both; the row-above family vertically; the left-column family
    horizontally."""
    out = np.zeros((N_MODES, 2), np.int64)
    for m in range(1, N_MODES):
        if m < 3:
            out[m] = (1, 1)
        else:
            fam, a = ANGULAR[m - 3]
            out[m] = (1, 1) if a < 0 else ((1, 0) if fam == 1 else (0, 1))
    return out


#: (vertical, horizontal) basis of the DST pair of each mode: 1 the DST-VII, 0 the DCT.
TX_PAIR = _tx_pairs()
#: The transform choice's context per mode: 0 SMOOTH / paeth (DC codes none), 1 the row-above
#: family, 2 the left-column family.
TX_CLASS = np.array([0, 0, 0] + [1 if ANGULAR[m - 3, 0] == 1 else 2 for m in range(3, N_MODES)], np.int64)
#: Contexts of the transform choice (binary rows of the §13.1 layout: count, c[1]).
TX_CONTEXTS = 3


def initial_binary_model(rows: int) -> np.ndarray:
    """``rows`` binary rows of the §13.1 layout (count, c[1]), each uniform (``c[1] = 16384``), count 0:
    the starting state of format 2.5's transform choice and of format 2.6's split symbol."""
    model = np.zeros(2 * rows, dtype=np.int16)
    model[1::2] = 1 << (CDF_BITS - 1)
    return model


INITIAL_TX_MODEL = initial_binary_model(TX_CONTEXTS)


def dct16_matrix() -> np.ndarray:
    """The orthonormal 16-point DCT-II of format 2.6 (``docs/format.md`` §19): row k, column n,
    ``a(k) cos(pi (2n + 1) k / 32)``, ``a(0) = sqrt(1 / 16)``, ``a(k > 0) = sqrt(2 / 16)``, float64."""
    k = np.arange(16, dtype=np.float64)[:, None]
    n = np.arange(16, dtype=np.float64)[None, :]
    a = np.full((16, 1), np.sqrt(2.0 / 16.0))
    a[0] = np.sqrt(1.0 / 16.0)
    return a * np.cos(np.pi * (2.0 * n + 1.0) * k / 32.0)


#: Format 2.6's 16-point DCT (:func:`dct16_matrix`; ``tests/codec/test_intra_big.py`` pins its doubles).
DCT16 = dct16_matrix()
DCT16.flags.writeable = False
#: Context rows of the split symbol: how many of the left and above macroblocks are one 16x16 block.
SPLIT_CONTEXTS = 3
INITIAL_SPLIT_MODEL = initial_binary_model(SPLIT_CONTEXTS)
#: The 16x16 block's modes (format 2.6, ``docs/format.md`` §19): 0 DC, 1 SMOOTH, 2 paeth.
N_MODES16 = 3
#: AV1's SMOOTH weights for 16 samples (``sm_weights`` of block size 16).
SMOOTH_W16 = np.array([255, 225, 196, 170, 145, 123, 102, 84, 68, 54, 43, 33, 26, 20, 17, 16], dtype=np.int64)


def initial_mode16_model() -> np.ndarray:
    """One 3-ary row, uniform (``c[i] = i * 32768 // 3``), count 0 (the layout of :mod:`._kernels_ms`)."""
    model = np.zeros(N_MODES16, dtype=np.int16)
    model[1:] = [i * 32768 // N_MODES16 for i in range(1, N_MODES16)]
    return model


INITIAL_MODE16_MODEL = initial_mode16_model()
#: What the encoders of formats before 2.6 pass for the per-macroblock split decisions (not written).
NO_SPLIT = np.zeros(1, np.uint8)


@_helper
def refs(recon, r0, c0, mid, top, left):
    """Fill top[0:16] (above, above-right) and left[0:16] (left, then left[7] repeated) of the 8x8
    block at (r0, c0); returns the corner. Missing samples copy the nearest available one; with no
    neighbour at all, ``mid``."""
    cols = recon.shape[1]
    if r0 > 0:
        for j in range(16):
            top[j] = recon[r0 - 1, c0 + j] if c0 + j < cols else top[7]
    if c0 > 0:
        for i in range(8):
            left[i] = recon[r0 + i, c0 - 1]
    if r0 == 0 and c0 == 0:
        for j in range(16):
            top[j] = mid
        for i in range(8):
            left[i] = mid
    elif r0 == 0:
        for j in range(16):
            top[j] = left[0]
    elif c0 == 0:
        for i in range(8):
            left[i] = top[0]
    for i in range(8, 16):
        left[i] = left[7]
    if r0 > 0 and c0 > 0:
        return np.int64(recon[r0 - 1, c0 - 1])
    return top[0] if r0 > 0 else left[0]


@_helper
def smooth_refs(top, left, corner, ftop, fleft):
    """[1, 2, 1]-filtered references (rounded, ``(a + 2b + c + 2) >> 2``); returns the filtered corner."""
    ftop[0] = (corner + 2 * top[0] + top[1] + 2) >> 2
    fleft[0] = (corner + 2 * left[0] + left[1] + 2) >> 2
    for k in range(1, 16):
        k1 = k + 1 if k < 15 else 15
        ftop[k] = (top[k - 1] + 2 * top[k] + top[k1] + 2) >> 2
        fleft[k] = (left[k - 1] + 2 * left[k] + left[k1] + 2) >> 2
    return (left[0] + 2 * corner + top[0] + 2) >> 2


@_helper
def _line(ref, corner, num, den):
    """The reference line at t = num / den (den > 0): t <= -1 the corner, t = k ref[k] (the last
    sample repeated beyond index 15), linear in between, rounded half up."""
    if num <= -den:
        return corner
    k = num // den
    f = num - k * den
    v0 = corner if k < 0 else ref[min(k, 15)]
    v1 = ref[min(k + 1, 15)]
    return ((den - f) * v0 + f * v1 + (den >> 1)) // den


@_helper
def paeth(t, l, c):  # noqa: E741 (top, left, corner as in the spec)
    """The paeth predictor of one sample (PNG's, as AV1 uses it): of ``t``, ``l``, ``c`` the one
    nearest ``t + l - c``, ties to ``l`` then ``t`` (``docs/format.md``, the 8x8 and 16x16 modes)."""
    base = t + l - c
    pt = abs(base - t)
    pl = abs(base - l)
    pc = abs(base - c)
    if pl <= pt and pl <= pc:
        return l
    if pt <= pc:
        return t
    return c


@_helper
def predict(mode, top, left, corner, out):
    """8x8 integer prediction ``out`` (int64) of ``mode`` from the given references."""
    if mode == 0:
        s = np.int64(0)
        for i in range(8):
            s += top[i] + left[i]
        v = (s + 8) >> 4
        for i in range(8):
            for j in range(8):
                out[i, j] = v
    elif mode == 1:
        for i in range(8):
            for j in range(8):
                wi = SMOOTH_W[i]
                wj = SMOOTH_W[j]
                out[i, j] = (wi * top[j] + (256 - wi) * left[7] + wj * left[i] + (256 - wj) * top[7] + 256) >> 9
    elif mode == 2:
        for i in range(8):
            for j in range(8):
                out[i, j] = paeth(top[j], left[i], corner)
    else:
        fam = ANGULAR[mode - 3, 0]
        a = ANGULAR[mode - 3, 1]
        for i in range(8):
            for j in range(8):
                r = i if fam == 1 else j  # distance from the main line
                c = j if fam == 1 else i  # position along it
                num = 32 * c + (r + 1) * a
                if num >= -32 or a >= 0:
                    out[i, j] = _line(top if fam == 1 else left, corner, num, 32)
                else:  # the ray leaves through the side line
                    out[i, j] = _line(left if fam == 1 else top, corner, r * (-a) - 32 * (c + 1), -a)


@_helper
def predict_mode(mode, top, left, corner, ftop, fleft, fcorner, out):
    if mode >= FIRST_SMOOTHED:
        predict(mode, ftop, fleft, fcorner, out)
    else:
        predict(mode, top, left, corner, out)


@_helper
def reconstruct_block(lvz, steps, zz, offsets, dct, pred, lo, hi, deq, tmp, rr, recon, r0, c0):
    """recon[r0:r0+8, c0:c0+8] = clip(pred + round(IDCT(dequantized levels))): a non-zero level l at
    zigzag k is ``(256 l - sign(l) offsets[k]) * step / 256``; IDCT ``dct.T @ deq @ dct`` in a fixed
    loop order, rounded half up (floor(v + 0.5))."""
    for i in range(8):
        for j in range(8):
            deq[i, j] = 0.0
    for k in range(64):
        v = np.int64(lvz[k])
        if v != 0:
            p = zz[k]
            q = 256 * v - offsets[k] if v > 0 else 256 * v + offsets[k]
            deq[p // 8, p % 8] = q * steps[p // 8, p % 8] / 256.0
    for i in range(8):
        for j in range(8):
            s = 0.0
            for k in range(8):
                s += dct[k, i] * deq[k, j]
            tmp[i, j] = s
    for i in range(8):
        for j in range(8):
            s = 0.0
            for k in range(8):
                s += tmp[i, k] * dct[k, j]
            rr[i, j] = s
    for i in range(8):
        for j in range(8):
            v = pred[i, j] + np.int64(np.floor(rr[i, j] + 0.5))
            recon[r0 + i, c0 + j] = min(max(v, lo), hi)


#: The reference layout ``ext`` of :func:`predict_fast`: the corner, ``top[0:16]`` then 8 copies of
#: ``top[15]``, ``left[0:16]`` then 8 copies of ``left[15]`` (the copies: the index cap of :func:`_line`).
EXT_TOP = 1
EXT_LEFT = 25
EXT_SIZE = 49


def _angular_table() -> np.ndarray:
    """Modes 3..15 as a table: per mode and sample (row-major) ``(i0, i1, f, den)``, the prediction
    ``((den - f) ext[i0] + f ext[i1] + den // 2) // den`` of the references laid out as ``ext``
    (:data:`EXT_SIZE`): :func:`_line` of :func:`predict` resolved once (a corner sample is
    ``(den corner + den // 2) // den = corner``)."""
    tab = np.zeros((N_MODES - 3, 64, 4), dtype=np.int64)
    for m in range(3, N_MODES):
        fam, a = (int(v) for v in ANGULAR[m - 3])
        for i in range(8):
            for j in range(8):
                r, c = (i, j) if fam == 1 else (j, i)
                main, side = (EXT_TOP, EXT_LEFT) if fam == 1 else (EXT_LEFT, EXT_TOP)
                num, den, base = 32 * c + (r + 1) * a, 32, main
                if not (num >= -32 or a >= 0):
                    num, den, base = r * (-a) - 32 * (c + 1), -a, side
                if num <= -den:
                    tab[m - 3, 8 * i + j] = (0, 0, 0, den)
                    continue
                k = num // den
                f = num - k * den
                i0 = 0 if k < 0 else base + min(k, 15)
                tab[m - 3, 8 * i + j] = (i0, base + min(k + 1, 15), f, den)
    return tab


#: :func:`_angular_table`, what the encoder and the decoder predict modes 3..15 with.
ANG_TAB = _angular_table()
#: Its columns as contiguous (13, 64) arrays: reference indices, weights (``w0 = den - f``), and
#: per mode whether every sample's denominator is 32 (then a shift, no division, predicts it).
ANG_I0 = np.ascontiguousarray(ANG_TAB[:, :, 0])
ANG_I1 = np.ascontiguousarray(ANG_TAB[:, :, 1])
ANG_W0 = np.ascontiguousarray(ANG_TAB[:, :, 3] - ANG_TAB[:, :, 2])
ANG_W1 = np.ascontiguousarray(ANG_TAB[:, :, 2])
ANG_DEN = np.ascontiguousarray(ANG_TAB[:, :, 3])
ANG_ALL32 = np.all(ANG_DEN == 32, axis=1)


@_helper
def ext_refs(recon, r0, c0, mid, ext, fext, smoothed):
    """:func:`refs` (and if ``smoothed`` :func:`smooth_refs`) into ``ext`` / ``fext`` laid out as
    :data:`EXT_SIZE` says (views, no allocation)."""
    top = ext[EXT_TOP : EXT_TOP + 16]
    left = ext[EXT_LEFT : EXT_LEFT + 16]
    ext[0] = refs(recon, r0, c0, mid, top, left)
    _pad(ext)
    if smoothed:
        fext[0] = smooth_refs(top, left, ext[0], fext[EXT_TOP : EXT_TOP + 16], fext[EXT_LEFT : EXT_LEFT + 16])
        _pad(fext)


@_helper
def _pad(ext):
    for k in range(8):
        ext[EXT_TOP + 16 + k] = ext[EXT_TOP + 15]
        ext[EXT_LEFT + 16 + k] = ext[EXT_LEFT + 15]


@_helper
def predict_fast(mode, ext, fext, out):
    """:func:`predict_mode` from the ``ext`` layout into a flat int64 ``out[64]`` (row-major): the
    same integers, modes 3..15 from :data:`ANG_TAB` without per-sample branches on the geometry."""
    if mode < 3:
        corner = ext[0]
        if mode == 0:
            s = np.int64(0)
            for i in range(8):
                s += ext[EXT_TOP + i] + ext[EXT_LEFT + i]
            v = (s + 8) >> 4
            for p in range(64):
                out[p] = v
        elif mode == 1:
            t7 = ext[EXT_TOP + 7]
            l7 = ext[EXT_LEFT + 7]
            for i in range(8):
                wi = SMOOTH_W[i]
                rowpart = (256 - wi) * l7 + 256
                li = ext[EXT_LEFT + i]
                for j in range(8):
                    wj = SMOOTH_W[j]
                    out[8 * i + j] = (wi * ext[EXT_TOP + j] + rowpart + wj * li + (256 - wj) * t7) >> 9
        else:
            for i in range(8):
                li = ext[EXT_LEFT + i]
                for j in range(8):
                    tj = ext[EXT_TOP + j]
                    base = tj + li - corner
                    pt = abs(base - tj)
                    pl = abs(base - li)
                    pc = abs(base - corner)
                    if pl <= pt and pl <= pc:
                        out[8 * i + j] = li
                    elif pt <= pc:
                        out[8 * i + j] = tj
                    else:
                        out[8 * i + j] = corner
        return
    src = fext if mode >= FIRST_SMOOTHED else ext
    a = mode - 3
    disp = ANGULAR[a, 1]
    if disp >= 0:  # the main line only, at 32 c + (r + 1) A: one offset and weight per row (column)
        for r in range(8):
            xr = (r + 1) * disp
            off = (EXT_TOP if ANGULAR[a, 0] == 1 else EXT_LEFT) + (xr >> 5)
            f = xr & 31
            w = 32 - f
            if ANGULAR[a, 0] == 1:
                for c in range(8):
                    out[8 * r + c] = (w * src[off + c] + f * src[off + c + 1] + 16) >> 5
            else:
                for c in range(8):
                    out[8 * c + r] = (w * src[off + c] + f * src[off + c + 1] + 16) >> 5
        return
    i0 = ANG_I0[a]
    i1 = ANG_I1[a]
    w0 = ANG_W0[a]
    w1 = ANG_W1[a]
    if ANG_ALL32[a]:  # floor division by 32 is the arithmetic shift
        for p in range(64):
            out[p] = (w0[p] * src[i0[p]] + w1[p] * src[i1[p]] + 16) >> 5
    else:
        den = ANG_DEN[a]
        for p in range(64):
            d = den[p]
            v = w0[p] * src[i0[p]] + w1[p] * src[i1[p]] + (d >> 1)
            out[p] = v >> 5 if d == 32 else v // d


@_helper
def reconstruct_pair(lvz, stepz, zz, offsets, dv, dh, pred, lo, hi, deq, tmp, rr, cols, cmask, recon, r0, c0):
    """:func:`reconstruct_block` bit for bit, with the IDCT's zero terms left out: every output sum
    keeps its order over the non-zero terms (the loops are interchanged so that the inner one runs
    along a row of ``dct``, not the sum), and adding a zero product changes a float sum at most in
    the sign of a zero, which ``floor(v + 0.5)`` does not see. ``stepz``: the steps in zigzag
    order; ``pred`` flat (row-major); ``deq`` (64) must be all zero on entry and is left so;
    ``tmp``, ``rr`` (64 float), ``cols`` and ``cmask`` (8 int64) scratch. ``dv`` the vertical
    basis (its rows the 1-D basis functions), ``dh`` the horizontal one: both the DCT for
    :func:`reconstruct_fast`, a format 2.5 pair otherwise (``docs/format.md`` §18)."""
    last = 63
    while last >= 0 and lvz[last] == 0:
        last -= 1
    if last < 0:
        for i in range(8):
            for j in range(8):
                recon[r0 + i, c0 + j] = min(max(pred[8 * i + j], lo), hi)
        return
    for c in range(8):
        cmask[c] = -1  # the last row of column c with a level, -1: none
    for k in range(last + 1):
        v = np.int64(lvz[k])
        if v != 0:
            q = 256 * v - offsets[k] if v > 0 else 256 * v + offsets[k]
            p = zz[k]
            deq[p] = q * stepz[k] * 0.00390625  # / 256: a power of two, the same double
            cmask[p & 7] = max(cmask[p & 7], p >> 3)
    nc = 0
    for c in range(8):  # stage 1, tmp[c, :] = (dv.T @ deq)[:, c], summed over k in increasing order
        top = cmask[c]
        if top < 0:
            continue
        cols[nc] = c
        nc += 1
        for i in range(8):
            tmp[8 * c + i] = 0.0
        for k in range(top + 1):  # the zero terms below the column's last level: as in the dense sum
            d = deq[8 * k + c]
            deq[8 * k + c] = 0.0
            for i in range(8):
                tmp[8 * c + i] += dv[k, i] * d
    for p in range(64):  # stage 2, rr = tmp.T @ dh, every sum over the columns in increasing order
        rr[p] = 0.0
    for t in range(nc):
        c = cols[t]
        for i in range(8):
            a = tmp[8 * c + i]
            for j in range(8):
                rr[8 * i + j] += a * dh[c, j]
    for i in range(8):
        for j in range(8):
            v = pred[8 * i + j] + np.int64(np.floor(rr[8 * i + j] + 0.5))
            recon[r0 + i, c0 + j] = min(max(v, lo), hi)


@_helper
def reconstruct_sparse(lvz, stepz, zz, offsets, dv, dh, pred, lo, hi, deq, tmp, rr, colmask, recon, r0, c0):
    """The decoder's :func:`reconstruct_pair`, bit for bit: the same products summed in the same
    order, the zero ones left out (exact: adding a zero product changes a float sum at most in the
    sign of a zero, which ``floor(v + 0.5)`` does not see; ``tests/codec/test_decode_fast.py``
    checks it against the dense :func:`reconstruct_block` order). The non-zero levels are found
    through a 64-bit mask (built without branches) and each column's rows through another, walked
    lowest bit first with ``trailing_zeros``: increasing zigzag position, row and column, as the
    sums need, with no branch per zero level (1.3x faster than :func:`reconstruct_pair`'s scans on
    CT, docs/design-notes.md). ``deq`` (64 float) and ``colmask`` (8 int64) must be all zero on
    entry and are left so; ``tmp``, ``rr`` (64 float) scratch."""
    mask = np.int64(0)
    for k in range(64):
        mask |= np.int64(lvz[k] != 0) << k
    if mask == 0:
        for i in range(8):
            for j in range(8):
                recon[r0 + i, c0 + j] = min(max(pred[8 * i + j], lo), hi)
        return
    colbits = np.int64(0)  # bit c: column c has a level
    while mask != 0:
        k = trailing_zeros(mask)
        mask ^= np.int64(1) << k  # clear bit k (no overflow at bit 63)
        v = np.int64(lvz[k])
        q = 256 * v - offsets[k] if v > 0 else 256 * v + offsets[k]
        p = zz[k]
        deq[p] = q * stepz[k] * 0.00390625  # / 256: a power of two, the same double
        c = p & 7
        colmask[c] |= np.int64(1) << (p >> 3)
        colbits |= np.int64(1) << c
    cb = colbits
    while cb != 0:  # stage 1, tmp[c, :] = (dv.T @ deq)[:, c], over the column's rows k in increasing order
        c = trailing_zeros(cb)
        cb ^= np.int64(1) << c
        rm = colmask[c]
        colmask[c] = 0
        for i in range(8):
            tmp[8 * c + i] = 0.0
        while rm != 0:
            k = trailing_zeros(rm)
            rm ^= np.int64(1) << k
            d = deq[8 * k + c]
            deq[8 * k + c] = 0.0
            for i in range(8):
                tmp[8 * c + i] += dv[k, i] * d
    for p in range(64):  # stage 2, rr = tmp.T @ dh, every sum over the columns in increasing order
        rr[p] = 0.0
    cb = colbits
    while cb != 0:
        c = trailing_zeros(cb)
        cb ^= np.int64(1) << c
        for i in range(8):
            a = tmp[8 * c + i]
            for j in range(8):
                rr[8 * i + j] += a * dh[c, j]
    for i in range(8):
        for j in range(8):
            v = pred[8 * i + j] + np.int64(np.floor(rr[8 * i + j] + 0.5))
            recon[r0 + i, c0 + j] = min(max(v, lo), hi)


@_helper
def reconstruct_fast(lvz, stepz, zz, offsets, dct, pred, lo, hi, deq, tmp, rr, cols, cmask, recon, r0, c0):
    """:func:`reconstruct_pair` with the DCT both ways (formats 2.2-2.4)."""
    reconstruct_pair(lvz, stepz, zz, offsets, dct, dct, pred, lo, hi, deq, tmp, rr, cols, cmask, recon, r0, c0)


#: bit_length of 0..15.
BITLEN16 = np.array([0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4], dtype=np.int64)


@_helper
def _fdct_pass(src, dst, eo, dct):
    """dst[8 u + i] = sum_x dct[u, x] src[8 i + x] (each row's 1-D DCT, written transposed; twice is
    the 2-D DCT in natural order) by the even / odd symmetry of the basis: 32 products per row
    instead of 64, the inner loops along i (vectorisable). Encoder only: the levels it finds are
    coded, the decoder never recomputes them. ``eo``: 64 floats of scratch."""
    for x in range(4):
        for i in range(8):
            a = src[8 * i + x]
            b = src[8 * i + 7 - x]
            eo[8 * x + i] = a + b
            eo[32 + 8 * x + i] = a - b
    for u in range(8):
        h = 0 if u % 2 == 0 else 32
        c0 = dct[u, 0]
        c1 = dct[u, 1]
        c2 = dct[u, 2]
        c3 = dct[u, 3]
        for i in range(8):
            dst[8 * u + i] = c0 * eo[h + i] + c1 * eo[h + 8 + i] + c2 * eo[h + 16 + i] + c3 * eo[h + 24 + i]


@_helper
def _trial(xb, pred, dct, zz, invz, stepz, offsets, res, tmp, coef, lvz, bits0):
    """DCT-code the residual xb - pred: levels (zigzag) into lvz; returns (SSE in the DCT domain,
    estimated bits: bits0 plus 2 + 2 bit_length(|l|) per non-zero level)."""
    for p in range(64):
        res[p] = np.float64(xb[p] - pred[p])
    _fdct_pass(res, tmp, coef, dct)
    _fdct_pass(tmp, coef, res, dct)  # res: the second pass's scratch, coef its output
    d = 0.0
    bits = bits0
    nb = np.int64(0)
    for k in range(64):  # branch-free but for the rare |level| >= 16
        c = coef[zz[k]]
        ac = abs(c)
        lv = np.int64(ac * invz[k] + 0.5)  # >= 0: truncation is the floor
        nz = np.int64(lv > 0)
        e = ac - nz * ((256 * lv - offsets[k]) * stepz[k] * 0.00390625)  # / 256, the same double
        nb += nz * 2 + 2 * (BITLEN16[lv] if lv < 16 else _bitlen(lv))  # integers: the same with and without JIT
        lvz[k] = -lv if c < 0 else lv
        d += e * e
    return d, bits + nb


#: Samples of the encoder's coarse ranking: the 4x4 grid of odd rows and columns (row-major index).
COARSE = np.array([8 * i + j for i in (1, 3, 5, 7) for j in (1, 3, 5, 7)], dtype=np.int64)
#: Modes the encoder predicts in full (and ranks by SAD) after ranking all by the coarse SAD.
N_COARSE = 4
#: The angular modes at the :data:`COARSE` samples for ranking only: :data:`ANG_TAB`'s references
#: with the weights rounded to 1/32 (a shift, no division; not the prediction the decoder makes).
COARSE_I0 = np.ascontiguousarray(ANG_I0[:, COARSE])
COARSE_I1 = np.ascontiguousarray(ANG_I1[:, COARSE])
COARSE_W1 = np.ascontiguousarray((ANG_W1[:, COARSE] * 32 + ANG_DEN[:, COARSE] // 2) // ANG_DEN[:, COARSE])
COARSE_W0 = np.ascontiguousarray(32 - COARSE_W1)


@_helper
def coarse_sad(mode, ext, fext, xb):
    """SAD of ``mode``'s prediction at the :data:`COARSE` samples only, for ranking (modes 0..2 the
    exact integers, the angular ones from :data:`COARSE_W0` / :data:`COARSE_W1`)."""
    s = np.int64(0)
    if mode == 0:
        t = np.int64(0)
        for i in range(8):
            t += ext[EXT_TOP + i] + ext[EXT_LEFT + i]
        v = (t + 8) >> 4
        for n in range(16):
            s += abs(xb[COARSE[n]] - v)
    elif mode == 1:
        t7 = ext[EXT_TOP + 7]
        l7 = ext[EXT_LEFT + 7]
        for n in range(16):
            p = COARSE[n]
            i = p >> 3
            j = p & 7
            wi = SMOOTH_W[i]
            wj = SMOOTH_W[j]
            v = (wi * ext[EXT_TOP + j] + (256 - wi) * l7 + wj * ext[EXT_LEFT + i] + (256 - wj) * t7 + 256) >> 9
            s += abs(xb[p] - v)
    elif mode == 2:
        corner = ext[0]
        for n in range(16):
            p = COARSE[n]
            tj = ext[EXT_TOP + (p & 7)]
            li = ext[EXT_LEFT + (p >> 3)]
            base = tj + li - corner
            pt = abs(base - tj)
            pl = abs(base - li)
            pc = abs(base - corner)
            v = li if (pl <= pt and pl <= pc) else (tj if pt <= pc else corner)
            s += abs(xb[p] - v)
    else:
        src = fext if mode >= FIRST_SMOOTHED else ext
        a = mode - 3
        i0 = COARSE_I0[a]
        i1 = COARSE_I1[a]
        w0 = COARSE_W0[a]
        w1 = COARSE_W1[a]
        for n in range(16):
            s += abs(xb[COARSE[n]] - ((w0[n] * src[i0[n]] + w1[n] * src[i1[n]] + 16) >> 5))
    return s


@_helper
def _pick(score, taken, n):
    """Index of the least ``score`` among the first n not ``taken`` (ties: the lower index, as a
    stable sort), marked taken; -1 if none is left."""
    m = -1
    for u in range(n):
        if not taken[u] and (m < 0 or score[u] < score[m]):
            m = u
    if m >= 0:
        taken[m] = True
    return m


@_jit
def encode_intra(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, n_coarse=N_COARSE,
                 n_full=N_FULL, mode_same=MODE_BITS_SAME, mode_other=MODE_BITS_OTHER):  # fmt: skip
    """:func:`encode_intra_core` for mode model 1 (format 2.2): every block's mode coded, charged
    the static ``mode_same`` / ``mode_other`` bits."""
    _encode_intra_core(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, n_coarse, n_full,
                       mode_same, mode_other, False, np.zeros(1, np.uint8), 0, False, np.zeros(1), 0.0, 0.0, 0.0,
                       0.0, 0.0, False, 1.0, np.inf, 1.0, False, dct, np.zeros(1, np.uint8), 0, False, dct,
                       np.zeros(1, np.uint8))  # fmt: skip


@_jit
def encode_intra2(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, skip, n_coarse=N_COARSE,
                  n_full=N_FULL, mode_scale=MODE2_SCALE, mode_bias=MODE2_BIAS, flat_tol=0):  # fmt: skip
    """:func:`encode_intra_core` for mode model 2 (format 2.4): fills ``skip`` too; a mode is
    charged ``mode_scale`` x its bits under the adaptive model, plus ``mode_bias`` if it is not
    the context's."""
    _encode_intra_core(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, n_coarse, n_full,
                       mode_scale, mode_bias, True, skip, flat_tol, False, np.zeros(1), 0.0, 0.0, 0.0, 0.0,
                       0.0, False, 1.0, np.inf, 1.0, False, dct, np.zeros(1, np.uint8), 0, False, dct,
                       np.zeros(1, np.uint8))  # fmt: skip


@_jit
def encode_intra2_rd(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, skip, n_coarse, n_full,
                     mode_scale, mode_bias, flat_tol, cost, lam_rd, mu, rho, tex_sum, bound):  # fmt: skip
    """:func:`encode_intra2` whose residual levels are RD-optimised in the loop
    (:func:`._rdoq_ms.rdoq_block`, after the mode decision, before the block is reconstructed):
    ``cost`` the symbol costs (:func:`._rdoq_ms.symbol_costs`), ``lam_rd`` their lambda, ``mu`` /
    ``rho`` the texture term for blocks whose sample sum reaches ``tex_sum``; a block whose RD
    reconstruction has a sample off by more than ``bound`` is coded with its rounded levels.
    Returns the number of blocks that went back to their rounded levels."""
    return _encode_intra_core(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, n_coarse, n_full,
                              mode_scale, mode_bias, True, skip, flat_tol, True, cost, lam_rd, mu, rho, tex_sum,
                              bound, False, 1.0, np.inf, 1.0, False, dct, np.zeros(1, np.uint8), 0, False, dct,
                              np.zeros(1, np.uint8))  # fmt: skip


@_helper
def edge_gain(p, dct, w):
    """The diagonal of a sample-domain squared error that weighs the 8x8 block's last row and
    column ``w`` times (the rest 1), at the DCT basis ``p`` (natural order): ``1 + (w - 1)(a + b -
    a b)`` with ``a``, ``b`` the basis's squared values at row / column 7 of its 1-D factors."""
    a = dct[p >> 3, 7] * dct[p >> 3, 7]
    b = dct[p & 7, 7] * dct[p & 7, 7]
    return 1.0 + (w - 1.0) * (a + b - a * b)


@_jit
def encode_intra2_rdmode(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, skip, n_coarse, n_full,
                         mode_scale, mode_bias, flat_tol, cost, lam_rd, mu, rho, tex_sum, bound, rd_mode=True,
                         rd_mode_lam=1.0, rd_mode_margin=np.inf, edge_w=1.0):  # fmt: skip
    """:func:`encode_intra2_rd` whose mode decision sees the RD levels (``rd_mode``): the DCT-coded
    candidates are first ranked as before (``SSE + lam * bits``, the static estimate of the
    rounded levels); those within ``rd_mode_margin`` x the least of that go through
    :func:`._rdoq_ms.rdoq_block` (:func:`_rd_trial`) and the one of least ``SSE(RD levels) + lam
    (mode bits + rd_mode_lam x rate(RD levels))`` is kept, the rate :func:`_model_rate` (what
    ``cost`` prices) + :func:`_rest_rate` (the DC and the continuation symbols, estimated); its
    levels as :func:`encode_intra2_rd` decides them. ``edge_w``: the RD search's weight of the
    block's last row and column (:func:`edge_gain`). Returns the number of blocks that went back
    to their rounded levels."""
    return _encode_intra_core(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, n_coarse, n_full,
                              mode_scale, mode_bias, True, skip, flat_tol, True, cost, lam_rd, mu, rho, tex_sum,
                              bound, rd_mode, rd_mode_lam, rd_mode_margin, edge_w, False, dct,
                              np.zeros(1, np.uint8), 0, False, dct, np.zeros(1, np.uint8))  # fmt: skip


@_jit
def encode_intra25(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, skip, n_coarse, n_full,
                   mode_scale, mode_bias, flat_tol, cost, lam_rd, mu, rho, tex_sum, bound, rd_mode_lam,
                   rd_mode_margin, edge_w, dst, txc, tx_joint=0, big=False, c16=DCT16,
                   split=NO_SPLIT, big_trials=2, trained=False):  # fmt: skip
    """:func:`encode_intra2_rdmode` (``rd_mode`` on) writing format 2.5 (``docs/format.md`` §18):
    the chosen mode's block (not DC, not flat) is also coded with its mode's DST pair
    (:data:`TX_PAIR` of ``dst``, :func:`_trial_pair`) and its RD levels, and the pair of least
    ``SSE + lam (mode bits + rd_mode_lam x rate + choice bits)`` kept, the choice's bits under the
    adaptive model (:data:`INITIAL_TX_MODEL`, adapted as :func:`encode_modes25` will). ``txc``
    (per block, uint8): 1 the DST pair, 0 the DCT, 2 no choice coded (flat, DC or all levels
    zero). Returns the number of blocks that went back to their rounded levels.

    ``big``: format 2.6 (``docs/format.md`` §19): macroblocks in raster order, their 8x8 blocks in Z
    order; each full macroblock is also coded as one 16x16 block (DC and the one of SMOOTH and paeth
    of lesser prediction SAD, :func:`_other16`; ``big_trials`` 2: both RD-coded by :func:`_big_trial`,
    1: only the one of lesser :func:`_est16`, 0: DC only) and the one of least ``SSE + lam (bits)`` over its 256
    samples kept (the four blocks' mode and choice bits as charged, ``rd_mode_lam`` x the modelled
    rate of their levels, the split and mode symbols' bits under their adaptive models); ``split`` (per
    macroblock) as :func:`encode_modes26` takes it."""
    return _encode_intra_core(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, n_coarse, n_full,
                              mode_scale, mode_bias, True, skip, flat_tol, True, cost, lam_rd, mu, rho, tex_sum,
                              bound, True, rd_mode_lam, rd_mode_margin, edge_w, True, dst, txc, tx_joint, big, c16,
                              split, big_trials, trained)  # fmt: skip


@_helper
def _block_over(recon, x, r0, c0, bound):
    """Some sample of the 8x8 block at (r0, c0) of ``recon`` is off ``x`` by more than ``bound``."""
    for i in range(8):
        for j in range(8):
            if abs(np.float64(recon[r0 + i, c0 + j] - x[r0 + i, c0 + j])) > bound:
                return True
    return False


@_jit
def _encode_intra_core(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon, n_coarse, n_full,
                       mode_same, mode_other, model2, skip, flat_tol, rd, cost, lam_rd, mu, rho, tex_sum,
                       bound, rd_mode, rd_mode_lam, rd_mode_margin, edge_w, tx, dst, txc, tx_joint, big, c16,
                       split, big_trials=1, trained=False):  # fmt: skip
    """Raster-order intra coding of x (int64, rows and cols multiples of 8): fills levels (nblocks,
    64, zigzag, int32), modes (nblocks) and recon (int64, the decoder's output). Every mode is
    ranked by the SAD of its prediction at the 16 :data:`COARSE` samples; the ``n_coarse`` best
    and the context's mode are predicted in full and ranked by SAD; the ``n_full`` best of those
    and the context's mode are DCT-coded and the one of least ``SSE + lam * bits`` kept (bits: a
    static estimate, 2 + 2 bit_length(|l|) a non-zero level, plus the mode's:
    :data:`MODE_BITS_SAME` or :data:`MODE_BITS_OTHER`). ``n_coarse = 16``: every mode in full (the
    first encoder). No allocation per block.

    ``model2``: mode model 2 (format 2.4, ``docs/format.md`` §17). A block
    whose references lie within ``flat_tol`` of each other (:func:`flat_refs`) takes the
    context's mode without a search and ``skip[b] = 1``; the others are charged
    ``mode_same`` x the mode's bits under the adaptive mode model as the coder will have it
    (``log2(32768 / f)``, ``f`` the mode's frequency in its context row; this loop adapts the
    model as :func:`encode_modes2` will) plus ``mode_other`` if it is not the context's mode.

    ``rd``: the chosen mode's rounded levels go through :func:`._rdoq_ms.rdoq_block`
    (:func:`encode_intra2_rd`); returns the number of blocks put back to rounded levels (0 without).

    ``rd_mode`` (with ``rd``), ``rd_mode_lam``, ``rd_mode_margin``: the mode decision sees the RD
    levels (:func:`encode_intra2_rdmode`). ``edge_w``: the RD search's squared error weighs the
    block's last row and column (what later blocks predict from) ``edge_w`` times, in the DCT
    domain by its diagonal (:func:`edge_gain`).

    ``tx`` (with ``rd_mode``): format 2.5's transform choice (:func:`encode_intra25`; ``dst`` the
    DST-VII, ``txc`` the choices). ``big`` (with ``tx``): format 2.6's 16x16 blocks (:func:`encode_intra25`).
    ``trained``: the mode, choice, split and 16x16 mode models start from format 2.12's tables."""
    rows, cols = x.shape
    C = TRAINED_MODE_MODEL.copy() if trained else INITIAL_MODE_MODEL.copy()
    bx = cols // 8
    ext = np.empty(EXT_SIZE, np.int64)
    fext = np.empty(EXT_SIZE, np.int64)
    preds = np.empty((N_MODES, 64), np.int64)
    xb = np.empty(64, np.int64)
    res = np.empty(64)
    tmp = np.empty(64)
    coef = np.empty(64)
    deq = np.zeros(64)
    cols8 = np.empty(8, np.int64)
    rr = np.empty(64)
    cmask = np.empty(8, np.int64)
    csad = np.empty(N_MODES, np.int64)
    sad = np.empty(N_MODES, np.int64)
    taken = np.zeros(N_MODES, np.bool_)
    cand = np.empty(N_MODES + 1, np.int64)
    lvz = np.empty(64, np.int64)
    best_lv = np.empty(64, np.int64)
    stepz = np.empty(64)
    invz = np.empty(64)
    for k in range(64):
        stepz[k] = steps[zz[k] // 8, zz[k] % 8]
        invz[k] = 1.0 / stepz[k]
    n_coarse = min(max(n_coarse, 1), N_MODES)
    n_full = min(max(n_full, 1), n_coarse)
    nblocks = (rows // 8) * bx
    posc = POS_FINE if nblocks >= FINE_POSITION_BLOCKS else POS_BAND
    nzs = np.zeros(nblocks if rd else 1, np.int64)
    best_coef = np.empty(64)
    sc = np.empty(64)
    wz = np.empty(64)
    offs_f = np.empty(64)
    for k in range(64):
        wz[k] = stepz[k] * stepz[k]
        offs_f[k] = offsets[k] * 0.00390625
        if edge_w != 1.0:
            wz[k] *= edge_gain(zz[k], dct, edge_w)
    rm = np.empty(64, np.int64)
    rnbk = np.empty(64, np.int64)
    nbkb = np.zeros(64, np.int64)  # rd_mode: the block's neighbour buckets, for every candidate
    tex_b = False
    nzc_b = np.int64(0)
    dcp_b = np.int64(0)
    ra = np.empty(64)
    rrem = np.empty(65, np.int64)
    rp0 = np.empty(65)
    rp1 = np.empty(65)
    reverted = 0
    tm = np.empty(N_MODES + 1, np.int64)  # rd_mode: the DCT-coded candidates (mode, SSE, mode bits, J, DCT, levels)
    td = np.empty(N_MODES + 1)
    tb0 = np.empty(N_MODES + 1)
    tj = np.empty(N_MODES + 1)
    tcoef = np.empty((N_MODES + 1, 64) if rd_mode else (1, 64))
    tlv = np.empty((N_MODES + 1, 64) if rd_mode else (1, 64), np.int64)
    best_rd = np.empty(64, np.int64)
    T = TRAINED_TX_MODEL.copy() if trained else INITIAL_TX_MODEL.copy()  # tx: as encode_modes25 will run it
    lv2 = np.empty(64, np.int64)
    rd2 = np.empty(64, np.int64)
    coef2 = np.empty(64)
    best_d0 = 0.0
    best_b0 = 0.0
    best_lv2 = np.empty(64, np.int64)  # tx_joint: the DST winner's rounded levels
    td2 = np.empty(N_MODES + 1)  # tx_joint 2: every candidate's pair (SSE, J, transform, rounded levels)
    tj2 = np.empty(N_MODES + 1)
    tcoef2 = np.empty((N_MODES + 1, 64) if tx_joint >= 2 else (1, 64))
    tlv2 = np.empty((N_MODES + 1, 64) if tx_joint >= 2 else (1, 64), np.int64)
    order = block_order(rows // 8, bx, big)
    # big: the split symbol's model, as encode_modes26 will run it
    S = TRAINED_SPLIT_MODEL.copy() if trained else INITIAL_SPLIT_MODEL.copy()
    Cs = C.copy()  # big: the mode and choice models before a macroblock's 8x8 blocks
    Ts = T.copy()
    quad = np.empty(4, np.int64)
    big_lv = np.empty((4, 64), np.int64)  # big: the 16x16 candidate's levels, counts and samples
    big_nz = np.empty(4, np.int64)
    big_rec = np.empty(256, np.int64)
    sc16 = np.empty(256)
    tmp16 = np.empty(256)
    rr16 = np.empty(256)
    c8 = np.empty((4, 64))
    lv8 = np.empty((4, 64), np.int64)
    # big: the 16x16 mode's model, as encode_modes26 will run it
    M = TRAINED_MODE16_MODEL.copy() if trained else INITIAL_MODE16_MODEL.copy()
    top16 = np.empty(16, np.int64)
    left16 = np.empty(16, np.int64)
    p16 = np.empty(256, np.int64)
    p16a = np.empty(256, np.int64)
    c8a = np.empty((4, 64))
    m16 = 0
    if big:
        split[:] = 2
    nmx = (bx + 1) // 2
    pend = -1  # big: the first block of the macroblock whose decision is due at block pend_idx
    pend_idx = 0
    j16 = 0.0
    rev16 = 0
    rev_s = 0
    mb_bits = 0.0
    for idx in range(nblocks + 1):
        if pend >= 0 and idx == pend_idx:  # big: the macroblock's 8x8 blocks against its 16x16 candidate
            big_blocks(pend, bx, quad)
            mbi = (pend // bx // 2) * nmx + (pend % bx) // 2
            pr0 = (pend // bx) * 8
            pc0 = (pend % bx) * 8
            sctx = 2 * _split_ctx(split, mbi, (pend % bx) // 2, nmx)
            rate = 0.0
            for q in range(4):
                rate += _model_rate(levels, quad[q], bx, nzs, posc, cost) + _rest_rate(levels, quad[q], bx)
            j8 = _mb_sse(recon, x, pr0, pc0) + lam * (mb_bits + rd_mode_lam * rate + _sym_bits(S, sctx, 1, 2))
            split[mbi] = 1
            if j16 < j8:
                split[mbi] = 0
                for q in range(4):
                    for k in range(64):
                        levels[quad[q], k] = big_lv[q, k]
                    nzs[quad[q]] = big_nz[q]
                    modes[quad[q]] = m16
                    skip[quad[q]] = 1
                    txc[quad[q]] = 2
                for i in range(16):
                    for j in range(16):
                        recon[pr0 + i, pc0 + j] = big_rec[16 * i + j]
                C[:] = Cs
                T[:] = Ts
                reverted = rev_s + rev16
                _adapt(M, 0, np.int64(m16), N_MODES16)
            _adapt(S, sctx, np.int64(split[mbi]), 2)
            pend = -1
        if idx == nblocks:
            break
        b = order[idx]
        by = b // bx
        bxi = b % bx
        r0 = by * 8
        c0 = bxi * 8
        if big and r0 % 16 == 0 and c0 % 16 == 0 and r0 + 16 <= rows and c0 + 16 <= cols:
            big_blocks(b, bx, quad)
            mbi = (by // 2) * nmx + bxi // 2
            sbits = _sym_bits(S, 2 * _split_ctx(split, mbi, bxi // 2, nmx), 0, 2)
            corner16 = refs16(recon, r0, c0, mid, top16, left16)
            predict16(0, top16, left16, corner16, p16)
            _fdct16(x, r0, c0, p16, c16, sc16, tmp16, c8)
            alt = 0
            if big_trials > 0:
                alt = _other16(x, r0, c0, top16, left16, corner16, p16a)
                predict16(alt, top16, left16, corner16, p16a)
                _fdct16(x, r0, c0, p16a, c16, sc16, tmp16, c8a)
            first = 0  # big_trials 0: DC only; 1: the mode of the lesser J estimate only; 2: both RD-coded
            if big_trials == 1:
                e0 = _est16(c8, zz, invz, stepz, lam, _sym_bits(M, 0, 0, N_MODES16))
                if _est16(c8a, zz, invz, stepz, lam, _sym_bits(M, 0, alt, N_MODES16)) < e0:
                    first = 1
            for t in range(first, first + max(big_trials, 1)):
                m = 0
                ct = c8
                pt = p16
                if t > 0:
                    m = alt
                    ct = c8a
                    pt = p16a
                jt, revt = _big_trial(x, recon, levels, nzs, quad, bx, r0, c0, mid, lo, hi, c16, zz, invz, stepz,
                                      offsets, bound, lam, rd_mode_lam, sbits, posc, cost, wz, offs_f, lam_rd, mu, rho,
                                      tex_sum, xb, sc, rm, rnbk, ra, rrem, rp0, rp1, sc16, tmp16, rr16, ct, lv8, M, m,
                                      pt)  # fmt: skip
                if t > first and jt >= j16:
                    continue
                j16 = jt
                rev16 = revt
                m16 = m
                for q in range(4):
                    for k in range(64):
                        big_lv[q, k] = levels[quad[q], k]
                    big_nz[q] = nzs[quad[q]]
                for i in range(16):
                    for j in range(16):
                        big_rec[16 * i + j] = recon[r0 + i, c0 + j]
            Cs[:] = C
            Ts[:] = T
            rev_s = reverted
            mb_bits = 0.0
            pend = b
            pend_idx = idx + 4
        ext_refs_z(recon, r0, c0, mid, ext, fext, True, big)
        for i in range(8):
            for j in range(8):
                xb[8 * i + j] = x[r0 + i, c0 + j]
        ctx = _mode_ctx(modes, b, bx)
        if model2:
            if flat_refs(ext, flat_tol):  # every mode predicts ext[0]: the context's mode, not coded
                skip[b] = 1
                predict_fast(ctx, ext, fext, preds[ctx])
                _trial(xb, preds[ctx], dct, zz, invz, stepz, offsets, res, tmp, coef, lvz, 0.0)
                if rd:
                    reverted += _rd_levels(xb, coef, lvz, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu,
                                           rho, tex_sum, bound, zz, invz, sc, rm, rnbk, ra, rrem, rp0, rp1,
                                           stepz, offsets, dct, preds[ctx], lo, hi, deq, tmp, rr, cols8, cmask,
                                           recon, x, r0, c0)  # fmt: skip
                else:
                    reconstruct_fast(lvz, stepz, zz, offsets, dct, preds[ctx], lo, hi, deq, tmp, rr, cols8, cmask,
                                     recon, r0, c0)  # fmt: skip
                    for k in range(64):
                        levels[b, k] = lvz[k]
                modes[b] = ctx
                if tx:
                    txc[b] = 2
                continue
            skip[b] = 0
        if rd_mode:  # what every candidate's RD trial shares: the texture test and the contexts
            sx = np.int64(0)
            for p in range(64):
                sx += xb[p]
            tex_b = sx >= tex_sum
            nzc_b = _nz_ctx(nzs, b, bx)
            dcp_b, _ = _dc_context(levels, b, bx)
            neighbour_buckets(levels, b, bx, 63, nbkb)
        for m in range(N_MODES):
            taken[m] = False
            sad[m] = np.iinfo(np.int64).max
        if n_coarse < N_MODES:
            for m in range(N_MODES):
                csad[m] = coarse_sad(m, ext, fext, xb)
            nc = 0
            for _ in range(n_coarse):
                cand[nc] = _pick(csad, taken, N_MODES)
                nc += 1
            if not taken[ctx]:
                cand[nc] = ctx
                nc += 1
        else:
            nc = N_MODES
            for m in range(N_MODES):
                cand[m] = m
        for t in range(nc):  # the candidates in full
            m = cand[t]
            pm = preds[m]
            predict_fast(m, ext, fext, pm)
            sm = np.int64(0)
            for p in range(64):
                sm += abs(xb[p] - pm[p])
            sad[m] = sm
            taken[m] = False
        best_j = np.inf
        best_m = 0
        nt = 0
        j0 = np.inf
        best_tried = 0
        for t in range(n_full + 1):
            if t < n_full:  # the t-th least SAD
                m = _pick(sad, taken, N_MODES)
            elif taken[ctx]:
                break
            else:  # the context's mode (cheaper to signal) is always tested
                m = ctx
            if model2:  # mode_same, mode_other: the scale and the bias of the model's bits
                b0 = mode_same * _mode_bits(C, N_MODES * ctx, m) + (0.0 if m == ctx else mode_other)
            else:
                b0 = mode_same if m == ctx else mode_other
            d, bits = _trial(xb, preds[m], dct, zz, invz, stepz, offsets, res, tmp, coef, lvz, b0)
            jc = d + lam * bits
            if rd_mode:  # kept for the second pass below
                tm[nt] = m
                td[nt] = d
                tb0[nt] = b0
                tj[nt] = jc
                tcoef[nt, :] = coef
                tlv[nt, :] = lvz
                nt += 1
                j0 = min(j0, jc)
                continue
            if jc < best_j:
                best_j = jc
                best_m = m
                best_lv[:] = lvz
                if rd:
                    best_coef[:] = coef
        use_dst = False
        if tx and tx_joint > 0:  # format 2.5, joint: each near candidate with the DCT and with its pair
            if tx_joint >= 2:  # every candidate's rounded pair J joins the margin's least
                for t in range(nt):
                    m = tm[t]
                    tj2[t] = np.inf
                    if m != 0:
                        dv = dst if TX_PAIR[m, 0] else dct
                        dh = dst if TX_PAIR[m, 1] else dct
                        td2[t] = _trial_pair(xb, preds[m], dv, dh, zz, invz, stepz, offsets, res, tmp, coef2, lv2)
                        tcoef2[t, :] = coef2
                        tlv2[t, :] = lv2
                        tj2[t] = td2[t] + lam * (tb0[t] + _static_bits(lv2))
                        j0 = min(j0, tj2[t])
            for t in range(nt):
                m = tm[t]
                tb = 2 * TX_CLASS[m]
                in_dct = tj[t] <= rd_mode_margin * j0
                if m == 0:
                    in_pair = False
                elif tx_joint >= 2:
                    in_pair = tj2[t] <= rd_mode_margin * j0
                else:
                    in_pair = in_dct
                if in_dct:
                    changed, d1, r1, q1 = _rd_trial_given(
                        tex_b, tcoef[t], tlv[t], levels, b, nzs, nzc_b, nbkb, dcp_b, posc, cost, wz, offs_f, lam_rd,
                        mu, rho, zz, invz, sc, rm, ra, rrem, rp0, rp1)  # fmt: skip
                    cb = _sym_bits(T, tb, 0, 2) if m != 0 and (levels[b, 0] != 0 or nzs[b] > 0) else 0.0
                    jc = (d1 if changed else td[t]) + lam * (tb0[t] + rd_mode_lam * (
                        r1 + q1) + cb)  # fmt: skip
                    if jc < best_j:
                        best_j = jc
                        best_m = m
                        best_lv[:] = tlv[t]
                        best_tried = changed + 1
                        use_dst = False
                        for k in range(64):
                            best_rd[k] = levels[b, k]
                if in_pair:
                    if tx_joint >= 2:
                        coef2[:] = tcoef2[t]
                        lv2[:] = tlv2[t]
                        d2 = td2[t]
                    else:
                        dv = dst if TX_PAIR[m, 0] else dct
                        dh = dst if TX_PAIR[m, 1] else dct
                        d2 = _trial_pair(xb, preds[m], dv, dh, zz, invz, stepz, offsets, res, tmp, coef2, lv2)
                    changed2, d2r, r2, q2 = _rd_trial_given(
                        tex_b, coef2, lv2, levels, b, nzs, nzc_b, nbkb, dcp_b, posc, cost, wz, offs_f, lam_rd, mu,
                        rho, zz, invz, sc, rm, ra, rrem, rp0, rp1)  # fmt: skip
                    cb = _sym_bits(T, tb, 1, 2) if levels[b, 0] != 0 or nzs[b] > 0 else 0.0  # nzs[b]: the trial's
                    j2 = (d2r if changed2 else d2) + lam * (tb0[t] + rd_mode_lam * (
                        r2 + q2) + cb)  # fmt: skip
                    if j2 < best_j:
                        best_j = j2
                        best_m = m
                        use_dst = True
                        best_tried = changed2 + 1
                        for k in range(64):
                            rd2[k] = levels[b, k]
                            best_lv2[k] = lv2[k]
            if use_dst:  # its levels and reconstruction in place
                dv = dst if TX_PAIR[best_m, 0] else dct
                dh = dst if TX_PAIR[best_m, 1] else dct
                reverted += _rd_levels_given(rd2, best_tried - 1, best_lv2, levels, b, nzs, bound, stepz, zz,
                                             offsets, dv, dh, preds[best_m], lo, hi, deq, tmp, rr, cols8, cmask,
                                             recon, x, r0, c0)  # fmt: skip
            nt = 0  # the candidates are decided
        near = 0
        for t in range(nt):
            near += tj[t] <= rd_mode_margin * j0
        for t in range(nt):  # rd_mode: the candidates near the best, charged their RD levels
            if tj[t] > rd_mode_margin * j0:
                continue
            if near == 1:  # the best alone: nothing to compare
                best_m = tm[t]
                best_lv[:] = tlv[t]
                best_coef[:] = tcoef[t]
                best_d0 = td[t]
                best_b0 = tb0[t]
                break
            changed, d1, r1, q1 = _rd_trial_given(
                tex_b, tcoef[t], tlv[t], levels, b, nzs, nzc_b, nbkb, dcp_b, posc, cost, wz, offs_f, lam_rd, mu,
                rho, zz, invz, sc, rm, ra, rrem, rp0, rp1)  # fmt: skip
            d = d1 if changed else td[t]
            jc = d + lam * (tb0[t] + rd_mode_lam * (r1 + q1))
            if jc < best_j:
                best_j = jc
                best_m = tm[t]
                best_lv[:] = tlv[t]
                best_coef[:] = tcoef[t]
                best_b0 = tb0[t]
                best_tried = changed + 1  # its RD levels, kept: the search need not run again
                for k in range(64):
                    best_rd[k] = levels[b, k]
        if tx and tx_joint == 0 and best_m != 0:  # 2.5: the winner's DST pair against its DCT (RD levels)
            if best_tried == 0:  # the best alone was not RD-tried: its J with the RD levels
                changed, d1, r1, q1 = _rd_trial_given(
                    tex_b, best_coef, best_lv, levels, b, nzs, nzc_b, nbkb, dcp_b, posc, cost, wz, offs_f, lam_rd,
                    mu, rho, zz, invz, sc, rm, ra, rrem, rp0, rp1)  # fmt: skip
                best_j = (d1 if changed else best_d0) + lam * (best_b0 + rd_mode_lam * (
                    r1 + q1))  # fmt: skip
                best_tried = changed + 1
                for k in range(64):
                    best_rd[k] = levels[b, k]
            dv = dst if TX_PAIR[best_m, 0] else dct
            dh = dst if TX_PAIR[best_m, 1] else dct
            d2 = _trial_pair(xb, preds[best_m], dv, dh, zz, invz, stepz, offsets, res, tmp, coef2, lv2)
            changed2, d2r, r2, q2 = _rd_trial_given(
                tex_b, coef2, lv2, levels, b, nzs, nzc_b, nbkb, dcp_b, posc, cost, wz, offs_f, lam_rd, mu, rho, zz,
                invz, sc, rm, ra, rrem, rp0, rp1)  # fmt: skip
            tb = 2 * TX_CLASS[best_m]
            j2 = (d2r if changed2 else d2) + lam * (best_b0 + rd_mode_lam * (r2 + q2)
                                                   + _sym_bits(T, tb, 1, 2))  # fmt: skip
            if j2 < best_j + lam * _sym_bits(T, tb, 0, 2):
                use_dst = True
                for k in range(64):
                    rd2[k] = levels[b, k]
                reverted += _rd_levels_given(rd2, changed2, lv2, levels, b, nzs, bound, stepz, zz, offsets, dv,
                                             dh, preds[best_m], lo, hi, deq, tmp, rr, cols8, cmask, recon, x, r0,
                                             c0)  # fmt: skip
        if use_dst:  # its levels and reconstruction are in place
            pass
        elif best_tried > 0:
            reverted += _rd_levels_given(best_rd, best_tried - 1, best_lv, levels, b, nzs, bound, stepz, zz,
                                         offsets, dct, dct, preds[best_m], lo, hi, deq, tmp, rr, cols8, cmask,
                                         recon, x, r0, c0)  # fmt: skip
        elif rd:
            reverted += _rd_levels(xb, best_coef, best_lv, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu,
                                   rho, tex_sum, bound, zz, invz, sc, rm, rnbk, ra, rrem, rp0, rp1, stepz,
                                   offsets, dct, preds[best_m], lo, hi, deq, tmp, rr, cols8, cmask, recon, x, r0,
                                   c0)  # fmt: skip
        else:
            reconstruct_fast(best_lv, stepz, zz, offsets, dct, preds[best_m], lo, hi, deq, tmp, rr, cols8, cmask,
                             recon, r0, c0)  # fmt: skip
            for k in range(64):
                levels[b, k] = best_lv[k]
        modes[b] = best_m
        if model2:
            if big:
                mb_bits += mode_same * _mode_bits(C, N_MODES * ctx, best_m) + (0.0 if best_m == ctx else mode_other)
            _adapt(C, N_MODES * ctx, best_m, N_MODES)
        if tx:
            txc[b] = 2
            if best_m != 0 and _any_level(levels, b):  # a choice is coded
                txc[b] = 1 if use_dst else 0
                if big:
                    mb_bits += _sym_bits(T, 2 * TX_CLASS[best_m], txc[b], 2)
                _adapt(T, 2 * TX_CLASS[best_m], txc[b], 2)
    return reverted


@_helper
def _any_level(levels, b):
    """Block ``b`` has a non-zero level (format 2.5 codes its transform choice)."""
    for k in range(64):
        if levels[b, k] != 0:
            return True
    return False


@_helper
def _sym_bits(C, base, s, n):
    """Bits of symbol ``s`` of the n-ary context row at ``base`` as it stands: ``log2(32768 / f)``."""
    lo = np.int64(C[base + s]) if s > 0 else np.int64(0)
    hi = np.int64(C[base + s + 1]) if s < n - 1 else np.int64(1 << CDF_BITS)
    return CDF_BITS - np.log2(np.float64(hi - lo))


@_helper
def _static_bits(lvz):
    """:func:`_trial`'s bit estimate of levels ``lvz``: 2 + 2 bit_length(|l|) per non-zero level."""
    nb = np.int64(0)
    for k in range(64):
        lv = abs(lvz[k])
        if lv > 0:
            nb += 2 + 2 * _bitlen(lv)
    return np.float64(nb)


@_helper
def _trial_pair(xb, pred, dv, dh, zz, invz, stepz, offsets, res, tmp, coef, lvz):
    """:func:`_trial` with the separable pair (``dv`` vertically, ``dh`` horizontally; the dense
    forward transform): the residual's coefficients (natural order) into ``coef``, its rounded levels
    (zigzag) into ``lvz``; returns their squared error in the transform domain."""
    for p in range(64):
        res[p] = np.float64(xb[p] - pred[p])
    # tmp[8 u + j] = sum_i dv[u, i] res[8 i + j], then coef[8 u + v] = sum_j tmp[8 u + j] dh[v, j]: every
    # sum from 0.0 in increasing i (j), the same doubles as the dot products written out, eight of
    # them at a time in registers (independent chains, not one sum's latency after another)
    for u in range(8):
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        for i in range(8):
            d = dv[u, i]
            r = 8 * i
            a0 += d * res[r]
            a1 += d * res[r + 1]
            a2 += d * res[r + 2]
            a3 += d * res[r + 3]
            a4 += d * res[r + 4]
            a5 += d * res[r + 5]
            a6 += d * res[r + 6]
            a7 += d * res[r + 7]
        r = 8 * u
        tmp[r] = a0
        tmp[r + 1] = a1
        tmp[r + 2] = a2
        tmp[r + 3] = a3
        tmp[r + 4] = a4
        tmp[r + 5] = a5
        tmp[r + 6] = a6
        tmp[r + 7] = a7
    for u in range(8):
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        for j in range(8):
            t = tmp[8 * u + j]
            a0 += t * dh[0, j]
            a1 += t * dh[1, j]
            a2 += t * dh[2, j]
            a3 += t * dh[3, j]
            a4 += t * dh[4, j]
            a5 += t * dh[5, j]
            a6 += t * dh[6, j]
            a7 += t * dh[7, j]
        r = 8 * u
        coef[r] = a0
        coef[r + 1] = a1
        coef[r + 2] = a2
        coef[r + 3] = a3
        coef[r + 4] = a4
        coef[r + 5] = a5
        coef[r + 6] = a6
        coef[r + 7] = a7
    d = 0.0
    for k in range(64):
        c = coef[zz[k]]
        ac = abs(c)
        lv = np.int64(ac * invz[k] + 0.5)
        e = ac - ((256 * lv - offsets[k]) * stepz[k] * 0.00390625 if lv > 0 else 0.0)
        lvz[k] = -lv if c < 0 else lv
        d += e * e
    return d


@_helper
def _rd_levels_given(rd_lv, changed, lv, levels, b, nzs, bound, stepz, zz, offsets, dv, dh, pred, lo, hi, deq, tmp,
                     rr, cols8, cmask, recon, x, r0, c0):  # fmt: skip
    """:func:`_rd_levels` when the search already ran on this block's candidate (``rd_lv`` its
    levels, ``changed`` whether they differ from the rounded ``lv``): the same levels,
    reconstruction and check, without searching again. Returns 1 if it went back, else 0."""
    nz = np.int64(0)
    for k in range(64):
        levels[b, k] = rd_lv[k]
        if k > 0 and rd_lv[k] != 0:
            nz += 1
    nzs[b] = nz
    reconstruct_pair(rd_lv, stepz, zz, offsets, dv, dh, pred, lo, hi, deq, tmp, rr, cols8, cmask, recon, r0, c0)
    if changed == 0 or not _block_over(recon, x, r0, c0, bound):
        return 0
    nz = np.int64(0)
    for k in range(64):
        levels[b, k] = lv[k]
        if k > 0 and lv[k] != 0:
            nz += 1
    nzs[b] = nz
    reconstruct_pair(lv, stepz, zz, offsets, dv, dh, pred, lo, hi, deq, tmp, rr, cols8, cmask, recon, r0, c0)
    return 1


@_helper
def _rd_levels(xb, coef, lv, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho, tex_sum, bound, zz, invz,
               sc, rm, rnbk, ra, rrem, rp0, rp1, stepz, offsets, dct, pred, lo, hi, deq, tmp, rr, cols8, cmask, recon,
               x, r0, c0):  # fmt: skip
    """Block ``b``'s RD levels from its rounded ones ``lv`` (zigzag) and its residual's DCT ``coef``
    (natural order) into ``levels[b]``, and its reconstruction; back to ``lv`` if a sample would be
    off by more than ``bound``. Returns 1 if it went back, else 0."""
    changed = _rd_search(xb, coef, lv, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho, tex_sum, zz, invz,
                         sc, rm, rnbk, ra, rrem, rp0, rp1)  # fmt: skip
    for k in range(64):
        rm[k] = levels[b, k]
    return _rd_levels_given(rm, changed, lv, levels, b, nzs, bound, stepz, zz, offsets, dct, dct, pred, lo, hi, deq,
                            tmp, rr, cols8, cmask, recon, x, r0, c0)  # fmt: skip


@_helper
def _rd_search(xb, coef, lv, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho, tex_sum, zz, invz, sc, rm,
               rnbk, ra, rrem, rp0, rp1):  # fmt: skip
    """:func:`._rdoq_ms.rdoq_block` on a candidate's rounded levels ``lv`` (zigzag) and residual
    transform ``coef`` (natural order): its RD levels into ``levels[b]`` (``nzs[b]`` their count),
    ``sc`` the coefficients in steps (zigzag); returns whether any level changed."""
    s = np.int64(0)
    for p in range(64):
        s += xb[p]
    for k in range(64):
        sc[k] = coef[zz[k]] * invz[k]
        levels[b, k] = lv[k]
    return rdoq_block(sc, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho, s >= tex_sum, False, rm, rnbk,
                      ra, rrem, rp0, rp1)  # fmt: skip


@_helper
def _model_rate(levels, b, bx, nzs, posc, cost):
    """Bits of block ``b``'s non-zero count, AC base symbols and signs under ``cost``
    (:func:`._rdoq_ms.symbol_costs`), the contexts from ``levels`` of blocks ``b - 1``, ``b - bx`` and
    ``nzs`` of theirs: the part of its rate the RD search changes (its DC and continuation symbols
    it does not)."""
    has_left = b % bx > 0
    has_up = b >= bx
    nz = np.int64(0)
    for k in range(1, 64):
        if levels[b, k] != 0:
            nz += 1
    r = _nz_rate(nz, _nz_ctx(nzs, b, bx), cost) + nz
    rem = nz
    k = 1
    while rem > 0:
        mk = abs(np.int64(levels[b, k]))
        nsum = np.int64(0)
        if has_left:
            nsum += abs(np.int64(levels[b - 1, k]))
        if has_up:
            nsum += abs(np.int64(levels[b - bx, k]))
        nbk = NBR_LUT[min(nsum, np.int64(21))]
        r += cost[O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem]) * NBR_BUCKETS + nbk) + min(mk, 3)]
        if mk != 0:
            rem -= 1
        k += 1
    return r


@_helper
def _scaled_sse(sc, levels, b, wz, offs_f):
    """Squared error, in the DCT domain, of block ``b``'s levels against ``sc`` (coefficients /
    steps, zigzag): ``sum wz[k] (|sc[k]| - r_k)^2`` with ``r_k = |l| - offs_f[k]`` (offsets in steps; 0
    for l = 0)."""
    d = 0.0
    for k in range(64):
        mk = abs(np.int64(levels[b, k]))
        e = abs(sc[k]) - (mk - offs_f[k] if mk > 0 else 0.0)
        d += wz[k] * e * e
    return d


@_helper
def _rd_trial(xb, coef, lv, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho, tex_sum, zz, invz, sc, rm,
              rnbk, ra, rrem, rp0, rp1):  # fmt: skip
    """What :func:`._rdoq_ms.rdoq_block` makes of a mode candidate's rounded levels ``lv`` (zigzag)
    and residual DCT ``coef`` (natural order): (levels changed, their DCT-domain squared error
    :func:`_scaled_sse` (0.0 if none changed), :func:`_model_rate`), the RD levels left in
    ``levels[b]``. Uses ``levels[b]`` and ``nzs[b]`` as scratch (the block's final levels
    overwrite them). The encoder runs the fused :func:`_rd_trial_given`; this plain composition
    (with :func:`_rest_rate`) is its definition, which ``tests/codec/test_encoder_speed_exact.py``
    checks it against."""
    changed = _rd_search(xb, coef, lv, levels, b, bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho, tex_sum, zz, invz,
                         sc, rm, rnbk, ra, rrem, rp0, rp1)  # fmt: skip
    d1 = _scaled_sse(sc, levels, b, wz, offs_f) if changed else 0.0
    return changed, d1, _model_rate(levels, b, bx, nzs, posc, cost)


@_helper
def _rd_trial_given(texture, coef, lv, levels, b, nzs, nzc, nbkb, dcp, posc, cost, wz, offs_f, lam_rd, mu, rho, zz,
                    invz, sc, rm, ra, rrem, rp0, rp1):  # fmt: skip
    """:func:`_rd_trial` with what is the same for every candidate of block ``b`` found once:
    ``texture`` (its sample sum reaches the floor), ``nzc`` (the non-zero count's context),
    ``nbkb`` (the neighbour buckets of positions 1..63, :func:`._rdoq_ms.neighbour_buckets`) and
    ``dcp`` (the DC level's prediction, ``_dc_context``). The same levels and figures, and a fourth:
    :func:`_rest_rate` of the RD levels, summed in the same walk."""
    sc[0] = coef[zz[0]] * invz[0]
    levels[b, 0] = lv[0]
    nz = np.int64(0)
    last = 0
    movable = 0
    for k in range(1, 64):  # with rdoq_block_given's first walk
        sc[k] = coef[zz[k]] * invz[k]
        v = lv[k]
        levels[b, k] = v
        mk = abs(v)
        rm[k] = mk
        if v != 0:
            nz += 1
            last = k
            if mk <= 2:
                movable += 1
    changed = rdoq_block_counted(sc, levels, b, nzs, nzc, posc, cost, wz, offs_f, lam_rd, mu, rho, texture, False, rm,
                                 nbkb, ra, rrem, rp0, rp1, nz, last, movable)  # fmt: skip
    d1 = _scaled_sse(sc, levels, b, wz, offs_f) if changed else 0.0
    r, rest = _model_rest_rate(levels, b, nzs, nzc, nbkb, dcp, posc, cost)
    return changed, d1, r, rest


@_helper
def _model_rest_rate(levels, b, nzs, nzc, nbkb, dcp, posc, cost):
    """(:func:`_model_rate`, :func:`_rest_rate`) of ``levels[b]`` in one walk, the contexts given (as
    :func:`_rd_trial_given` has them), ``nzs[b]`` its non-zero AC levels (what the search leaves):
    each sum adds the same terms in the same order as the two functions."""
    nz = nzs[b]
    r = _nz_rate(nz, nzc, cost) + nz
    rest = 2.0 + _bitlen(abs(np.int64(levels[b, 0]) - dcp))
    rem = nz
    k = 1
    while rem > 0:  # past the last non-zero level no continuation symbol either
        mk = abs(np.int64(levels[b, k]))
        r += cost[O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem]) * NBR_BUCKETS + nbkb[k]) + min(mk, 3)]
        if mk != 0:
            rem -= 1
            if mk >= 3:
                rest += 1.5 * min((mk - 3) // 3 + 1, np.int64(4))
                if mk >= 15:
                    rest += 2.0 + 2.0 * _bitlen(mk - 15)
        k += 1
    return r, rest


@_helper
def _rest_rate(levels, b, bx):
    """An estimate of the bits of block ``b``'s DC (``2 + bit_length`` of its difference to the
    prediction from the neighbours' DC levels) and of its continuation symbols (1.5 bits each). The
    reference of :func:`_model_rest_rate`'s second figure (the encoder runs that one)."""
    pred, _ = _dc_context(levels, b, bx)
    r = 2.0 + _bitlen(abs(np.int64(levels[b, 0]) - pred))
    for k in range(1, 64):
        mk = abs(np.int64(levels[b, k]))
        if mk >= 3:
            r += 1.5 * min((mk - 3) // 3 + 1, np.int64(4))
            if mk >= 15:
                r += 2.0 + 2.0 * _bitlen(mk - 15)
    return r


@_jit
def decode_intra(levels, modes, steps, zz, offsets, dct, mid, lo, hi, recon):
    """The decoder's loop: prediction + residual block by block into recon (int64); returns the
    number of the first block whose mode is out of range, or -1. Equal to :func:`predict_mode` and
    :func:`reconstruct_block` block by block (tests/codec/test_intra.py), without their per-sample
    geometry, dense IDCT and allocation."""
    rows, cols = recon.shape
    bx = cols // 8
    ext = np.empty(EXT_SIZE, np.int64)
    fext = np.empty(EXT_SIZE, np.int64)
    pred = np.empty(64, np.int64)
    tmp = np.empty(64)
    deq = np.zeros(64)
    rr = np.empty(64)
    colmask = np.zeros(8, np.int64)
    stepz = np.empty(64)
    for k in range(64):
        stepz[k] = steps[zz[k] // 8, zz[k] % 8]
    for by in range(rows // 8):
        for bxi in range(bx):
            r0 = by * 8
            c0 = bxi * 8
            b = by * bx + bxi
            m = np.int64(modes[b])
            if m < 0 or m >= N_MODES:
                return b
            ext_refs(recon, r0, c0, mid, ext, fext, m >= FIRST_SMOOTHED)
            predict_fast(m, ext, fext, pred)
            reconstruct_sparse(levels[b], stepz, zz, offsets, dct, dct, pred, lo, hi, deq, tmp, rr, colmask, recon,
                               r0, c0)  # fmt: skip
    return -1


@_jit
def decode_intra_plain(levels, modes, steps, zz, offsets, dct, mid, lo, hi, recon):
    """The decoder's loop as first written (:func:`predict_mode`, the dense :func:`reconstruct_block`):
    the twin :func:`decode_intra` is checked against."""
    rows, cols = recon.shape
    bx = cols // 8
    top = np.empty(16, np.int64)
    left = np.empty(16, np.int64)
    ftop = np.empty(16, np.int64)
    fleft = np.empty(16, np.int64)
    pred = np.empty((8, 8), np.int64)
    tmp = np.empty((8, 8))
    deq = np.empty((8, 8))
    rr = np.empty((8, 8))
    for by in range(rows // 8):
        for bxi in range(bx):
            r0 = by * 8
            c0 = bxi * 8
            b = by * bx + bxi
            m = np.int64(modes[b])
            if m < 0 or m >= N_MODES:
                return b
            corner = refs(recon, r0, c0, mid, top, left)
            fcorner = smooth_refs(top, left, corner, ftop, fleft)
            predict_mode(m, top, left, corner, ftop, fleft, fcorner, pred)
            reconstruct_block(levels[b], steps, zz, offsets, dct, pred, lo, hi, deq, tmp, rr, recon, r0, c0)
    return -1


@_helper
def _mode_ctx(modes, b, bx):
    """Row of the mode model: the left neighbour's mode, the block above's in the first column, 0 first."""
    if b % bx > 0:
        return np.int64(modes[b - 1])
    if b >= bx:
        return np.int64(modes[b - bx])
    return np.int64(0)


def initial_mode_model() -> np.ndarray:
    """Every row uniform (``c[i] = i * 32768 // 16``), counts 0 (the layout of :mod:`._kernels_ms`)."""
    model = np.zeros(MODE_MODEL_SIZE, dtype=np.int16)
    for r in range(N_MODES):
        model[r * N_MODES + 1 : (r + 1) * N_MODES] = [i * 32768 // N_MODES for i in range(1, N_MODES)]
    return model


INITIAL_MODE_MODEL = initial_mode_model()

# Format 2.12's trained starts of the mode segment's models (docs/format.md §22), the §13.1 layout of
# each (per row its count, then c[1] .. c[n-1]): what ``benchmarks/train_level_starts.py`` derived from
# ../shared/data and writes between these markers. In this module, not another: numba bakes the
# arrays into the kernels' cached code, and its cache follows this file only.
# BEGIN trained mode starts
# fmt: off
TRAINED_MODE_MODEL = np.array([15, 13419, 15437, 17061, 17954, 18605, 19676, 21057, 22285, 23817, 25353, 26466,
    27764, 29283, 30884, 31967, 15, 1724, 15132, 16304, 17553, 18407, 19548, 20562, 21795, 23518, 25443, 26640,
    27784, 29169, 30760, 31914, 15, 767, 2360, 15388, 18506, 21194, 21938, 22485, 23217, 24600, 26544, 27309, 28059,
    29783, 31691, 32349, 15, 1395, 3458, 5629, 20252, 20752, 21470, 22146, 23229, 25922, 28794, 29893, 30600, 31131,
    31741, 32276, 15, 690, 2281, 5518, 6085, 21129, 21649, 22314, 22835, 23286, 23787, 24274, 25410, 28877, 31463,
    32256, 15, 3172, 5166, 5750, 6210, 6702, 17612, 18302, 19139, 20155, 21524, 23598, 24326, 25214, 26258, 28976,
    15, 1991, 3796, 4336, 5475, 6046, 6870, 18966, 22662, 24153, 25345, 26261, 29201, 30730, 31449, 32147, 15, 2362,
    4476, 5229, 6633, 7106, 8051, 10584, 22369, 25365, 26944, 28228, 29472, 30485, 31346, 32045, 15, 2269, 4324,
    5471, 8068, 8507, 9352, 10527, 12773, 25739, 27655, 28942, 29851, 30650, 31419, 32118, 15, 2286, 4746, 5931,
    7798, 8220, 9313, 10092, 11113, 12959, 26085, 28937, 29718, 30414, 31214, 31935, 15, 2844, 5353, 6088, 6922,
    7368, 10233, 10903, 11738, 12994, 15655, 27233, 28076, 28998, 30025, 31178, 15, 1937, 3907, 4611, 5729, 6481,
    7210, 10789, 12279, 13271, 14210, 14973, 27320, 30273, 31376, 32122, 15, 1480, 3384, 4645, 5205, 7482, 8138,
    9381, 10259, 10969, 11605, 12190, 15704, 29763, 31362, 32145, 15, 1460, 3425, 4943, 5460, 7650, 8748, 9658,
    10495, 11185, 11945, 12696, 13908, 15824, 28882, 31632, 15, 2403, 4678, 5613, 6272, 7185, 9261, 10197, 11191,
    12089, 13227, 14330, 15513, 17159, 19881, 30897, 15, 2931, 5737, 6630, 7490, 8235, 10189, 11373, 12615, 13940,
    15702, 17285, 18770, 20384, 22258, 24165], dtype=np.int16)
TRAINED_TX_MODEL = np.array([15, 8994, 15, 10567, 15, 11104], dtype=np.int16)
TRAINED_SPLIT_MODEL = np.array([15, 4052, 15, 10589, 15, 17911], dtype=np.int16)
TRAINED_MODE16_MODEL = np.array([15, 21902, 29611], dtype=np.int16)
# fmt: on
# END trained mode starts


@_jit
def encode_modes(modes, bx, out):
    """Range-code the modes (16-ary adaptive symbol, context :func:`_mode_ctx`); (status, nbytes)."""
    C = INITIAL_MODE_MODEL.copy()
    st = np.zeros(6, dtype=np.int64)
    _enc_init(st)
    for b in range(modes.size):
        _enc_sym(st, out, C, N_MODES * _mode_ctx(modes, b, bx), np.int64(modes[b]), N_MODES)
    _enc_flush(st, out)
    if st[5]:
        return E_OVERFLOW, 0
    return OK, st[4]


@_jit
def decode_modes(data, start, end, bx, modes):
    """Inverse of :func:`encode_modes` on data[start:end]; returns a status."""
    C = INITIAL_MODE_MODEL.copy()
    code, rng, pos, past = _dec_start(data, start, end)
    for b in range(modes.size):
        s, code, rng, pos, past = _dec_sym(code, rng, pos, past, data, end, C, N_MODES * _mode_ctx(modes, b, bx),
                                           N_MODES)  # fmt: skip
        if s < 0:
            return E_TRUNCATED if past > 0 else E_RANGE
        modes[b] = s
        if past > 8:
            return E_TRUNCATED
    return E_TRUNCATED if past > 0 else OK


# ----------------------------------------------------------------------------- mode model 2 (format 2.4)


@_helper
def flat_refs(ext, tol=0):
    """Are the block's references (corner, ``top[0:16]``, ``left[0:8]``; ``ext`` of :func:`ext_refs`,
    whose other entries copy these) all within ``tol`` of each other (0: equal)? Equal: every mode
    predicts that value everywhere."""
    lo = ext[0]
    hi = ext[0]
    for k in range(1, EXT_SIZE):
        v = ext[k]
        if v < lo:
            lo = v
        elif v > hi:
            hi = v
        if hi - lo > tol:
            return False
    return True


@_helper
def _mode_bits(C, base, m):
    """Bits of mode m in the 16-ary context row at ``base`` as it stands: ``log2(32768 / f)``."""
    lo = np.int64(C[base + m]) if m > 0 else np.int64(0)
    hi = np.int64(C[base + m + 1]) if m < N_MODES - 1 else np.int64(1 << CDF_BITS)
    return CDF_BITS - np.log2(np.float64(hi - lo))


@_jit
def encode_modes2(modes, skip, bx, out):
    """Mode model 2: :func:`encode_modes` without the blocks whose ``skip`` is set (their mode, the
    context's, still sets the next block's context); (status, nbytes)."""
    C = INITIAL_MODE_MODEL.copy()
    st = np.zeros(6, dtype=np.int64)
    _enc_init(st)
    for b in range(modes.size):
        if skip[b] == 0:
            _enc_sym(st, out, C, N_MODES * _mode_ctx(modes, b, bx), np.int64(modes[b]), N_MODES)
    _enc_flush(st, out)
    if st[5]:
        return E_OVERFLOW, 0
    return OK, st[4]


@_jit
def encode_modes25(modes, skip, txc, bx, out):
    """Format 2.5's mode segment: :func:`encode_modes2`, each coded block's mode followed by its
    transform choice if ``txc[b] < 2`` (binary symbol, context :data:`TX_CLASS` of the mode, its
    own model :data:`INITIAL_TX_MODEL`); (status, nbytes)."""
    C = INITIAL_MODE_MODEL.copy()
    T = INITIAL_TX_MODEL.copy()
    st = np.zeros(6, dtype=np.int64)
    _enc_init(st)
    for b in range(modes.size):
        if skip[b] == 0:
            _enc_sym(st, out, C, N_MODES * _mode_ctx(modes, b, bx), np.int64(modes[b]), N_MODES)
            if txc[b] < 2:
                _enc_sym(st, out, T, 2 * TX_CLASS[modes[b]], np.int64(txc[b]), 2)
    _enc_flush(st, out)
    if st[5]:
        return E_OVERFLOW, 0
    return OK, st[4]


@_jit
def decode_intra2(data, start, end, levels, steps, zz, offsets, dct, mid, lo, hi, recon, modes, flat_tol=0):
    """The decoder of mode model 2: :func:`decode_intra` with the modes read from data[start:end]
    block by block (a block with :func:`flat_refs` within ``flat_tol`` takes its context's mode
    and reads nothing);
    fills ``modes``, returns a status (:data:`OK`, :data:`E_TRUNCATED`, :data:`E_RANGE`)."""
    return _decode_intra2_core(data, start, end, levels, steps, zz, offsets, dct, mid, lo, hi, recon, modes, flat_tol,
                               False, dct, np.zeros(1, np.uint8))  # fmt: skip


@_jit
def decode_intra25(data, start, end, levels, steps, zz, offsets, dct, mid, lo, hi, recon, modes, flat_tol, dst, txc):
    """Format 2.5's decoder (``docs/format.md`` §18): :func:`decode_intra2`, a coded block (not flat)
    of mode other than DC with a non-zero level reads its transform choice after its mode and, if
    1, is reconstructed with its mode's pair (:data:`TX_PAIR`; ``dst`` the DST-VII). Fills
    ``modes`` and ``txc`` (per block: 0 the DCT, 1 the pair, 2 none coded); returns a status."""
    return _decode_intra2_core(data, start, end, levels, steps, zz, offsets, dct, mid, lo, hi, recon, modes, flat_tol,
                               True, dst, txc)  # fmt: skip


@_jit
def _decode_intra2_core(data, start, end, levels, steps, zz, offsets, dct, mid, lo, hi, recon, modes, flat_tol, tx,
                        dst, txc):  # fmt: skip
    """:func:`decode_intra2` (``tx`` False) and :func:`decode_intra25`."""
    rows, cols = recon.shape
    bx = cols // 8
    ext = np.empty(EXT_SIZE, np.int64)
    fext = np.empty(EXT_SIZE, np.int64)
    pred = np.empty(64, np.int64)
    tmp = np.empty(64)
    deq = np.zeros(64)
    rr = np.empty(64)
    colmask = np.zeros(8, np.int64)
    stepz = np.empty(64)
    for k in range(64):
        stepz[k] = steps[zz[k] // 8, zz[k] % 8]
    C = INITIAL_MODE_MODEL.copy()
    T = INITIAL_TX_MODEL.copy()
    st = np.zeros(4, np.int64)
    st[0], st[1], st[2], st[3] = _dec_start(data, start, end)
    for by in range(rows // 8):
        for bxi in range(bx):
            status = _decode_block(data, end, st, C, T, levels, by * bx + bxi, bx, by * 8, bxi * 8, stepz, zz, offsets,
                                   dct, mid, lo, hi, recon, modes, flat_tol, tx, dst, txc, False, ext, fext, pred,
                                   tmp, deq, rr, colmask)  # fmt: skip
            if status != OK:
                return status
    return E_TRUNCATED if st[3] > 0 else OK


@_helper
def _decode_block(data, end, st, C, T, levels, b, bx, r0, c0, stepz, zz, offsets, dct, mid, lo, hi, recon, modes,
                  flat_tol, tx, dst, txc, zorder, ext, fext, pred, tmp, deq, rr, colmask):  # fmt: skip
    """One 8x8 block of :func:`_decode_intra2_core` / :func:`_decode_intra26_core`: its references
    (``zorder``: format 2.6's, :func:`ext_refs_z`), its mode (implied if flat, else read), format 2.5's
    transform choice (``tx``), prediction and reconstruction. ``st``: the mode decoder's (code,
    range, position, bytes past the end). Returns a status."""
    ext_refs_z(recon, r0, c0, mid, ext, fext, False, zorder)
    ctx = _mode_ctx(modes, b, bx)
    t = 2
    if flat_refs(ext, flat_tol):
        m = ctx
    else:
        m, st[0], st[1], st[2], st[3] = _dec_sym(st[0], st[1], st[2], st[3], data, end, C, N_MODES * ctx, N_MODES)
        if m < 0:
            return E_TRUNCATED if st[3] > 0 else E_RANGE
        if st[3] > 8:
            return E_TRUNCATED
        if tx and m != 0 and _any_level(levels, b):  # format 2.5: the transform choice
            t, st[0], st[1], st[2], st[3] = _dec_sym(st[0], st[1], st[2], st[3], data, end, T, 2 * TX_CLASS[m], 2)
            if t < 0:
                return E_TRUNCATED if st[3] > 0 else E_RANGE
            if st[3] > 8:
                return E_TRUNCATED
    modes[b] = m
    if tx:
        txc[b] = t
    if m >= FIRST_SMOOTHED:
        top = ext[EXT_TOP : EXT_TOP + 16]
        left = ext[EXT_LEFT : EXT_LEFT + 16]
        fext[0] = smooth_refs(top, left, ext[0], fext[EXT_TOP : EXT_TOP + 16], fext[EXT_LEFT : EXT_LEFT + 16])
        _pad(fext)
    predict_fast(m, ext, fext, pred)
    dv = dst if t == 1 and TX_PAIR[m, 0] else dct
    dh = dst if t == 1 and TX_PAIR[m, 1] else dct
    reconstruct_sparse(levels[b], stepz, zz, offsets, dv, dh, pred, lo, hi, deq, tmp, rr, colmask, recon, r0, c0)
    return OK


# ----------------------------------------------------------------------------- 16x16 blocks (format 2.6)


@_helper
def ext_refs_z(recon, r0, c0, mid, ext, fext, smoothed, zorder):
    """:func:`ext_refs`; with ``zorder`` (format 2.6's coding order) the bottom-right 8x8 block of a
    macroblock (``r0 % 16 == 8``, ``c0 % 16 == 8``), whose above-right samples lie in the next
    macroblock (not decoded yet), takes ``top[8:16] = top[7]``, as past the frame's last column."""
    ext_refs(recon, r0, c0, mid, ext, fext, False)
    if zorder and r0 % 16 == 8 and c0 % 16 == 8:
        for j in range(8, 16):
            ext[EXT_TOP + j] = ext[EXT_TOP + 7]
        _pad(ext)
    if smoothed:
        top = ext[EXT_TOP : EXT_TOP + 16]
        left = ext[EXT_LEFT : EXT_LEFT + 16]
        fext[0] = smooth_refs(top, left, ext[0], fext[EXT_TOP : EXT_TOP + 16], fext[EXT_LEFT : EXT_LEFT + 16])
        _pad(fext)


@_helper
def refs16(recon, r0, c0, mid, top, left):
    """The references of the 16x16 block at (r0, c0) (``docs/format.md`` §19) into ``top[0:16]`` (the
    row above), ``left[0:16]`` (the column to the left); returns the corner. First row: ``top`` and
    the corner the first left sample; first column: ``left`` and the corner the first above one; the
    first block: all ``mid``."""
    if r0 == 0 and c0 == 0:
        for k in range(16):
            top[k] = mid
            left[k] = mid
        return np.int64(mid)
    if r0 > 0:
        for j in range(16):
            top[j] = recon[r0 - 1, c0 + j]
    if c0 > 0:
        for i in range(16):
            left[i] = recon[r0 + i, c0 - 1]
    if r0 == 0:
        for j in range(16):
            top[j] = left[0]
        return np.int64(left[0])
    if c0 == 0:
        for i in range(16):
            left[i] = top[0]
        return np.int64(top[0])
    return np.int64(recon[r0 - 1, c0 - 1])


@_helper
def predict16(mode, top, left, corner, out):
    """The 16x16 prediction ``out`` (256 int64, row-major) of ``mode`` (0 DC, 1 SMOOTH with
    :data:`SMOOTH_W16`, ``left[15]`` and ``top[15]`` the bottom-left and top-right stand-ins, 2 paeth)
    from :func:`refs16`'s references (``docs/format.md`` §19)."""
    if mode == 0:
        s = np.int64(0)
        for k in range(16):
            s += top[k] + left[k]
        v = (s + 16) >> 5
        for p in range(256):
            out[p] = v
    elif mode == 1:
        for i in range(16):
            wi = SMOOTH_W16[i]
            for j in range(16):
                wj = SMOOTH_W16[j]
                out[16 * i + j] = (wi * top[j] + (256 - wi) * left[15] + wj * left[i] + (256 - wj) * top[15] + 256) >> 9
    else:
        for i in range(16):
            for j in range(16):
                out[16 * i + j] = paeth(top[j], left[i], corner)


@_helper
def big_blocks(b, bx, quad):
    """The block numbers of the macroblock whose top-left 8x8 block is ``b``, Z order, into ``quad``."""
    quad[0] = b
    quad[1] = b + 1
    quad[2] = b + bx
    quad[3] = b + bx + 1


@_helper
def dequant16(levels, quad, stepz, zz, offsets, D):
    """The 16x16 coefficients of a large block from its four pseudo-blocks (``quad``, Z order):
    coefficient (u, v) is level ``k`` of pseudo-block ``2 (u % 2) + v % 2`` at natural position
    ``8 (u // 2) + v // 2`` (zigzag ``k``), dequantized with that position's step and offset as
    §14.4 does, into ``D`` (16 x 16, row-major). Returns whether any level is non-zero."""
    any_nz = False
    for q in range(4):
        a = q >> 1
        c = q & 1
        for k in range(64):
            v = np.int64(levels[quad[q], k])
            p = zz[k]
            idx = 16 * (2 * (p >> 3) + a) + 2 * (p & 7) + c
            if v == 0:
                D[idx] = 0.0
                continue
            any_nz = True
            qv = 256 * v - offsets[k] if v > 0 else 256 * v + offsets[k]
            D[idx] = qv * stepz[k] * 0.00390625
    return any_nz


@_helper
def reconstruct16(levels, quad, stepz, zz, offsets, c16, pred, lo, hi, D, tmp, rr, recon, r0, c0):
    """A large block's reconstruction (``docs/format.md`` §19): ``E = C16^T D C16`` summed in index
    order, the zero terms of ``D`` and the zero columns of ``tmp`` left out (exact, as §14.4 allows),
    ``recon = clip(pred + floor(E + 0.5))`` (``pred``: 256 int64, row-major). ``D``, ``tmp``, ``rr``:
    256 float scratch."""
    if not dequant16(levels, quad, stepz, zz, offsets, D):
        for i in range(16):
            for j in range(16):
                recon[r0 + i, c0 + j] = min(max(pred[16 * i + j], lo), hi)
        return
    for v in range(16):  # tmp[i][v] = sum_u C[u][i] D[u][v], u increasing, zero D left out
        for i in range(16):
            tmp[16 * i + v] = 0.0
        for u in range(16):
            d = D[16 * u + v]
            if d != 0.0:
                for i in range(16):
                    tmp[16 * i + v] += c16[u, i] * d
    for p in range(256):
        rr[p] = 0.0
    for v in range(16):  # E[i][j] = sum_v tmp[i][v] C[v][j], v increasing, zero tmp columns left out
        nz = False
        for i in range(16):
            if tmp[16 * i + v] != 0.0:
                nz = True
                break
        if not nz:
            continue
        for i in range(16):
            a = tmp[16 * i + v]
            for j in range(16):
                rr[16 * i + j] += a * c16[v, j]
    for i in range(16):
        for j in range(16):
            val = pred[16 * i + j] + np.int64(np.floor(rr[16 * i + j] + 0.5))
            recon[r0 + i, c0 + j] = min(max(val, lo), hi)


@_helper
def reconstruct16_plain(levels, quad, stepz, zz, offsets, c16, pred, lo, hi, D, tmp, rr, recon, r0, c0):
    """:func:`reconstruct16` as §19 writes it: every term, dense (the twin it is checked against)."""
    dequant16(levels, quad, stepz, zz, offsets, D)
    for i in range(16):
        for v in range(16):
            s = 0.0
            for u in range(16):
                s += c16[u, i] * D[16 * u + v]
            tmp[16 * i + v] = s
    for i in range(16):
        for j in range(16):
            s = 0.0
            for v in range(16):
                s += tmp[16 * i + v] * c16[v, j]
            val = pred[16 * i + j] + np.int64(np.floor(s + 0.5))
            recon[r0 + i, c0 + j] = min(max(val, lo), hi)


@_helper
def _split_ctx(split, m, mx, nmx):
    """Row of the split model for macroblock ``m`` (column ``mx``): how many of the left and above
    macroblocks are one 16x16 block (``split`` 0)."""
    n = 0
    if mx > 0 and split[m - 1] == 0:
        n += 1
    if m >= nmx and split[m - nmx] == 0:
        n += 1
    return n


@_jit
def encode_modes26(modes, skip, txc, split, bx, by, out, trained=False):
    """Format 2.6's mode segment (``docs/format.md`` §19): macroblocks in raster order; a full one's
    split symbol (0 one 16x16 block, 1 four 8x8 blocks; ``split`` 2: a macroblock past the frame's
    edge, none coded) in the split model; a 16x16 block's mode (``modes`` of its top-left position)
    in the 16x16 mode model; the 8x8 blocks of a split one in Z order as :func:`encode_modes25` codes
    them (``trained``: the models start from format 2.12's tables, §22); (status, nbytes)."""
    if trained:
        return encode_modes26_with(modes, skip, txc, split, bx, by, out, TRAINED_MODE_MODEL.copy(),
                                   TRAINED_TX_MODEL.copy(), TRAINED_SPLIT_MODEL.copy(),
                                   TRAINED_MODE16_MODEL.copy())  # fmt: skip
    return encode_modes26_with(modes, skip, txc, split, bx, by, out, INITIAL_MODE_MODEL.copy(),
                               INITIAL_TX_MODEL.copy(), INITIAL_SPLIT_MODEL.copy(),
                               INITIAL_MODE16_MODEL.copy())  # fmt: skip


@_jit
def encode_modes26_with(modes, skip, txc, split, bx, by, out, C, T, S, M):
    """:func:`encode_modes26` from the mode, choice, split and 16x16 mode models ``C``, ``T``, ``S``, ``M``,
    which it adapts in place (what ``benchmarks/train_level_starts.py`` reads); (status, nbytes)."""
    st = np.zeros(6, dtype=np.int64)
    _enc_init(st)
    nmx = (bx + 1) // 2
    nmy = (by + 1) // 2
    for my in range(nmy):
        for mx in range(nmx):
            m = my * nmx + mx
            if split[m] < 2:
                _enc_sym(st, out, S, 2 * _split_ctx(split, m, mx, nmx), np.int64(split[m]), 2)
            if split[m] == 0:
                _enc_sym(st, out, M, 0, np.int64(modes[(2 * my) * bx + 2 * mx]), N_MODES16)
                continue
            for q in range(4):
                bi = 2 * my + (q >> 1)
                bj = 2 * mx + (q & 1)
                if bi >= by or bj >= bx:
                    continue
                b = bi * bx + bj
                if skip[b] == 0:
                    _enc_sym(st, out, C, N_MODES * _mode_ctx(modes, b, bx), np.int64(modes[b]), N_MODES)
                    if txc[b] < 2:
                        _enc_sym(st, out, T, 2 * TX_CLASS[modes[b]], np.int64(txc[b]), 2)
    _enc_flush(st, out)
    if st[5]:
        return E_OVERFLOW, 0
    return OK, st[4]


@_jit
def decode_intra26(data, start, end, levels, steps, zz, offsets, dct, mid, lo, hi, recon, modes, flat_tol, dst, txc,
                   split, c16, plain=False, trained=False):  # fmt: skip
    """Format 2.6's decoder (``docs/format.md`` §19): macroblocks in raster order, each full one's
    split symbol first; a 16x16 block's mode symbol, its prediction (:func:`predict16`) and its
    reconstruction from its four pseudo-blocks (:func:`reconstruct16`; ``plain``:
    :func:`reconstruct16_plain`), its 8x8 positions that mode, no choice; the 8x8 blocks of a split
    one in Z order as :func:`decode_intra25` (``trained``: the models from format 2.12's starts, §22).
    Fills ``modes``, ``txc`` and ``split`` (per macroblock, as :func:`encode_modes26` takes it);
    returns a status."""
    rows, cols = recon.shape
    bx = cols // 8
    by = rows // 8
    ext = np.empty(EXT_SIZE, np.int64)
    fext = np.empty(EXT_SIZE, np.int64)
    pred = np.empty(64, np.int64)
    tmp = np.empty(64)
    deq = np.zeros(64)
    rr = np.empty(64)
    colmask = np.zeros(8, np.int64)
    D = np.empty(256)
    tmp16 = np.empty(256)
    rr16 = np.empty(256)
    quad = np.empty(4, np.int64)
    top16 = np.empty(16, np.int64)
    left16 = np.empty(16, np.int64)
    pred16 = np.empty(256, np.int64)
    stepz = np.empty(64)
    for k in range(64):
        stepz[k] = steps[zz[k] // 8, zz[k] % 8]
    C = TRAINED_MODE_MODEL.copy() if trained else INITIAL_MODE_MODEL.copy()
    T = TRAINED_TX_MODEL.copy() if trained else INITIAL_TX_MODEL.copy()
    S = TRAINED_SPLIT_MODEL.copy() if trained else INITIAL_SPLIT_MODEL.copy()
    M = TRAINED_MODE16_MODEL.copy() if trained else INITIAL_MODE16_MODEL.copy()
    st = np.zeros(4, np.int64)
    st[0], st[1], st[2], st[3] = _dec_start(data, start, end)
    nmx = (bx + 1) // 2
    nmy = (by + 1) // 2
    for my in range(nmy):
        for mx in range(nmx):
            m = my * nmx + mx
            r0 = 16 * my
            c0 = 16 * mx
            split[m] = 2
            if r0 + 16 <= rows and c0 + 16 <= cols:
                s, st[0], st[1], st[2], st[3] = _dec_sym(st[0], st[1], st[2], st[3], data, end, S,
                                                          2 * _split_ctx(split, m, mx, nmx), 2)  # fmt: skip
                if s < 0:
                    return E_TRUNCATED if st[3] > 0 else E_RANGE
                if st[3] > 8:
                    return E_TRUNCATED
                split[m] = s
            if split[m] == 0:
                m16, st[0], st[1], st[2], st[3] = _dec_sym(st[0], st[1], st[2], st[3], data, end, M, 0, N_MODES16)
                if m16 < 0:
                    return E_TRUNCATED if st[3] > 0 else E_RANGE
                if st[3] > 8:
                    return E_TRUNCATED
                b = (2 * my) * bx + 2 * mx
                big_blocks(b, bx, quad)
                corner = refs16(recon, r0, c0, mid, top16, left16)
                predict16(m16, top16, left16, corner, pred16)
                if plain:
                    reconstruct16_plain(levels, quad, stepz, zz, offsets, c16, pred16, lo, hi, D, tmp16, rr16, recon,
                                        r0, c0)  # fmt: skip
                else:
                    reconstruct16(levels, quad, stepz, zz, offsets, c16, pred16, lo, hi, D, tmp16, rr16, recon, r0, c0)
                for q in range(4):
                    modes[quad[q]] = m16
                    txc[quad[q]] = 2
                continue
            for q in range(4):
                bi = 2 * my + (q >> 1)
                bj = 2 * mx + (q & 1)
                if bi >= by or bj >= bx:
                    continue
                status = _decode_block(data, end, st, C, T, levels, bi * bx + bj, bx, 8 * bi, 8 * bj, stepz, zz,
                                       offsets, dct, mid, lo, hi, recon, modes, flat_tol, True, dst, txc, True, ext,
                                       fext, pred, tmp, deq, rr, colmask)  # fmt: skip
                if status != OK:
                    return status
    return E_TRUNCATED if st[3] > 0 else OK


@_jit
def block_order(by, bx, big):
    """The coding order of the 8x8 blocks (numbers, raster ``by * bx + bxi``): raster order, or with
    ``big`` format 2.6's (``docs/format.md`` §19): 16x16 macroblocks in raster order, the blocks of
    each in Z order (top-left, top-right, bottom-left, bottom-right; those past the frame left out)."""
    out = np.empty(by * bx, np.int64)
    if not big:
        for b in range(by * bx):
            out[b] = b
        return out
    n = 0
    for my in range((by + 1) // 2):
        for mx in range((bx + 1) // 2):
            for q in range(4):
                bi = 2 * my + (q >> 1)
                bj = 2 * mx + (q & 1)
                if bi < by and bj < bx:
                    out[n] = bi * bx + bj
                    n += 1
    return out


@_helper
def _mb_sse(recon, x, r0, c0):
    """Squared error of the 16x16 samples at (r0, c0)."""
    d = 0.0
    for i in range(16):
        for j in range(16):
            e = np.float64(recon[r0 + i, c0 + j] - x[r0 + i, c0 + j])
            d += e * e
    return d


@_helper
def _big_trial(x, recon, levels, nzs, quad, bx, r0, c0, mid, lo, hi, c16, zz, invz, stepz, offsets, bound, lam,
               rd_mode_lam, sbits, posc, cost, wz, offs_f, lam_rd, mu, rho, tex_sum, xb, sc, rm, rnbk, ra, rrem, rp0,
               rp1, res, tmp, rr, c8, lv8, M, m16, p16):  # fmt: skip
    """Format 2.6's 16x16 candidate of the macroblock at (r0, c0) (blocks ``quad``, Z order) in mode
    ``m16``, its prediction ``p16`` and the coefficients of its residual ``c8`` (:func:`_fdct16`):
    each pseudo-block rounded, then RD-searched in Z order (:func:`_rd_search`, the contexts of the
    8x8 blocks) into ``levels`` / ``nzs``; reconstructed into ``recon`` (:func:`reconstruct16`), back
    to the rounded levels if a sample is off by more than ``bound``. Returns (``SSE + lam (rd_mode_lam
    x modelled rate + sbits + the mode's bits in M)``, 1 if it went back else 0). ``res``, ``tmp``,
    ``rr``: 256 float scratch; ``lv8`` (4 x 64 int)."""
    changed = 0
    for q in range(4):
        for k in range(64):
            c = c8[q, zz[k]]
            lv = np.int64(abs(c) * invz[k] + 0.5)
            lv8[q, k] = -lv if c < 0 else lv
        rq0 = r0 + 8 * (q >> 1)
        cq0 = c0 + 8 * (q & 1)
        for i in range(8):
            for j in range(8):
                xb[8 * i + j] = x[rq0 + i, cq0 + j]
        changed += _rd_search(xb, c8[q], lv8[q], levels, quad[q], bx, nzs, posc, cost, wz, offs_f, lam_rd, mu, rho,
                              tex_sum, zz, invz, sc, rm, rnbk, ra, rrem, rp0, rp1)  # fmt: skip
        nzs[quad[q]] = _nz_count(levels, quad[q])
    reconstruct16(levels, quad, stepz, zz, offsets, c16, p16, lo, hi, res, tmp, rr, recon, r0, c0)
    back = 0
    if changed > 0 and _big_over(recon, x, r0, c0, bound):
        back = 1
        for q in range(4):
            for k in range(64):
                levels[quad[q], k] = lv8[q, k]
            nzs[quad[q]] = _nz_count(levels, quad[q])
        reconstruct16(levels, quad, stepz, zz, offsets, c16, p16, lo, hi, res, tmp, rr, recon, r0, c0)
    rate = 0.0
    for q in range(4):
        rate += _model_rate(levels, quad[q], bx, nzs, posc, cost) + _rest_rate(levels, quad[q], bx)
    mbits = _sym_bits(M, 0, m16, N_MODES16)
    return _mb_sse(recon, x, r0, c0) + lam * (rd_mode_lam * rate + sbits + mbits), back


@_helper
def _other16(x, r0, c0, top16, left16, corner, p16):
    """The one of the 16x16 modes SMOOTH (1) and paeth (2) whose prediction (:func:`predict16`) has
    the lesser SAD against ``x`` at (r0, c0), ties to SMOOTH; ``p16`` (256 int) scratch."""
    best = np.int64(-1)
    m16 = 1
    for m in range(1, N_MODES16):
        predict16(m, top16, left16, corner, p16)
        s = np.int64(0)
        for i in range(16):
            for j in range(16):
                s += abs(x[r0 + i, c0 + j] - p16[16 * i + j])
        if best < 0 or s < best:
            best = s
            m16 = m
    return m16


@_helper
def _fdct16(x, r0, c0, p16, c16, res, tmp, c8):
    """The residual of the prediction ``p16`` at (r0, c0) by the 16-point DCT ``c16`` (dense, f64),
    its coefficients into ``c8`` as four pseudo-blocks in natural order (:func:`dequant16`'s
    layout). ``res``, ``tmp``: 256 float scratch."""
    for i in range(16):
        for j in range(16):
            res[16 * i + j] = np.float64(x[r0 + i, c0 + j] - p16[16 * i + j])
    for u in range(16):  # tmp[u][j] = sum_i C[u][i] res[i][j]
        for j in range(16):
            tmp[16 * u + j] = 0.0
        for i in range(16):
            cu = c16[u, i]
            for j in range(16):
                tmp[16 * u + j] += cu * res[16 * i + j]
    for u in range(16):  # coef[u][v] = sum_j tmp[u][j] C[v][j], into the pseudo-blocks (natural order)
        for v in range(16):
            a = 0.0
            for j in range(16):
                a += tmp[16 * u + j] * c16[v, j]
            c8[2 * (u & 1) + (v & 1), 8 * (u >> 1) + (v >> 1)] = a


@_helper
def _est16(c8, zz, invz, stepz, lam, mbits):
    """A 16x16 candidate's ``J`` estimate from its coefficients ``c8`` (:func:`_fdct16`): the squared
    error of their rounded levels (transform domain) + ``lam`` x (:func:`_static_bits`' estimate +
    ``mbits``)."""
    d = 0.0
    nb = np.int64(0)
    for q in range(4):
        for k in range(64):
            c = abs(c8[q, zz[k]])
            lv = np.int64(c * invz[k] + 0.5)
            e = c - lv * stepz[k]
            d += e * e
            if lv > 0:
                nb += 2 + 2 * _bitlen(lv)
    return d + lam * (np.float64(nb) + mbits)


@_helper
def _nz_count(levels, b):
    """Non-zero AC levels of block ``b``."""
    n = np.int64(0)
    for k in range(1, 64):
        if levels[b, k] != 0:
            n += 1
    return n


@_helper
def _big_over(recon, x, r0, c0, bound):
    """Some sample of the 16x16 block at (r0, c0) of ``recon`` is off ``x`` by more than ``bound``."""
    for i in range(16):
        for j in range(16):
            if abs(np.float64(recon[r0 + i, c0 + j] - x[r0 + i, c0 + j])) > bound:
                return True
    return False
