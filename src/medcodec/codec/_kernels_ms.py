"""numba kernels of ``.mdc`` 2.1: the multi-symbol adaptive range coder of DCT levels (entropy coder 2).

``docs/format.md`` §13 specifies every step. The binary coder of 2.0 (:mod:`._kernels_v2`,
§11-12) spends a zero flag, a sign, a unary bit length and the bits under the leading one on
every coefficient: ~5-9 binary decisions per non-zero level. Here a coefficient costs one
adaptive 4-ary symbol (0, 1, 2, >= 3) and a raw sign, as AV1's multi-symbol coder does
(``coeff_base`` / ``coeff_br``); magnitudes of 3 and more add 4-ary continuation symbols:

* **Range coder**: the byte output and renormalisation of the 2.0 coder (LZMA-style, 32-bit
  range kept >= 2^24, a cache byte for the carry; :func:`._kernels_v2._shift_low`). A symbol
  ``s`` with cumulative frequencies ``c[s] .. c[s+1]`` (15-bit, ``c[n] = 32768``) narrows the
  range to ``[r c[s], r c[s+1])`` with ``r = range >> 15``; the sliver above ``r * 32768`` is
  never used (a decoder that lands there has corrupt data). Raw bits (signs, mantissas) take
  ``range >> nbits`` per value.
* **Adaptation** (per context, after each symbol): every ``c[i]`` moves toward the target
  ``i * FLOOR`` (``i <= s``) or ``32768 - (n - i) * FLOOR`` (``i > s``) by ``(t - c[i]) >> rate``
  (floor), ``rate`` from the context's count (:data:`RATE`: 1/2 at first, 1/128 after 63
  symbols). Every symbol keeps a frequency of at least :data:`FLOOR` (the exact update is a
  convex mix of two CDFs with that floor and flooring both ends loses less than one unit), so
  no symbol ever has zero width and none costs more than 13 bits.
* **Block syntax**: as 2.0 (§12.2) with symbols: the non-zero count (16-ary ``min(nz, 15)``
  under the neighbours' counts, then an escape), the DC difference's bit length (16-ary) with
  the bit under its leading one adaptive and the rest raw, and per AC position until the count
  is used up a 4-ary base symbol under (position, remaining count, neighbours' magnitudes),
  up to four 4-ary continuations under (band, neighbours), an escape for magnitudes >= 15, and
  a raw sign.
* **Format 2.11** (§21, ``within=True``; the levels of 2.6's intra frames): the same symbols, the
  neighbours' magnitude of the base and continuation contexts also summing the block's own levels
  above and left of the coefficient (:func:`_neighbour_bucket`), 9 buckets instead of 7.

The decoder keeps its state in local scalars (no per-symbol Python, no state arrays); it reads
nothing outside ``data[start:end]`` (zeros past the end, counted: truncation), caps every loop
and rejects a code value outside the current range (:data:`E_RANGE`). Twin: the binary coder
codes the same levels; the tests check ``levels in == levels out`` against it on real frames
and on random and extreme levels (``tests/codec/test_mdc_multi.py``).
"""

from __future__ import annotations

import numba
import numpy as np

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
    _shift_low,
)

_jit = numba.njit(cache=True, nogil=True)
_helper = numba.njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
#: Inlined at numba IR level (the encoder's helpers: measured 1.3x faster than LLVM's choice).
_inline = numba.njit(cache=True, nogil=True, _nrt=False, inline="always")  # type: ignore[call-overload]

__all__ = ["encode_coefficients_ms", "decode_coefficients_ms", "encode_with_model", "decode_with_model",
           "starting_model", "N_MCTX", "FLOOR", "RATE", "OK", "E_OVERFLOW",
           "E_RANGE", "E_TRUNCATED"]  # fmt: skip

CDF_BITS = 15
CDF_ONE = 1 << CDF_BITS
#: Smallest frequency of any symbol (in 1/32768): a symbol costs at most 13 bits, and the
#: likeliest of a 4-ary alphabet at least -log2(1 - 3 * 4 / 32768) = 0.00053 bit (16-ary: 0.0026).
FLOOR = 4
#: Count after which a context adapts at its slowest rate (1/128).
COUNT_MAX = 127
#: Adaptation shift by the context's symbol count n: bit_length(n + 1), at most 7.
RATE = np.array([min(7, (n + 1).bit_length()) for n in range(COUNT_MAX + 1)], dtype=np.int64)

NZ_BUCKETS = 10
NBR_BUCKETS = 7
REM_BUCKETS = 6
N_BANDS = 15  # POS_BAND of zigzag positions 1..63
BASE_MAX = 3  # AC base symbol: 0, 1, 2, >= 3
BR_STEPS = 4  # AC continuation symbols (each adds 0..3; 3 continues): magnitudes up to 14
ESC = 15  # magnitudes >= ESC and DC bit lengths >= ESC take an escape

M_NZ = 0  # 10 neighbour-count buckets, 16-ary: min(nz, 15)
M_NZH = M_NZ + NZ_BUCKETS  # 1 context, 16-ary: (nz - 15) >> 2 (0..12)
M_NZL = M_NZH + 1  # 1 context, 4-ary: (nz - 15) & 3
M_DC = M_NZL + 1  # 12 DC activity buckets, 16-ary: bit length of |DC difference| (15: escape)
M_BASE = M_DC + 12  # (position class, remaining, neighbours) 64 x 6 x 7, 4-ary: min(|level|, 3)
M_BR = M_BASE + 64 * REM_BUCKETS * NBR_BUCKETS  # (band, neighbours) 15 x 7, 4-ary: min(rest, 3)
M_ESC = M_BR + N_BANDS * NBR_BUCKETS  # 15 bands, 16-ary: bit length of |level| - 15 (15: escape)
M_DCM = M_ESC + N_BANDS  # DC bit length 2..23 (as 0..21), 2-ary: the bit under the leading one
N_MCTX = M_DCM + 22
#: Alphabet size of every context.
ALPHABET = np.array(
    [16] * NZ_BUCKETS + [16, 4] + [16] * 12 + [4] * (64 * REM_BUCKETS * NBR_BUCKETS)
    + [4] * (N_BANDS * NBR_BUCKETS) + [16] * N_BANDS + [2] * 22,
    dtype=np.int64,
)  # fmt: skip
#: Bit lengths beyond the escape symbol: 3 raw bits, so at most 15 + 7 = 22.
MAX_ESC_BITS = 22


#: _rem_bucket and _nbr_bucket of :mod:`._kernels_v2` as tables (remaining count 0..63,
#: neighbours' magnitude sum capped at 21).
REM_LUT = np.array([0, 0, 1, 2, 2] + [3] * 4 + [4] * 8 + [5] * 47, dtype=np.int64)
NBR_LUT = np.array([0, 1, 2, 3, 3] + [4] * 4 + [5] * 12 + [6], dtype=np.int64)


#: Starting CDF of the AC base contexts: probabilities 1/2, 3/10, 1/10, 1/10 for 0, 1, 2, >= 3.
BASE_INIT = (0, 16384, 26214, 29491)
#: Frames of at least this many blocks (~724 x 724 samples) give the AC base symbol a context
#: per zigzag position; smaller ones one per band (:data:`POS_BAND`): per position is 0.5-3.5 %
#: smaller on 1024 x 1024 MR and 1760 x 1760 CR, but 1-5 % larger on 64 x 64 to 512 x 512 frames.
FINE_POSITION_BLOCKS = 8192
#: Zigzag position -> itself (the position class of large frames).
POS_FINE = np.arange(64, dtype=np.int64)


#: Where each context's row starts in the flat table (rows of ``n`` int16 entries: the count in
#: slot 0, then ``c[1] .. c[n-1]``; ``c[0] = 0`` and ``c[n] = 32768`` are implicit): 23.6 KB in all.
OFFSET = np.concatenate([[0], np.cumsum(ALPHABET)]).astype(np.int64)
O_NZ, O_NZH, O_NZL, O_DC = (int(OFFSET[m]) for m in (M_NZ, M_NZH, M_NZL, M_DC))
O_BASE, O_BR, O_ESC, O_DCM = (int(OFFSET[m]) for m in (M_BASE, M_BR, M_ESC, M_DCM))

# Format 2.11 (docs/format.md §21): the levels of a 2.6 intra frame. The AC base and continuation
# contexts also see the block's own levels already coded: the neighbour sum of position k becomes
# ``(2 (|left block's l_k| + |above block's l_k|) + 2 (|l_up| + |l_left|) + |l_upleft| + |l_up2| +
# |l_left2| + 1) >> 1`` over the natural-order neighbours of k in the same block (rows / columns
# -1 and -2; all on earlier anti-diagonals, so coded before k in zigzag order), in NBR_BUCKETS_W
# buckets. Chosen on the training images (../shared/data, 8 images x 5 qualities): the levels
# 0.6-3.3 % smaller than 2.6's contexts (docs/design-notes.md, "Within-block contexts").
NBR_BUCKETS_W = 9
#: the 2.11 neighbour sum (capped at 50) -> bucket
NBR_LUT_W = np.array([0, 1, 2, 3, 3, 4, 4, 4] + [5] * 5 + [6] * 13 + [7] * 24 + [8], dtype=np.int64)
NSUM_CAP_W = NBR_LUT_W.shape[0] - 1
M_BR_W = M_BASE + 64 * REM_BUCKETS * NBR_BUCKETS_W
ALPHABET_W = np.concatenate([ALPHABET[:M_BASE], [4] * (64 * REM_BUCKETS * NBR_BUCKETS_W),
                             [4] * (N_BANDS * NBR_BUCKETS_W), ALPHABET[M_ESC:]]).astype(np.int64)  # fmt: skip
OFFSET_W = np.concatenate([[0], np.cumsum(ALPHABET_W)]).astype(np.int64)
O_BR_W = int(OFFSET_W[M_BR_W])
O_ESC_W = int(OFFSET_W[M_BR_W + N_BANDS * NBR_BUCKETS_W])
O_DCM_W = O_ESC_W + 16 * N_BANDS
#: 2.11's AC base contexts start per neighbour bucket (``c[1..3]`` of ``0, 1, 2, >= 3``; a base
#: context's bucket is ``(ctx - M_BASE) mod 9``): the bucket's symbol frequencies on the training
#: images (../shared/data, the default's levels at qualities 20-88, each frequency at least 64/32768),
#: so a context starts near what it will learn; 0.0-0.6 % fewer level bytes than all starting at
#: :data:`BASE_INIT` over qualities 20-88 (docs/design-notes.md "Within-block contexts";
#: ``benchmarks/compare_level_contexts.py --starts`` derives it from the encoder of the day, which
#: since the near-flat table codes other levels: a close table, not this one, which the format fixes).
BASE_INIT_W = (
    (0, 27107, 32607, 32704),
    (0, 24017, 32370, 32703),
    (0, 21125, 31785, 32576),
    (0, 17129, 30172, 32150),
    (0, 11903, 26031, 30473),
    (0, 7825, 19770, 26173),
    (0, 4570, 12554, 18501),
    (0, 2423, 6894, 10776),
    (0, 1211, 3403, 5434),
)


def _within_neighbours() -> tuple[np.ndarray, np.ndarray]:
    """(index, weight), each (5, 64): per zigzag position k, the zigzag positions of its natural-order
    neighbours in the block (up, left, up-left, two up, two left) and their weights in the 2.11 sum
    (2, 2, 1, 1, 1); a neighbour outside the block has index 0 and weight 0 (no branch in the kernels)."""
    from .zigzag import UNZIGZAG, ZIGZAG

    index = np.zeros((5, 64), dtype=np.int64)
    weight = np.zeros((5, 64), dtype=np.int64)
    for k in range(64):
        r, c = divmod(int(ZIGZAG[k]), 8)
        for j, (dr, dc) in enumerate(((1, 0), (0, 1), (1, 1), (2, 0), (0, 2))):
            if r >= dr and c >= dc:
                index[j, k] = UNZIGZAG[(r - dr) * 8 + c - dc]
                weight[j, k] = 2 if j < 2 else 1
    return index, weight


#: :func:`_within_neighbours`: where 2.11's neighbour sum looks inside the block, and how much each counts
WITHIN, WITHIN_WEIGHT = _within_neighbours()


def initial_model(within: bool = False) -> np.ndarray:
    """Fresh contexts (flat, :data:`OFFSET`, or :data:`OFFSET_W` for format 2.11's levels): the AC
    base contexts :data:`BASE_INIT` (2.11: :data:`BASE_INIT_W` by neighbour bucket), every other
    context uniform, ``c[i] = i * 32768 // n`` (floor); counts 0."""
    alphabet, offset, m_br = (ALPHABET_W, OFFSET_W, M_BR_W) if within else (ALPHABET, OFFSET, M_BR)
    model = np.zeros(int(offset[-1]), dtype=np.int16)
    for ctx in range(alphabet.shape[0]):
        n, base = int(alphabet[ctx]), int(offset[ctx])
        cdf: tuple[int, ...]
        if M_BASE <= ctx < m_br:
            cdf = BASE_INIT_W[(ctx - M_BASE) % NBR_BUCKETS_W] if within else BASE_INIT
        else:
            cdf = tuple(i * CDF_ONE // n for i in range(n))
        model[base + 1 : base + n] = cdf[1:]
    return model


INITIAL_MODEL = initial_model()
INITIAL_MODEL_W = initial_model(within=True)


def trained_model() -> np.ndarray:
    """Format 2.12's starting table (``docs/format.md`` §22): every context of 2.11's layout at the
    distribution and count the training images taught it (:mod:`._level_starts`, made by
    ``benchmarks/train_level_starts.py``), checked against its SHA-256."""
    import base64
    import hashlib
    import zlib

    from ._level_starts import SHA256, STARTS

    raw = zlib.decompress(base64.b64decode("".join(STARTS)))
    if hashlib.sha256(raw).hexdigest() != SHA256 or len(raw) != 2 * INITIAL_MODEL_W.size:
        raise ImportError("medcodec.codec._level_starts is damaged: its table does not match its SHA-256")
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def fine_model(model: np.ndarray) -> np.ndarray:
    """``model`` (2.11's layout, position classes of :data:`POS_BAND`) for frames of
    :data:`FINE_POSITION_BLOCKS` or more blocks, whose AC base contexts have a position class per zigzag
    position: position ``k``'s rows are those of its band ``POS_BAND[k]``."""
    out = model.copy()
    rows = REM_BUCKETS * NBR_BUCKETS_W  # a position class's base contexts, consecutive rows of 4 entries
    for k in range(64):
        dst = int(OFFSET_W[M_BASE + k * rows])
        src = int(OFFSET_W[M_BASE + int(POS_BAND[k]) * rows])
        out[dst : dst + 4 * rows] = model[src : src + 4 * rows]
    return out


#: Format 2.12's trained starts (frames under :data:`FINE_POSITION_BLOCKS` blocks, and the others).
TRAINED_MODEL = trained_model()
TRAINED_MODEL_FINE = fine_model(TRAINED_MODEL)
TRAINED_MODEL.flags.writeable = False  # part of the format: kernels get copies (starting_model)
TRAINED_MODEL_FINE.flags.writeable = False


@_inline
def _neighbour_bucket(levels, i, k, bx, has_left, has_up, within):
    """Bucket of position ``k``'s neighbour sum in block ``i``: the left and above blocks' levels at
    ``k`` (format 2.1, :data:`NBR_LUT`), with ``within`` (2.11) also the block's own earlier levels
    (:data:`WITHIN`, :data:`NBR_LUT_W`)."""
    nsum = np.int64(0)
    if has_left:
        nsum += abs(np.int64(levels[i - 1, k]))
    if has_up:
        nsum += abs(np.int64(levels[i - bx, k]))
    if not within:
        return NBR_LUT[min(nsum, np.int64(21))]
    acc = 2 * nsum + WITHIN_WEIGHT[0, k] * abs(np.int64(levels[i, WITHIN[0, k]]))
    acc += WITHIN_WEIGHT[1, k] * abs(np.int64(levels[i, WITHIN[1, k]]))
    acc += WITHIN_WEIGHT[2, k] * abs(np.int64(levels[i, WITHIN[2, k]]))
    acc += WITHIN_WEIGHT[3, k] * abs(np.int64(levels[i, WITHIN[3, k]]))
    acc += WITHIN_WEIGHT[4, k] * abs(np.int64(levels[i, WITHIN[4, k]]))
    return NBR_LUT_W[min((acc + 1) >> 1, np.int64(NSUM_CAP_W))]


@_helper
def _adapt(C, base, s, n):
    """Move the CDF of the context at ``base`` toward symbol ``s`` (n: alphabet size, a constant
    at each call site); its count (slot 0) sets the rate."""
    cnt = np.int64(C[base])
    rate = RATE[cnt]
    for i in range(1, n):
        c = np.int64(C[base + i])
        t = i * FLOOR + ((CDF_ONE - n * FLOOR) if i > s else 0)
        C[base + i] = c + ((t - c) >> rate)
    if cnt < COUNT_MAX:
        C[base] = cnt + 1


# ----------------------------------------------------------------------------- encoder


@_inline
def _enc_sym(st, out, C, base, s, n):
    """Symbol ``s`` of the n-ary context whose row starts at ``base``."""
    rs = st[1] >> CDF_BITS
    lo = rs * np.int64(C[base + s]) if s > 0 else np.int64(0)
    rng = (rs << CDF_BITS if s == n - 1 else rs * np.int64(C[base + s + 1])) - lo
    st[0] += lo
    _adapt(C, base, s, n)
    while rng < 0x1000000:
        rng <<= 8
        _shift_low(st, out)
    st[1] = rng


@_inline
def _enc_raw(st, out, v, nbits):
    """``nbits`` (0..16) raw bits of v: the range shrinks by 2**nbits."""
    if nbits == 0:
        return
    rs = st[1] >> nbits
    st[0] += rs * v
    rng = rs
    while rng < 0x1000000:
        rng <<= 8
        _shift_low(st, out)
    st[1] = rng


@_inline
def _enc_bits(st, out, v, nbits):
    """Up to 32 raw bits, most significant chunk first (chunks of at most 16)."""
    if nbits > 16:
        _enc_raw(st, out, v >> 16, nbits - 16)
        _enc_raw(st, out, v & 0xFFFF, 16)
    else:
        _enc_raw(st, out, v, nbits)


@_helper
def _layout(within):
    """Where the context table puts its neighbour-dependent rows: (neighbour buckets, BR / ESC / DCM
    offsets), format 2.1's or with ``within`` 2.11's (also 2.12's)."""
    if within:
        return NBR_BUCKETS_W, O_BR_W, O_ESC_W, O_DCM_W
    return NBR_BUCKETS, O_BR, O_ESC, O_DCM


def starting_model(within: bool, trained: bool, fine: bool) -> np.ndarray:
    """A fresh copy of the context table a frame starts with: format 2.1's, with ``within`` 2.11's;
    ``trained`` (2.12, 2.11's layout): :data:`TRAINED_MODEL` (``fine``, a frame of
    :data:`FINE_POSITION_BLOCKS` or more blocks: :data:`TRAINED_MODEL_FINE`). Passed to the kernels,
    not read by them as a global: numba would bake a global array into its cached code, and the
    cache does not see :mod:`._level_starts` change."""
    if trained:
        return (TRAINED_MODEL_FINE if fine else TRAINED_MODEL).copy()
    return (INITIAL_MODEL_W if within else INITIAL_MODEL).copy()


def encode_coefficients_ms(levels: np.ndarray, bx: int, out: np.ndarray, within: bool = False,
                           trained: bool = False) -> tuple[int, int]:  # fmt: skip
    """Code (nblocks, 64) zigzag levels, ``bx`` blocks per row (``within``: format 2.11's contexts,
    :func:`_neighbour_bucket`; ``trained``: from 2.12's trained starts); returns (status, nbytes)."""
    model = starting_model(within, trained, levels.shape[0] >= FINE_POSITION_BLOCKS)
    status, n = encode_with_model(levels, bx, out, within, model)
    return int(status), int(n)


@_jit
def encode_with_model(levels, bx, out, within, C):
    """:func:`encode_coefficients_ms` from the context table ``C`` (the layout ``within`` says),
    which it adapts in place: what ``benchmarks/train_level_starts.py`` reads the learnt
    distributions from. Returns (status, nbytes)."""
    nblocks = levels.shape[0]
    nbb, o_br, o_esc, o_dcm = _layout(within)
    posc = POS_FINE if nblocks >= FINE_POSITION_BLOCKS else POS_BAND
    nzs = np.zeros(nblocks, dtype=np.int64)
    st = np.zeros(6, dtype=np.int64)
    _enc_init(st)
    for i in range(nblocks):
        nz = np.int64(0)
        for k in range(1, 64):
            if levels[i, k] != 0:
                nz += 1
        nzs[i] = nz
        _enc_sym(st, out, C, O_NZ + 16 * _nz_ctx(nzs, i, bx), min(nz, 15), 16)
        if nz >= 15:
            _enc_sym(st, out, C, O_NZH, (nz - 15) >> 2, 16)
            _enc_sym(st, out, C, O_NZL, (nz - 15) & 3, 4)
        # DC: bit length of the difference to the MED prediction, then sign and mantissa raw
        pred, dact = _dc_context(levels, i, bx)
        r = np.int64(levels[i, 0]) - pred
        a = abs(r)
        nb = _bitlen(a)
        if nb > MAX_ESC_BITS:
            return E_RANGE, 0
        _enc_sym(st, out, C, O_DC + 16 * dact, min(nb, ESC), 16)
        if nb >= ESC:
            _enc_raw(st, out, nb - ESC, 3)
        if nb > 0:
            _enc_raw(st, out, 1 if r < 0 else 0, 1)
            if nb >= 2:
                _enc_sym(st, out, C, o_dcm + 2 * (nb - 2), (a >> (nb - 2)) & 1, 2)
                _enc_bits(st, out, a & ((np.int64(1) << (nb - 2)) - 1), nb - 2)
        # AC
        has_left = i % bx > 0
        has_up = i >= bx
        rem = nz
        k = 1
        while rem > 0:
            v = np.int64(levels[i, k])
            m = abs(v)
            band = POS_BAND[k]
            nbk = _neighbour_bucket(levels, i, k, bx, has_left, has_up, within)
            ctx = O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem]) * nbb + nbk)
            _enc_sym(st, out, C, ctx, min(m, BASE_MAX), 4)
            if m != 0:
                if m >= BASE_MAX:
                    brc = o_br + 4 * (band * nbb + nbk)
                    left = m - BASE_MAX
                    j = 0
                    while j < BR_STEPS:
                        _enc_sym(st, out, C, brc, min(left, 3), 4)
                        if left < 3:
                            break
                        left -= 3
                        j += 1
                    if j == BR_STEPS:  # m >= 15
                        g = _bitlen(left)
                        if g > MAX_ESC_BITS:
                            return E_RANGE, 0
                        _enc_sym(st, out, C, o_esc + 16 * band, min(g, ESC), 16)
                        if g >= ESC:
                            _enc_raw(st, out, g - ESC, 3)
                        if g > 1:
                            _enc_bits(st, out, left - (np.int64(1) << (g - 1)), g - 1)
                _enc_raw(st, out, 1 if v < 0 else 0, 1)
                rem -= 1
            k += 1
    _enc_flush(st, out)
    if st[5]:
        return E_OVERFLOW, 0
    return OK, st[4]


# ----------------------------------------------------------------------------- decoder


@_helper
def _dec_start(data, start, end):
    """The decoder's state on the first five bytes of data[start:end]: (code, range, pos, past)
    (bytes past ``end`` read as zero and counted in ``past``)."""
    code = np.int64(0)
    rng = np.int64(0xFFFFFFFF)
    pos = np.int64(start)
    past = np.int64(0)
    for _ in range(5):
        if pos < end:
            code = ((code << 8) | np.int64(data[pos])) & 0xFFFFFFFF
        else:
            code = (code << 8) & 0xFFFFFFFF
            past += 1
        pos += 1
    return code, rng, pos, past


@_helper
def _fill(code, rng, pos, past, data, end):
    while rng < 0x1000000:
        rng <<= 8
        if pos < end:
            code = (code << 8) | np.int64(data[pos])
        else:
            code = code << 8
            past += 1
        pos += 1
    return code, rng, pos, past


@_helper
def _dec_sym(code, rng, pos, past, data, end, C, base, n):
    """(symbol of the n-ary context at ``base`` or -1 on a code value outside the range, code,
    range, pos, past)."""
    rs = rng >> CDF_BITS
    top = rs << CDF_BITS
    if code >= top:
        return -1, code, rng, pos, past
    s = 0
    lo = np.int64(0)
    hi = rs * np.int64(C[base + 1])
    while code >= hi:
        s += 1
        lo = hi
        hi = top if s == n - 1 else rs * np.int64(C[base + s + 1])
    code -= lo
    rng = hi - lo
    _adapt(C, base, s, n)
    code, rng, pos, past = _fill(code, rng, pos, past, data, end)
    return s, code, rng, pos, past


@_helper
def _dec_raw(code, rng, pos, past, data, end, nbits):
    """(value or -1 if the code lies beyond the used range, code, range, pos, past)."""
    if nbits == 0:
        return np.int64(0), code, rng, pos, past
    rs = rng >> nbits
    if nbits == 1:  # a sign: no division (what v >> 1 != 0 rejects below, code >= 2 rs, checked here)
        if code >= rs << 1:
            return np.int64(-1), code, rng, pos, past
        v = np.int64(1) if code >= rs else np.int64(0)
    else:
        v = code // rs
    if v >> nbits:
        return np.int64(-1), code, rng, pos, past
    code -= v * rs
    code, rng, pos, past = _fill(code, rs, pos, past, data, end)
    return v, code, rng, pos, past


@_helper
def _dec_bits(code, rng, pos, past, data, end, nbits):
    if nbits > 16:
        hi, code, rng, pos, past = _dec_raw(code, rng, pos, past, data, end, nbits - 16)
        lo, code, rng, pos, past = _dec_raw(code, rng, pos, past, data, end, 16)
        if hi < 0 or lo < 0:
            return np.int64(-1), code, rng, pos, past
        return (hi << 16) | lo, code, rng, pos, past
    return _dec_raw(code, rng, pos, past, data, end, nbits)


def decode_coefficients_ms(data: np.ndarray, start: int, end: int, bx: int, levels: np.ndarray, within: bool = False,
                           trained: bool = False) -> int:  # fmt: skip
    """Decode into ``levels`` (nblocks, 64) int32, zeroed by the caller (``within``: format 2.11's
    contexts; ``trained``: from 2.12's trained starts); returns status."""
    model = starting_model(within, trained, levels.shape[0] >= FINE_POSITION_BLOCKS)
    return int(decode_with_model(data, start, end, bx, levels, within, model))


@_jit
def decode_with_model(data, start, end, bx, levels, within, C):
    """:func:`decode_coefficients_ms` from the context table ``C`` (the layout ``within`` says)."""
    nblocks = levels.shape[0]
    nbb, o_br, o_esc, o_dcm = _layout(within)
    posc = POS_FINE if nblocks >= FINE_POSITION_BLOCKS else POS_BAND
    nzs = np.zeros(nblocks, dtype=np.int64)
    code, rng, pos, past = _dec_start(data, start, end)
    for i in range(nblocks):
        nz, code, rng, pos, past = _dec_sym(code, rng, pos, past, data, end, C, O_NZ + 16 * _nz_ctx(nzs, i, bx), 16)
        if nz < 0:
            return E_TRUNCATED if past > 0 else E_RANGE
        if nz == 15:
            hi4, code, rng, pos, past = _dec_sym(code, rng, pos, past, data, end, C, O_NZH, 16)
            lo2, code, rng, pos, past = _dec_sym(code, rng, pos, past, data, end, C, O_NZL, 4)
            if hi4 < 0 or lo2 < 0:
                return E_TRUNCATED if past > 0 else E_RANGE
            nz = 15 + 4 * hi4 + lo2
            if nz > 63:
                return E_TRUNCATED if past > 0 else E_RANGE
        nzs[i] = nz
        pred, dact = _dc_context(levels, i, bx)
        nb, code, rng, pos, past = _dec_sym(code, rng, pos, past, data, end, C, O_DC + 16 * dact, 16)
        if nb < 0:
            return E_TRUNCATED if past > 0 else E_RANGE
        if nb >= ESC:
            x, code, rng, pos, past = _dec_raw(code, rng, pos, past, data, end, 3)
            if x < 0:
                return E_TRUNCATED if past > 0 else E_RANGE
            nb = ESC + x
        r = np.int64(0)
        if nb > 0:
            neg, code, rng, pos, past = _dec_raw(code, rng, pos, past, data, end, 1)
            r = np.int64(1)
            if nb >= 2:
                top, code, rng, pos, past = _dec_sym(code, rng, pos, past, data, end, C, o_dcm + 2 * (nb - 2), 2)
                mant, code, rng, pos, past = _dec_bits(code, rng, pos, past, data, end, nb - 2)
                if neg < 0 or top < 0 or mant < 0:
                    return E_TRUNCATED if past > 0 else E_RANGE
                r = ((np.int64(2) | top) << (nb - 2)) + mant
            elif neg < 0:
                return E_TRUNCATED if past > 0 else E_RANGE
            if neg:
                r = -r
        dc = pred + r
        if dc > 0x3FFFFFFF or dc < -0x3FFFFFFF:  # corrupt data: keep int32 arithmetic sane
            return E_TRUNCATED if past > 0 else E_RANGE
        levels[i, 0] = dc
        has_left = i % bx > 0
        has_up = i >= bx
        rem = nz
        k = 1
        while rem > 0:
            if k > 63:
                return E_TRUNCATED if past > 0 else E_RANGE
            band = POS_BAND[k]
            nbk = _neighbour_bucket(levels, i, k, bx, has_left, has_up, within)
            ctx = O_BASE + 4 * ((posc[k] * REM_BUCKETS + REM_LUT[rem]) * nbb + nbk)
            m, code, rng, pos, past = _dec_sym(code, rng, pos, past, data, end, C, ctx, 4)
            if m < 0:
                return E_TRUNCATED if past > 0 else E_RANGE
            if m != 0:
                if m == BASE_MAX:
                    brc = o_br + 4 * (band * nbb + nbk)
                    j = 0
                    while j < BR_STEPS:
                        br, code, rng, pos, past = _dec_sym(code, rng, pos, past, data, end, C, brc, 4)
                        if br < 0:
                            return E_TRUNCATED if past > 0 else E_RANGE
                        m += br
                        if br < 3:
                            break
                        j += 1
                    if j == BR_STEPS:  # m == 15: escape
                        g, code, rng, pos, past = _dec_sym(code, rng, pos, past, data, end, C, o_esc + 16 * band, 16)
                        if g < 0:
                            return E_TRUNCATED if past > 0 else E_RANGE
                        if g >= ESC:
                            x, code, rng, pos, past = _dec_raw(code, rng, pos, past, data, end, 3)
                            if x < 0:
                                return E_TRUNCATED if past > 0 else E_RANGE
                            g = ESC + x
                        if g > 0:
                            mant, code, rng, pos, past = _dec_bits(code, rng, pos, past, data, end, g - 1)
                            if mant < 0:
                                return E_TRUNCATED if past > 0 else E_RANGE
                            m += (np.int64(1) << (g - 1)) + mant
                neg, code, rng, pos, past = _dec_raw(code, rng, pos, past, data, end, 1)
                if neg < 0:
                    return E_TRUNCATED if past > 0 else E_RANGE
                levels[i, k] = -m if neg else m
                rem -= 1
            k += 1
        if past > 8:
            return E_TRUNCATED
    return E_TRUNCATED if past > 0 else OK
