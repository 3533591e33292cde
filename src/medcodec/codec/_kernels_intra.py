"""Numba kernels of 8x8 intra prediction (``.mdc`` format 2.2, ``docs/format.md`` §14).

Integer prediction of an 8x8 block from its reconstructed neighbours (16 modes: DC, AV1 SMOOTH,
paeth, vertical, horizontal and 11 oblique angles at HEVC displacements; the oblique ones from
[1, 2, 1]-smoothed references), a residual DCT-coded with the frame's quantization steps, and the
reconstruction loop shared by the encoder and the decoder, so the encoder's reconstruction is the
decoder's output bit for bit. :mod:`.intra` wraps them; its docstring states the equations, and
``tests/codec/test_intra.py`` checks the predictor against a plain NumPy twin.
"""

from __future__ import annotations

import numba
import numpy as np

from ._kernels_ms import _dec_start, _dec_sym, _enc_sym
from ._kernels_v2 import E_OVERFLOW, E_RANGE, E_TRUNCATED, OK, _bitlen, _enc_flush, _enc_init

_jit = numba.njit(cache=True, nogil=True)
_helper = numba.njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]

N_MODES = 16
#: Oblique and straight modes 3..15 as (family, A): family 1 predicts from the row above, 0 from the
#: column to the left; A is the displacement in 1/32 sample per row (column) away from the line.
ANGULAR = np.array([(1, 0), (0, 0), (1, 32), (1, -32), (1, -21), (1, -9), (1, 9), (1, 21),
                    (0, -21), (0, -9), (0, 9), (0, 21), (0, 32)], dtype=np.int64)  # fmt: skip
#: Modes from this one on predict from the smoothed references.
FIRST_SMOOTHED = 5
#: AV1 SMOOTH weights of an 8-sample block, in 1/256.
SMOOTH_W = np.array([255, 197, 146, 105, 73, 50, 37, 32], dtype=np.int64)
#: Modes the encoder tests fully (DCT, quantization, reconstruction) after ranking all by SAD.
N_FULL = 3
#: The encoder's estimate of a mode's bits: the context's mode again, or another one.
MODE_BITS_SAME = 1.0
MODE_BITS_OTHER = 4.5
#: Context rows of the mode model: the left neighbour's mode (16 rows of 16 int16 entries).
MODE_MODEL_SIZE = N_MODES * N_MODES


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
                base = top[j] + left[i] - corner
                pt = abs(base - top[j])
                pl = abs(base - left[i])
                pc = abs(base - corner)
                if pl <= pt and pl <= pc:
                    out[i, j] = left[i]
                elif pt <= pc:
                    out[i, j] = top[j]
                else:
                    out[i, j] = corner
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
def _forward(res, dct, tmp, coef):
    """coef = dct @ res @ dct.T (explicit loops, fixed order)."""
    for i in range(8):
        for j in range(8):
            s = 0.0
            for k in range(8):
                s += dct[i, k] * res[k, j]
            tmp[i, j] = s
    for i in range(8):
        for j in range(8):
            s = 0.0
            for k in range(8):
                s += tmp[i, k] * dct[j, k]
            coef[i, j] = s


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


@_jit
def encode_intra(x, steps, zz, offsets, dct, lam, mid, lo, hi, levels, modes, recon):
    """Raster-order intra coding of x (int64, rows and cols multiples of 8): fills levels (nblocks,
    64, zigzag, int32), modes (nblocks) and recon (int64, the decoder's output). Every mode is
    ranked by the SAD of its prediction; the N_FULL best are DCT-coded and the one of least
    ``SSE + lam * bits`` kept (bits: a static estimate, 2 + 2 bit_length(|l|) a non-zero level, plus the
    mode's: :data:`MODE_BITS_SAME` or :data:`MODE_BITS_OTHER`)."""
    rows, cols = x.shape
    bx = cols // 8
    top = np.empty(16, np.int64)
    left = np.empty(16, np.int64)
    ftop = np.empty(16, np.int64)
    fleft = np.empty(16, np.int64)
    pred = np.empty((8, 8), np.int64)
    res = np.empty((8, 8))
    tmp = np.empty((8, 8))
    coef = np.empty((8, 8))
    deq = np.empty((8, 8))
    rr = np.empty((8, 8))
    sad = np.empty(N_MODES, np.int64)
    lvz = np.empty(64, np.int64)
    best_lv = np.empty(64, np.int64)
    for by in range(rows // 8):
        for bxi in range(bx):
            r0 = by * 8
            c0 = bxi * 8
            b = by * bx + bxi
            corner = refs(recon, r0, c0, mid, top, left)
            fcorner = smooth_refs(top, left, corner, ftop, fleft)
            for m in range(N_MODES):
                predict_mode(m, top, left, corner, ftop, fleft, fcorner, pred)
                s = np.int64(0)
                for i in range(8):
                    for j in range(8):
                        s += abs(x[r0 + i, c0 + j] - pred[i, j])
                sad[m] = s
            order = np.argsort(sad, kind="mergesort")
            ctx = _mode_ctx(modes, b, bx)
            best_j = np.inf
            best_m = 0
            for t in range(N_FULL + 1):
                m = order[t] if t < N_FULL else ctx  # the context's mode is always tested
                if t == N_FULL:
                    for u in range(N_FULL):
                        if order[u] == ctx:
                            m = -1
                    if m < 0:
                        break
                predict_mode(m, top, left, corner, ftop, fleft, fcorner, pred)
                for i in range(8):
                    for j in range(8):
                        res[i, j] = x[r0 + i, c0 + j] - pred[i, j]
                _forward(res, dct, tmp, coef)
                d = 0.0
                bits = MODE_BITS_SAME if m == ctx else MODE_BITS_OTHER
                for k in range(64):
                    p = zz[k]
                    st = steps[p // 8, p % 8]
                    c = coef[p // 8, p % 8]
                    lv = np.int64(np.floor(abs(c) / st + 0.5))
                    if c < 0:
                        lv = -lv
                    lvz[k] = lv
                    if lv != 0:
                        q = 256 * lv - offsets[k] if lv > 0 else 256 * lv + offsets[k]
                        e = c - q * st / 256.0
                        bits += 2.0 + 2.0 * _bitlen(abs(lv))  # integers: the same choice with and without JIT
                    else:
                        e = c
                    d += e * e
                jc = d + lam * bits
                if jc < best_j:
                    best_j = jc
                    best_m = m
                    best_lv[:] = lvz
            predict_mode(best_m, top, left, corner, ftop, fleft, fcorner, pred)
            reconstruct_block(best_lv, steps, zz, offsets, dct, pred, lo, hi, deq, tmp, rr, recon, r0, c0)
            for k in range(64):
                levels[b, k] = best_lv[k]
            modes[b] = best_m


@_jit
def decode_intra(levels, modes, steps, zz, offsets, dct, mid, lo, hi, recon):
    """The decoder's loop: prediction + residual block by block into recon (int64); returns the
    number of the first block whose mode is out of range, or -1."""
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
