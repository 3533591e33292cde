"""numba kernels: the codec's hot loops. ndarray in, ndarray/ints out, no Python objects.

What runs here, per frame:

* encoder (:func:`encode_frame`): blocks are gathered straight from the frame (edge
  padding by clamping indices), level-shifted, transformed by an AAN-factorised float64
  DCT, divided by the steps, rounded, zigzag-ordered and turned into Huffman symbols in one
  pass (:func:`fdct_symbols`); then optimal tables (:func:`huffman_table`, T.81 Annex K)
  and bit packing (:func:`pack_symbols`). The symbols of a block are found through a bit
  mask of its non-zero levels (count trailing zeros), not by testing 63 positions.
* decoder (:func:`decode_pixels`): Huffman decoding with a 10-bit look-ahead table whose
  entries also decode short run/size codes with their extra bits at once; the levels go
  straight, dequantized, into a coefficient-major buffer of one block row, whose inverse
  DCT runs vectorised over the blocks (:func:`_strip_pixels`); DC-only blocks (most of a
  CT's air) are constants computed exactly like the reference product.

Every kernel has a NumPy / plain-Python reference twin (``*_reference`` in
:mod:`medcodec.codec.entropy`, the (N, 64) x (64, 64) products of
:mod:`medcodec.codec.transform`, ``FrameCoder.levels_reference`` / ``reconstruct_reference``)
and tests that both agree (``tests/codec/test_kernels.py``): bit for bit for the entropy
coder, and for the transforms up to values within float rounding noise of a half-integer
(a tie, which the two float64 evaluation orders may round to different sides). With
``NUMBA_DISABLE_JIT=1`` these functions run as ordinary Python, which is how CI checks
that the twins and the kernels are the same algorithm.

Performance notes: every kernel is ``nogil`` (frames are coded in parallel threads) and
``cache=True`` (compiled once into ``__pycache__``; :mod:`.warmup` does it at install).
Helpers called per block take arrays but never allocate, and are compiled without
reference counting (``_helper``): an array argument otherwise costs an atomic
incref/decref pair per call, which doubled the inverse DCT's time. State variables start as
``np.int64(0)`` / ``np.bool_(False)``, not literals, so numba does not compile the helpers
once more for literal arguments.

Conventions shared by the entropy kernels (T.81 Annex F, generalised):

* ``zz``: int32 array (nblocks, 64), quantized levels in zigzag order.
* ``size_bits``: width of the magnitude-category field in an AC symbol. JPEG uses 4
  (``RRRRSSSS``, one byte); ``.mdc`` uses 5 so that categories up to 19 (16-bit data)
  fit. AC symbol = ``(run << size_bits) | size``; EOB = 0; ZRL = ``15 << size_bits``.
* The bit reader never indexes outside ``data[start:end]``: past the end (or at a
  marker, for stuffed JPEG data) it feeds zero bytes and counts them, so the caller can
  tell a stream that read beyond its own data (truncated) from a good one.

Status codes returned by the decoders:
0 ok, 1 invalid Huffman code, 2 run past coefficient 63, 3 magnitude category too
large, 4 read past the end of the data, 5 restart marker missing or out of order.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)
#: Helpers called per block from the hot loops. They take arrays but never allocate, so they
#: are compiled without reference counting (``_nrt=False``): an array argument otherwise
#: costs an atomic incref / decref pair per call.
_helper = numba.njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
#: helpers inlined into their callers by numba itself (not left to LLVM): ``_strip_pixels`` and
#: ``_strip_dc_blocks`` as ``_helper`` calls took one argument more on 2026-12-03 (``half_up``) and JPEG
#: decoding became 10-15 % slower (A/B of the two kernels in one process, alternated); inlined, the
#: same as before the argument
_inlined = numba.njit(cache=True, nogil=True, _nrt=False, inline="always")  # type: ignore[call-overload]

OK = 0
E_BAD_CODE = 1
E_RUN_OVERFLOW = 2
E_BAD_CATEGORY = 3
E_TRUNCATED = 4
E_RESTART = 5

_BUF_MASK = (1 << 56) - 1  # the bit reader holds at most 56 bits


# Bit scans. Compiled: the LLVM intrinsics ctlz / cttz (one instruction each). With
# NUMBA_DISABLE_JIT=1 (the CI run of the kernels as plain Python): int.bit_length.
if numba.config.DISABLE_JIT:  # type: ignore[attr-defined]

    def _clz64(x):
        """Leading zero bits of a non-negative int64."""
        return 64 - int(x).bit_length()

    def _ctz64(x):
        """Trailing zero bits of a non-zero int64."""
        x = int(x)
        return (x & -x).bit_length() - 1

else:
    from llvmlite import ir as _ir  # type: ignore[import-untyped]
    from numba.core import types as _types
    from numba.extending import intrinsic as _intrinsic

    def _bit_intrinsic(name: str):  # type: ignore[no-untyped-def]
        @_intrinsic
        def _scan(typingctx, x):  # type: ignore[no-untyped-def]
            def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
                i64 = _ir.IntType(64)
                fn = builder.module.declare_intrinsic(name, [i64], _ir.FunctionType(i64, [i64, _ir.IntType(1)]))
                return builder.call(fn, [args[0], _ir.Constant(_ir.IntType(1), 0)])

            return _types.int64(_types.int64), codegen

        return _scan

    _clz_intrinsic = _bit_intrinsic("llvm.ctlz")
    _ctz_intrinsic = _bit_intrinsic("llvm.cttz")

    @_jit
    def _clz64(x):
        return _clz_intrinsic(np.int64(x))

    @_jit
    def _ctz64(x):
        return _ctz_intrinsic(np.int64(x))


@_jit
def _u(i):
    """An array index known to be >= 0, as uint64: numba then skips the negative-index
    wraparound select it adds to every signed index (a few % of the texture kernel)."""
    return np.uint64(i)


@_jit
def min_max(a):
    """(min, max) of a non-empty C-contiguous array in one pass (the compiler vectorises it):
    a third of the time of NumPy's ``min()`` and ``max()`` on a 512x512 uint16 frame."""
    f = a.ravel()
    lo = f[0]
    hi = f[0]
    for i in range(f.shape[0]):
        v = f[i]
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


@_jit
def bit_length(x):
    """Magnitude category: number of bits of |x| (0 for 0)."""
    return 64 - _clz64(abs(np.int64(x)))


@_helper
def _nonzero_mask(lv):
    """Bit k - 1 set where AC level k (1..63) of the block ``lv`` is non-zero."""
    mask = np.int64(0)
    for k in range(1, 64):
        mask |= np.int64(lv[k] != 0) << (k - 1)
    return mask


# Symbol stream: one int64 per Huffman symbol, ``extra << 16 | nextra << 10 | index``,
# where index < 16 << size_bits is an AC symbol, index = (16 << size_bits) + SSSS a DC
# symbol, and index = RESTART_SYMBOL a restart marker (byte-align, RSTm).
RESTART_SYMBOL = 1023


@_helper
def _block_symbols(lv, pred, size_bits, dc_freq, ac_freq, stream, ns, emit):
    """Symbols of one block of zigzag levels ``lv`` (T.81 §F.1.2), DC predicted from ``pred``:
    counted into the freq arrays and, with ``emit``, appended to ``stream`` from ``ns``.
    Returns (new ns, extra bits).

    The AC levels are visited through a bit mask of the non-zero ones (count-trailing-zeros),
    so the zeros between them cost nothing and no branch depends on the data per position.
    """
    dc_base = 16 << size_bits
    zrl = 15 << size_bits
    diff = lv[0] - pred
    s = bit_length(diff)
    dc_freq[s] += 1
    extra = s
    if emit:
        stream[ns] = (np.int64(_extra_bits(diff, s)) << 16) | (s << 10) | (dc_base + s)
        ns += 1
    mask = _nonzero_mask(lv)
    prev = 0
    while mask != 0:
        k = _ctz64(mask) + 1
        mask &= mask - 1
        v = lv[k]
        r = k - prev - 1
        prev = k
        while r > 15:
            ac_freq[zrl] += 1
            if emit:
                stream[ns] = zrl
                ns += 1
            r -= 16
        s = bit_length(v)
        sym = (r << size_bits) | s
        ac_freq[sym] += 1
        extra += s
        if emit:
            stream[ns] = (np.int64(_extra_bits(v, s)) << 16) | (s << 10) | sym
            ns += 1
    if prev < 63:
        ac_freq[0] += 1
        if emit:
            stream[ns] = 0
            ns += 1
    return ns, extra


@_jit
def _scan_symbols(zz, size_bits, restart_interval, dc_freq, ac_freq, stream, emit):
    lv = np.empty(64, np.int64)
    ns = np.int64(0)
    extra = np.int64(0)
    pred = np.int64(0)
    for b in range(zz.shape[0]):
        if restart_interval > 0 and b % restart_interval == 0:
            pred = np.int64(0)
            if b > 0 and emit:
                stream[ns] = RESTART_SYMBOL
                ns += 1
        for k in range(64):
            lv[k] = zz[b, k]
        ns, e = _block_symbols(lv, pred, size_bits, dc_freq, ac_freq, stream, ns, emit)
        pred = lv[0]
        extra += e
    return ns, extra


@_jit
def count_symbols(zz, size_bits, restart_interval, dc_freq, ac_freq):
    """Count DC and AC Huffman symbols of a scan (T.81 §F.1.2), adding to the freq arrays.

    Returns the number of extra (magnitude) bits the scan will need.
    """
    _, extra = _scan_symbols(zz, size_bits, restart_interval, dc_freq, ac_freq, np.empty(1, np.int64), np.bool_(False))
    return extra


@_jit
def levels_symbols(zz, size_bits, restart_interval, dc_freq, ac_freq, stream):
    """Symbol stream (into ``stream``) and counts of a scan of zigzag levels; returns
    (stream entries, extra bits). ``stream`` needs 65 entries per block plus one per restart.
    Twin: :func:`medcodec.codec.entropy.encode_scan_reference` (through :func:`pack_symbols`)."""
    return _scan_symbols(zz, size_bits, restart_interval, dc_freq, ac_freq, stream, np.bool_(True))


@_helper
def _heap_less(a, b, freq):
    """Heap order of :func:`code_sizes`: lower frequency first, then the larger index."""
    return freq[a] < freq[b] or (freq[a] == freq[b] and a > b)


@_helper
def _heap_up(heap, m, freq):
    """Sift the entry just placed at ``heap[m]`` up; returns the new size ``m + 1``."""
    i = m
    while i > 0:
        parent = (i - 1) >> 1
        if not _heap_less(heap[i], heap[parent], freq):
            break
        heap[i], heap[parent] = heap[parent], heap[i]
        i = parent
    return m + 1


@_helper
def _heap_pop(heap, m, freq):
    """Remove ``heap[0]`` from a heap of size ``m``; returns the new size."""
    m -= 1
    heap[0] = heap[m]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= m:
            break
        if c + 1 < m and _heap_less(heap[c + 1], heap[c], freq):
            c += 1
        if not _heap_less(heap[c], heap[i], freq):
            break
        heap[i], heap[c] = heap[c], heap[i]
        i = c
    return m


@_jit
def code_sizes(freq_in):
    """Optimal Huffman code sizes, T.81 §K.2 Figure K.1, with the reserved all-ones code.

    ``freq_in`` has one entry per symbol of the alphabet. Returns int32 code sizes for
    ``len(freq_in) + 1`` symbols (the last is the reserved symbol, frequency 1, that
    keeps any real code from being all ones); sizes may exceed 16, see
    :func:`limit_code_lengths`.
    """
    n = freq_in.shape[0] + 1
    freq = np.zeros(n, np.int64)
    for i in range(n - 1):  # (a slice assignment would compile numba's shape-error machinery)
        freq[i] = freq_in[i]
    freq[n - 1] = 1
    codesize = np.zeros(n, np.int32)
    # V1: least non-zero frequency (the largest index among ties); V2: next least. Figure K.1
    # finds them by scanning all symbols; a binary heap ordered by (frequency, -index) picks the
    # same two (O(log n) instead of O(n) per merge).
    heap = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        if freq[i] > 0:
            heap[m] = i
            m = _heap_up(heap, m, freq)
    others = np.full(n, -1, np.int32)
    while m > 1:
        v1 = heap[0]
        m = _heap_pop(heap, m, freq)
        v2 = heap[0]
        m = _heap_pop(heap, m, freq)
        freq[v1] += freq[v2]
        freq[v2] = 0
        heap[m] = v1
        m = _heap_up(heap, m, freq)
        codesize[v1] += 1
        while others[v1] >= 0:
            v1 = others[v1]
            codesize[v1] += 1
        others[v1] = v2
        codesize[v2] += 1
        while others[v2] >= 0:
            v2 = others[v2]
            codesize[v2] += 1
    return codesize


@_jit
def _extra_bits(v, s):
    return v if v >= 0 else v + (1 << s) - 1


@_helper
def _fill(data, pos, end, acc, nbits, fake, marker, stuffed):
    """Refill the bit reader to more than 40 bits (T.81 §F.2.2.5 NEXTBIT, in bulk).

    Four bytes at a time when they are all in ``data[:end]`` and (stuffed data) none is
    0xFF; otherwise byte by byte, dropping the 0x00 after a stuffed 0xFF and feeding
    counted zero bytes (``fake``) past the end or at a marker.
    """
    if nbits <= 24 and not marker and pos + 4 <= end:
        b0 = int(data[pos])
        b1 = int(data[pos + 1])
        b2 = int(data[pos + 2])
        b3 = int(data[pos + 3])
        if not stuffed or (b0 != 0xFF and b1 != 0xFF and b2 != 0xFF and b3 != 0xFF):
            acc = ((acc << 32) | (b0 << 24) | (b1 << 16) | (b2 << 8) | b3) & _BUF_MASK
            nbits += 32
            pos += 4
    while nbits <= 40:
        byte = 0
        if pos < end and not marker:
            byte = int(data[pos])
            if stuffed and byte == 0xFF:
                if pos + 1 < end and data[pos + 1] == 0:
                    pos += 2
                else:
                    marker = True
                    byte = 0
                    fake += 1
            else:
                pos += 1
        else:
            fake += 1
        acc = ((acc << 8) | byte) & _BUF_MASK
        nbits += 8
    return pos, acc, nbits, fake, marker


# ======================================================================================
# Value statistics (the quantizer's range, :func:`medcodec.codec.levelshift.content_range_bits`)
# ======================================================================================


@_jit
def end_counts(flat, lo, hi):
    """One pass over ``flat``: (count of ``lo``, count of ``hi``, smallest value other than
    ``lo`` (``hi`` if none), largest value other than ``hi`` (``lo`` if none)).

    Branch-free, so the loop vectorises. Twin: the NumPy code of
    ``levelshift.content_range_bits_reference``.
    """
    clo = 0
    chi = 0
    nlo = np.int64(hi)
    nhi = np.int64(lo)
    for i in range(flat.shape[0]):
        v = np.int64(flat[i])
        a = v == lo
        b = v == hi
        clo += a
        chi += b
        nlo = min(nlo, hi if a else v)
        nhi = max(nhi, lo if b else v)
    return clo, chi, nlo, nhi


# ======================================================================================
# Huffman tables (T.81 Annex K.2-K.4, Annex C) built in one kernel
# ======================================================================================


@_jit
def huffman_table(freq, bits_out, huffval_out, ehufco, ehufsi):
    """Optimal length-limited table for ``freq``, the whole of T.81 §K.2-§K.4 and §C in one call.

    Code sizes by Figure K.1 over the used symbols plus the reserved one (:func:`code_sizes`),
    ``Adjust_BITS`` (Figure K.3: lengths limited to 16, reserved code dropped), HUFFVAL
    sorted by code size then symbol (§K.4), canonical codes (Figures C.1, C.2) and the
    encoder arrays EHUFCO / EHUFSI indexed by symbol (Figure C.3; size 0 = no code).
    Fills ``bits_out`` (16 counts), ``huffval_out`` (first ``n`` entries), ``ehufco``,
    ``ehufsi`` (alphabet-sized, zeroed here); returns ``n``, the number of symbols.
    Twin: :meth:`medcodec.codec.entropy.HuffmanTable.from_frequencies_reference`.
    """
    for i in range(16):
        bits_out[i] = 0
    for i in range(ehufsi.shape[0]):
        ehufco[i] = 0
        ehufsi[i] = 0
    n = 0
    for i in range(freq.shape[0]):
        if freq[i] > 0:
            n += 1
    if n == 0:
        return 0
    used = np.empty(n, np.int64)
    fu = np.empty(n, np.int64)
    j = 0
    for i in range(freq.shape[0]):
        if freq[i] > 0:
            used[j] = i
            fu[j] = freq[i]
            j += 1
    sizes = code_sizes(fu)
    maxsize = 0
    for i in range(n + 1):
        maxsize = max(maxsize, sizes[i])
    nb = max(maxsize + 1, 17)
    bits = np.zeros(nb, np.int64)
    for i in range(n + 1):
        bits[sizes[i]] += 1
    # Figure K.3 Adjust_BITS
    i = nb - 1
    while i > 16:
        if bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
        else:
            i -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1  # the reserved symbol held the longest code
    for i in range(16):
        bits_out[i] = bits[i + 1]
    # §K.4: HUFFVAL by (unadjusted) code size, then symbol
    k = 0
    for size in range(1, maxsize + 1):
        for i in range(n):
            if sizes[i] == size:
                huffval_out[k] = used[i]
                k += 1
    # Figures C.1-C.3
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(bits[length]):
            sym = huffval_out[k]
            ehufco[sym] = code
            ehufsi[sym] = length
            code += 1
            k += 1
        code <<= 1
    return n


# ======================================================================================
# Forward path: blocks + level shift + DCT + quantization + zigzag (+ symbols), fused
# ======================================================================================
#
# The 8-point DCT is the Arai-Agui-Nakajima factorisation (as in libjpeg's jfdctflt.c /
# jidctflt.c) in float64: 5 multiplications and 29 additions per 1-D transform instead of
# 64 multiply-adds. Its outputs are the orthonormal coefficients times 8 * a(u) * a(v)
# (a(0) = 1, a(k) = sqrt(2) cos(k pi / 16)); :mod:`.transform` folds these factors and the
# quantization steps into one multiplier per coefficient (``qmul``). The float64 result
# equals the (N, 64) x (64, 64) reference product to ~1e-15 relative, so levels agree
# except for a coefficient lying within rounding noise of a half-integer (a tie).

#: Zigzag / natural positions of the coefficients (0, 0), (4, 0), (0, 4), (4, 4): their basis
#: functions are +-1/8 (rational), so their AAN outputs are exact integer sums and a value
#: exactly half-way between two levels is possible; they are divided (correctly rounded)
#: by ``exact_div`` = 8 x step instead of multiplied by a rounded reciprocal.
EXACT_ZZ = (0, 10, 14, 39)
EXACT_NAT = (0, 32, 4, 36)

_R2 = 1.4142135623730951  # sqrt(2) = 2 cos(pi/4)
_C4 = 0.7071067811865476  # cos(4 pi/16)
_C6 = 0.3826834323650898  # cos(6 pi/16)
_C2_M_C6 = 0.5411961001461970  # cos(2 pi/16) - cos(6 pi/16)
_C2_P_C6 = 1.3065629648763766  # cos(2 pi/16) + cos(6 pi/16)
_I_C2 = 1.8477590650225735  # 2 cos(2 pi/16)
_I_C2_M_C6 = 1.0823922002923940  # 2 (cos(2 pi/16) - cos(6 pi/16))
_I_C2_P_C6 = 2.6131259297527530  # 2 (cos(2 pi/16) + cos(6 pi/16))


@_jit
def _fdct8(d0, d1, d2, d3, d4, d5, d6, d7):
    """1-D AAN forward DCT (scaled outputs, see the section comment)."""
    t0 = d0 + d7
    t7 = d0 - d7
    t1 = d1 + d6
    t6 = d1 - d6
    t2 = d2 + d5
    t5 = d2 - d5
    t3 = d3 + d4
    t4 = d3 - d4
    t10 = t0 + t3
    t13 = t0 - t3
    t11 = t1 + t2
    t12 = t1 - t2
    o0 = t10 + t11
    o4 = t10 - t11
    z1 = (t12 + t13) * _C4
    o2 = t13 + z1
    o6 = t13 - z1
    t10 = t4 + t5
    t11 = t5 + t6
    t12 = t6 + t7
    z5 = (t10 - t12) * _C6
    z2 = _C2_M_C6 * t10 + z5
    z4 = _C2_P_C6 * t12 + z5
    z3 = t11 * _C4
    z11 = t7 + z3
    z13 = t7 - z3
    return o0, z11 + z4, o2, z13 - z2, o4, z13 + z2, o6, z11 - z4


@_jit
def _idct8(i0, i1, i2, i3, i4, i5, i6, i7):
    """1-D AAN inverse DCT of dequantized, AAN-scaled inputs."""
    t10 = i0 + i4
    t11 = i0 - i4
    t13 = i2 + i6
    t12 = (i2 - i6) * _R2 - t13
    e0 = t10 + t13
    e3 = t10 - t13
    e1 = t11 + t12
    e2 = t11 - t12
    z13 = i5 + i3
    z10 = i5 - i3
    z11 = i1 + i7
    z12 = i1 - i7
    o7 = z11 + z13
    o11 = (z11 - z13) * _R2
    z5 = (z10 + z12) * _I_C2
    o10 = z5 - z12 * _I_C2_M_C6
    o12 = z5 - z10 * _I_C2_P_C6
    o6 = o12 - o7
    o5 = o11 - o6
    o4 = o10 - o5
    return e0 + o7, e1 + o6, e2 + o5, e3 + o4, e3 - o4, e2 - o5, e1 - o6, e0 - o7


@_helper
def _fdct_block(frame, y0, x0, offset, ws):
    """AAN-scaled 2-D DCT of the level-shifted 8x8 block at (y0, x0) into ``ws`` (natural order).

    Rows and columns past the frame's edge repeat the last row / column (edge padding).
    """
    rows = frame.shape[0]
    cols = frame.shape[1]
    full_x = x0 + 8 <= cols
    for r in range(8):
        y = min(y0 + r, rows - 1)
        if full_x:
            d0 = float(frame[y, x0]) - offset
            d1 = float(frame[y, x0 + 1]) - offset
            d2 = float(frame[y, x0 + 2]) - offset
            d3 = float(frame[y, x0 + 3]) - offset
            d4 = float(frame[y, x0 + 4]) - offset
            d5 = float(frame[y, x0 + 5]) - offset
            d6 = float(frame[y, x0 + 6]) - offset
            d7 = float(frame[y, x0 + 7]) - offset
        else:
            last = cols - 1
            d0 = float(frame[y, min(x0, last)]) - offset
            d1 = float(frame[y, min(x0 + 1, last)]) - offset
            d2 = float(frame[y, min(x0 + 2, last)]) - offset
            d3 = float(frame[y, min(x0 + 3, last)]) - offset
            d4 = float(frame[y, min(x0 + 4, last)]) - offset
            d5 = float(frame[y, min(x0 + 5, last)]) - offset
            d6 = float(frame[y, min(x0 + 6, last)]) - offset
            d7 = float(frame[y, min(x0 + 7, last)]) - offset
        o = _fdct8(d0, d1, d2, d3, d4, d5, d6, d7)
        b = 8 * r
        ws[b] = o[0]
        ws[b + 1] = o[1]
        ws[b + 2] = o[2]
        ws[b + 3] = o[3]
        ws[b + 4] = o[4]
        ws[b + 5] = o[5]
        ws[b + 6] = o[6]
        ws[b + 7] = o[7]
    for c in range(8):
        o = _fdct8(ws[c], ws[8 + c], ws[16 + c], ws[24 + c], ws[32 + c], ws[40 + c], ws[48 + c], ws[56 + c])
        ws[c] = o[0]
        ws[8 + c] = o[1]
        ws[16 + c] = o[2]
        ws[24 + c] = o[3]
        ws[32 + c] = o[4]
        ws[40 + c] = o[5]
        ws[48 + c] = o[6]
        ws[56 + c] = o[7]


@_helper
def _fdct_strip(frame, y0, offset, row, tmp, coef):
    """AAN-scaled 2-D DCT of every block of the strip of rows ``y0..y0+7`` into ``coef``
    (64, blocks): ``coef[n, j]`` is natural coefficient ``n`` of block ``j``.

    The same arithmetic, in the same order, as :func:`_fdct_block` (rows, then columns), so
    the results are identical, but several times faster: each pixel row is first converted
    to level-shifted float64 and dealt out planar into ``row`` (8, blocks): ``row[u, j]`` is
    sample ``u`` of block ``j``, so that the row pass, like the column pass, runs over all
    the strip's blocks on contiguous arrays (loops the compiler vectorises; ``tmp[8 r + v, j]``:
    row ``r``'s horizontal frequency ``v``). Rows and columns past the frame's edge repeat
    the last one (edge padding).
    """
    rows = frame.shape[0]
    cols = frame.shape[1]
    bx = coef.shape[1]
    full = cols // 8  # blocks wholly inside the frame
    r0 = row[0]
    r1 = row[1]
    r2 = row[2]
    r3 = row[3]
    r4 = row[4]
    r5 = row[5]
    r6 = row[6]
    r7 = row[7]
    for r in range(8):
        src = frame[min(y0 + r, rows - 1)]
        for j in range(full):
            x0 = _u(8 * j)
            ju = _u(j)
            r0[ju] = float(src[x0]) - offset
            r1[ju] = float(src[x0 + 1]) - offset
            r2[ju] = float(src[x0 + 2]) - offset
            r3[ju] = float(src[x0 + 3]) - offset
            r4[ju] = float(src[x0 + 4]) - offset
            r5[ju] = float(src[x0 + 5]) - offset
            r6[ju] = float(src[x0 + 6]) - offset
            r7[ju] = float(src[x0 + 7]) - offset
        for j in range(full, bx):  # the last, partial block: samples past the edge repeat the last one
            for u in range(8):
                row[u, j] = float(src[min(8 * j + u, cols - 1)]) - offset
        _fdct8_planes(row, 0, 1, tmp, 8 * r, 1, bx)  # the row: tmp[8 r + v] = horizontal frequency v
    for v in range(8):
        _fdct8_planes(tmp, v, 8, coef, v, 8, bx)  # the columns: coef[8 u + v] = natural coefficient (u, v)


@numba.njit(cache=True, nogil=True, _nrt=False, inline="always")  # type: ignore[call-overload]
def _fdct8_planes(src, s0, ss, dst, d0, ds, n):
    """The 1-D transform :func:`_fdct8` of ``n`` vectors held as planes: input ``k`` of vector ``j`` is
    ``src[s0 + k ss, j]``, output ``k`` goes to ``dst[d0 + k ds, j]``. A loop over contiguous rows the
    compiler vectorises; both passes of :func:`_fdct_strip`."""
    i0 = src[s0]
    i1 = src[s0 + ss]
    i2 = src[s0 + 2 * ss]
    i3 = src[s0 + 3 * ss]
    i4 = src[s0 + 4 * ss]
    i5 = src[s0 + 5 * ss]
    i6 = src[s0 + 6 * ss]
    i7 = src[s0 + 7 * ss]
    o0 = dst[d0]
    o1 = dst[d0 + ds]
    o2 = dst[d0 + 2 * ds]
    o3 = dst[d0 + 3 * ds]
    o4 = dst[d0 + 4 * ds]
    o5 = dst[d0 + 5 * ds]
    o6 = dst[d0 + 6 * ds]
    o7 = dst[d0 + 7 * ds]
    for j in range(n):
        o = _fdct8(i0[j], i1[j], i2[j], i3[j], i4[j], i5[j], i6[j], i7[j])
        o0[j] = o[0]
        o1[j] = o[1]
        o2[j] = o[2]
        o3[j] = o[3]
        o4[j] = o[4]
        o5[j] = o[5]
        o6[j] = o[6]
        o7[j] = o[7]


@_jit
def fdct_scaled(frame, offset, exact_div, qmul_zz, nat_zz, out):
    """Every block of ``frame``: DCT / steps in zigzag order into float64 ``out`` (nblocks, 64).

    ``qmul_zz[k]`` multiplies the AAN output at natural index ``nat_zz[k]``
    (:func:`medcodec.codec.transform.forward_multipliers`), except at :data:`EXACT_ZZ`
    (the DC among them), where the exact AAN integer is divided by ``exact_div``, so a
    coefficient exactly half-way between two levels is seen as exactly half-way. Twin:
    ``transform.blockify(frame - offset) @ transform.analysis_matrix(steps_zz)``.
    """
    by = (frame.shape[0] + 7) // 8
    bx = (frame.shape[1] + 7) // 8
    ws = np.empty(64)
    for i in range(by):
        for j in range(bx):
            _fdct_block(frame, 8 * i, 8 * j, offset, ws)
            b = i * bx + j
            for k in range(64):
                out[b, k] = ws[nat_zz[k]] * qmul_zz[k]
            for e in range(4):
                out[b, EXACT_ZZ[e]] = ws[EXACT_NAT[e]] / exact_div[e]
    return out


@_jit
def _round_level(x, r):
    # quantize.round_levels: trunc(x + copysign(r, x))
    if x >= 0:
        return np.int32(math.trunc(x + r))
    return np.int32(math.trunc(x - r))


@_jit
def fdct_levels(frame, offset, exact_div, qmul_zz, nat_zz, rounding_zz, out):
    """Like :func:`fdct_scaled`, then rounded to int32 levels as ``quantize.round_levels`` does."""
    by = (frame.shape[0] + 7) // 8
    bx = (frame.shape[1] + 7) // 8
    ws = np.empty(64)
    for i in range(by):
        for j in range(bx):
            _fdct_block(frame, 8 * i, 8 * j, offset, ws)
            b = i * bx + j
            for k in range(64):
                out[b, k] = _round_level(ws[nat_zz[k]] * qmul_zz[k], rounding_zz[k])
            for e in range(4):
                k = EXACT_ZZ[e]
                out[b, k] = _round_level(ws[EXACT_NAT[e]] / exact_div[e], rounding_zz[k])
    return out


@_jit
def fdct_symbols(
    frame, offset, exact_div, qmul_zz, nat_zz, rounding_zz, size_bits, restart_interval, dc_freq, ac_freq, stream
):
    """The whole forward path of a frame in one pass: blocks, level shift, DCT, quantization,
    zigzag, DC prediction and Huffman symbols (into ``stream``, counted into the freq arrays).

    ``stream`` needs room for 65 entries per block plus one per restart. Returns
    (number of stream entries, extra bits). Twin: :func:`fdct_levels` then
    :func:`levels_symbols`, whose own twin is the NumPy reference path.
    """
    by = (frame.shape[0] + 7) // 8
    bx = (frame.shape[1] + 7) // 8
    ws = np.empty(64)
    lv = np.empty(64, np.int64)
    ns = np.int64(0)
    extra = np.int64(0)
    pred = np.int64(0)
    for i in range(by):
        for j in range(bx):
            b = i * bx + j
            if restart_interval > 0 and b % restart_interval == 0:
                pred = np.int64(0)
                if b > 0:
                    stream[ns] = RESTART_SYMBOL
                    ns += 1
            _fdct_block(frame, 8 * i, 8 * j, offset, ws)
            for k in range(64):
                lv[k] = _round_level(ws[nat_zz[k]] * qmul_zz[k], rounding_zz[k])
            for e in range(4):
                k = EXACT_ZZ[e]
                lv[k] = _round_level(ws[EXACT_NAT[e]] / exact_div[e], rounding_zz[k])
            ns, e = _block_symbols(lv, pred, size_bits, dc_freq, ac_freq, stream, ns, np.bool_(True))
            pred = lv[0]
            extra += e
    return ns, extra


@_helper
def _flush_bytes(out, pos, word, nbytes, stuff):
    for i in range(nbytes - 1, -1, -1):
        byte = (word >> (8 * i)) & 0xFF
        out[pos] = byte
        pos += 1
        if stuff and byte == 0xFF:
            out[pos] = 0
            pos += 1
    return pos


@_helper
def _flush4(out, pos, word, stuff):
    """:func:`_flush_bytes` of 4 bytes, with a fast path for a word holding no 0xFF byte."""
    b0 = (word >> 24) & 0xFF
    b1 = (word >> 16) & 0xFF
    b2 = (word >> 8) & 0xFF
    b3 = word & 0xFF
    if stuff and (b0 == 0xFF or b1 == 0xFF or b2 == 0xFF or b3 == 0xFF):
        return _flush_bytes(out, pos, word, np.int64(4), stuff)
    out[pos] = b0
    out[pos + 1] = b1
    out[pos + 2] = b2
    out[pos + 3] = b3
    return pos + 4


@_jit
def pack_symbols(stream, ns, code, size, stuff, out):
    """Bit-pack a symbol stream with the Huffman codes ``code`` / ``size`` (indexed like the
    stream: AC symbols, then DC symbols at ``16 << size_bits``); returns the bytes written.

    64-bit accumulator emptied 32 bits at a time; 0xFF is followed by 0x00 with ``stuff``
    (T.81 §F.1.2.3); the last byte and each byte before a restart marker are padded with
    1 bits; restart markers RST0..RST7 cycle. Twin: :func:`medcodec.codec.entropy.encode_scan_reference`.
    """
    pos = np.int64(0)
    acc = np.int64(0)
    nbits = 0
    rst = 0
    cz = np.empty(code.shape[0], np.int64)  # code << 6 | size: one load per symbol (sizes <= 32)
    for i in range(code.shape[0]):
        cz[i] = (np.int64(code[i]) << 6) | size[i]
    for i in range(ns):
        e = stream[i]
        idx = e & 1023
        if idx == RESTART_SYMBOL:
            if nbits & 7:
                pad = 8 - (nbits & 7)
                acc = (acc << pad) | ((1 << pad) - 1)
                nbits += pad
            pos = _flush_bytes(out, pos, acc, nbits >> 3, stuff)
            acc = np.int64(0)
            nbits = 0
            out[pos] = 0xFF
            out[pos + 1] = 0xD0 + (rst & 7)
            pos += 2
            rst += 1
            continue
        s = (e >> 10) & 31
        cs = cz[idx]
        length = cs & 63
        if length + s <= 31:
            acc = (acc << (length + s)) | ((cs >> 6) << s) | (e >> 16)
            nbits += length + s
        else:  # 16-bit data: code and extra bits in two steps
            acc = (acc << length) | (cs >> 6)
            nbits += length
            if nbits >= 32:
                nbits -= 32
                pos = _flush4(out, pos, acc >> nbits, stuff)
                acc &= (np.int64(1) << nbits) - 1
            acc = (acc << s) | (e >> 16)
            nbits += s
        if nbits >= 32:
            nbits -= 32
            pos = _flush4(out, pos, acc >> nbits, stuff)
            acc &= (np.int64(1) << nbits) - 1
    if nbits & 7:
        pad = 8 - (nbits & 7)
        acc = (acc << pad) | ((1 << pad) - 1)
        nbits += pad
    pos = _flush_bytes(out, pos, acc, nbits >> 3, stuff)
    return pos


@_jit
def _coded_scan(
    stream,
    ns,
    dc_freq,
    ac_freq,
    extra,
    size_bits,
    stuff,
    restart_interval,
    nblocks,
    dc_bits,
    dc_huffval,
    ac_bits,
    ac_huffval,
):
    """Optimal tables for the counted symbols (:func:`huffman_table`) and the packed scan
    (:func:`pack_symbols`). Fills BITS / HUFFVAL; returns (coded bytes, DC symbols, AC
    symbols, DC EHUFSI, AC EHUFSI)."""
    n_dc = dc_freq.shape[0]
    n_ac = ac_freq.shape[0]
    dc_code = np.empty(n_dc, np.int64)
    dc_size = np.empty(n_dc, np.int64)
    ac_code = np.empty(n_ac, np.int64)
    ac_size = np.empty(n_ac, np.int64)
    n_dcs = huffman_table(dc_freq, dc_bits, dc_huffval, dc_code, dc_size)
    n_acs = huffman_table(ac_freq, ac_bits, ac_huffval, ac_code, ac_size)
    code = np.zeros(RESTART_SYMBOL + 1, np.int64)
    size = np.zeros(RESTART_SYMBOL + 1, np.int64)
    nbits = extra
    for i in range(n_ac):
        code[i] = ac_code[i]
        size[i] = ac_size[i]
        nbits += ac_freq[i] * ac_size[i]
    for i in range(n_dc):
        code[n_ac + i] = dc_code[i]
        size[n_ac + i] = dc_size[i]
        nbits += dc_freq[i] * dc_size[i]
    # entropy.max_scan_bytes
    nbytes = nbits // 8 + 1
    if stuff:
        nbytes *= 2
    if restart_interval > 0:
        nbytes += 3 * (nblocks // restart_interval + 1)
    out = np.empty(nbytes + 8, np.uint8)
    n = pack_symbols(stream, ns, code, size, stuff, out)
    return out[:n], n_dcs, n_acs, dc_size, ac_size


@_jit
def encode_frame(
    frame,
    offset,
    exact_div,
    qmul_zz,
    nat_zz,
    rounding_zz,
    size_bits,
    stuff,
    restart_interval,
    dc_bits,
    dc_huffval,
    ac_bits,
    ac_huffval,
):
    """A frame's whole encoder in one call (no Python, and no GIL, between the stages):
    :func:`fdct_symbols`, per-frame optimal Huffman tables, bit packing. Returns what
    :func:`_coded_scan` returns."""
    nblocks = ((frame.shape[0] + 7) // 8) * ((frame.shape[1] + 7) // 8)
    dc_freq = np.zeros(1 << size_bits, np.int64)
    ac_freq = np.zeros(16 << size_bits, np.int64)
    cap = 65 * nblocks + 1
    if restart_interval > 0:
        cap += nblocks // restart_interval + 1
    stream = np.empty(cap, np.int64)
    ns, extra = fdct_symbols(
        frame, offset, exact_div, qmul_zz, nat_zz, rounding_zz, size_bits, restart_interval, dc_freq, ac_freq, stream
    )
    return _coded_scan(
        stream,
        ns,
        dc_freq,
        ac_freq,
        extra,
        size_bits,
        stuff,
        restart_interval,
        nblocks,
        dc_bits,
        dc_huffval,
        ac_bits,
        ac_huffval,
    )


@_jit
def encode_levels(zz, size_bits, stuff, restart_interval, dc_bits, dc_huffval, ac_bits, ac_huffval):
    """:func:`encode_frame` for levels already chosen (rate-distortion optimised ones)."""
    nblocks = zz.shape[0]
    dc_freq = np.zeros(1 << size_bits, np.int64)
    ac_freq = np.zeros(16 << size_bits, np.int64)
    cap = 65 * nblocks + 1
    if restart_interval > 0:
        cap += nblocks // restart_interval + 1
    stream = np.empty(cap, np.int64)
    ns, extra = levels_symbols(zz, size_bits, restart_interval, dc_freq, ac_freq, stream)
    return _coded_scan(
        stream,
        ns,
        dc_freq,
        ac_freq,
        extra,
        size_bits,
        stuff,
        restart_interval,
        nblocks,
        dc_bits,
        dc_huffval,
        ac_bits,
        ac_huffval,
    )


# ======================================================================================
# Inverse path: Huffman decoding straight into the inverse DCT and the output pixels
# ======================================================================================
#
# A decoder table is one int32 array per Huffman table (:func:`huffman_decoder`):
#
#   [LOOK, LOOK + 2**LOOKAHEAD)  entry = symbol << 8 | length, for codes of length <= LOOKAHEAD
#                                (0: the code is longer, see MAXCODE)
#   [FAST, FAST + 2**LOOKAHEAD)  AC tables only, entry = value << 16 | run << 8 | bits: a
#                                run/size code whose extra bits also fit the look-ahead,
#                                decoded at once (``bits`` = code length + SSSS), or EOB
#                                (run field FAST_EOB); 0: use LOOK
#   [MAXCODE, MAXCODE + 17)      largest code of each length 1..16, -1 if none (T.81 Figure F.16)
#   [VALPTR, VALPTR + 17)        HUFFVAL index of a code of length l = VALPTR[l] + code
#   [HUFFVAL, ...)               the symbols

LOOKAHEAD = 10
FAST_EOB = 255
_LOOK = 0
_FAST = 1 << LOOKAHEAD
_MAXCODE = 2 << LOOKAHEAD
_VALPTR = _MAXCODE + 17
_HUFFVAL = _VALPTR + 17
#: Entries of a decoder table that holds any Huffman table (at most 256 symbols).
DECODER_TABLE_SIZE = _HUFFVAL + 256
_PEEK_MASK = (1 << LOOKAHEAD) - 1


@_jit
def huffman_decoder(bits, huffval, size_bits, max_s, is_ac, table):
    """Fill a decoder table (layout above) from BITS / HUFFVAL (T.81 §C, §F.2.2.3).

    ``table`` must have ``_HUFFVAL + len(huffval)`` int32 entries; fast entries are made
    only for magnitude categories up to ``max_s`` (larger ones are errors, reported by the
    general path).
    """
    for i in range(_HUFFVAL):
        table[i] = 0
    for i in range(huffval.shape[0]):
        table[_HUFFVAL + i] = huffval[i]
    mask = (1 << size_bits) - 1
    code = 0
    k = 0
    for length in range(1, 17):
        n = bits[length - 1]
        table[_VALPTR + length] = k - code
        table[_MAXCODE + length] = code + n - 1 if n > 0 else -1
        for _ in range(n):
            sym = huffval[k]
            if length <= LOOKAHEAD:
                shift = LOOKAHEAD - length
                first = code << shift
                s = sym & mask
                for idx in range(first, first + (1 << shift)):
                    table[_LOOK + idx] = (sym << 8) | length
                    if is_ac:
                        if sym == 0:
                            table[_FAST + idx] = (FAST_EOB << 8) | length
                        elif 0 < s <= max_s and length + s <= LOOKAHEAD:
                            v = (idx >> (shift - s)) & ((1 << s) - 1)
                            if v < (1 << (s - 1)):
                                v -= (1 << s) - 1
                            table[_FAST + idx] = (v << 16) | ((sym >> size_bits) << 8) | (length + s)
            code += 1
            k += 1
        code <<= 1
    return table


@_jit
def dht_tables(seg, alphabet_dc, alphabet_ac, keys, bits, vals, counts):
    """The Huffman tables of one DHT segment (``seg``: marker, length and payload, uint8), checked as
    ``markers.Dht.from_bytes`` and ``stream._check_huffman`` check them: table ``t`` is class
    ``keys[t, 0]``, destination ``keys[t, 1]``, BITS ``bits[t]``, HUFFVAL ``vals[t, :counts[t]]``.
    Returns the number of tables, or -1 for anything but a plainly valid segment of at most
    ``len(keys)`` tables (the Python parser then names what is wrong). Twin: those two functions.
    """
    n = seg.shape[0]
    if n < 4 or seg[0] != 0xFF or seg[1] != 0xC4 or ((np.int64(seg[2]) << 8) | seg[3]) + 2 != n:
        return -1
    seen = np.zeros(256, np.uint8)
    pos = 4
    t = 0
    while pos < n:
        if t >= keys.shape[0]:
            return -1
        tc = np.int64(seg[pos]) >> 4
        th = np.int64(seg[pos]) & 15
        if tc > 1 or th > 3 or pos + 17 > n:
            return -1
        pos += 1
        total = 0
        code = 0
        for i in range(16):
            c = np.int64(seg[pos + i])
            bits[t, i] = c
            total += c
            code += c
            if code > (1 << (i + 1)):  # the code space overflows (T.81 §C)
                return -1
            code <<= 1
        pos += 16
        if total > 256 or pos + total > n:
            return -1
        alphabet = alphabet_dc if tc == 0 else alphabet_ac
        seen[:] = 0
        for i in range(total):
            v = np.int64(seg[pos + i])
            if v >= alphabet or seen[v] != 0 or (tc == 1 and (v & 15) == 0 and v != 0 and v != 0xF0):
                return -1
            seen[v] = 1
            vals[t, i] = v
        pos += total
        keys[t, 0] = tc
        keys[t, 1] = th
        counts[t] = total
        t += 1
    return t if t > 0 else -1


#: Fields of :func:`jpeg_plain_header`'s ``info``.
PLAIN_P, PLAIN_Y, PLAIN_X, PLAIN_RI, PLAIN_START, PLAIN_END = range(6)


@_jit
def _u16(data, i):
    return (np.int64(data[i]) << 8) | np.int64(data[i + 1])


@_jit
def jpeg_plain_header(data, max_pixels, nat_zz):
    """The marker segments of a plainly valid single-scan grayscale stream, parsed in one call: what
    :func:`medcodec.codec.stream.parse_jpeg` makes of the common layout (SOI; DQT, DHT, DRI, APPn and
    COM in any order; SOF0 / SOF1 with one component; SOS; the entropy-coded data; EOI), for the
    decoder of a small frame, whose header otherwise costs as much as its pixels.

    Returns ``(status, info, steps, dc_decoder, ac_decoder)``: ``info`` int64 (:data:`PLAIN_P` ...:
    P, Y, X, Ri, start and end of the entropy-coded data), ``steps`` uint16 (64,): the scan's
    quantization table in natural order, and the decoder tables of the scan's Huffman tables
    (:func:`huffman_decoder`, int32 :data:`DECODER_TABLE_SIZE` each, 4-bit size fields, categories
    up to P + 3 / P + 2). ``status`` is 0, or -1 for anything else (a deviation, a damaged or
    unsupported stream, more than 8 tables in a DHT; the arrays are then meaningless): the Python
    parser then decodes it or says what is wrong. Accepts only what that parser accepts without a
    warning. Twin: :func:`medcodec.codec.stream.parse_jpeg`.
    """
    info = np.zeros(6, np.int64)
    steps = np.empty(64, np.uint16)
    dc_dec = np.empty(DECODER_TABLE_SIZE, np.int32)
    ac_dec = np.empty(DECODER_TABLE_SIZE, np.int32)
    status = _plain_header(data, max_pixels, nat_zz, info, steps, dc_dec, ac_dec)
    return status, info, steps, dc_dec, ac_dec


@_jit
def _plain_header(data, max_pixels, nat_zz, info, steps, dc_dec, ac_dec):
    """:func:`jpeg_plain_header` into the arrays it made; returns its status."""
    n = data.shape[0]
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return -1
    qt = np.empty((4, 64), np.int64)  # zigzag order, as coded (read only where qdef says defined)
    qdef = np.zeros(4, np.int64)  # 0: undefined, 1: Pq = 0, 2: Pq = 1
    keys = np.empty((8, 2), np.int64)
    tb = np.empty((8, 16), np.int32)
    tv = np.empty((8, 256), np.int32)
    tc = np.empty(8, np.int64)
    hbits = np.empty((8, 16), np.int64)  # slot 4 Tc + Th (read only where hcount says defined)
    hvals = np.empty((8, 256), np.int64)
    hcount = np.full(8, -1, np.int64)
    ri = np.int64(0)
    sof = np.int64(0)
    P = np.int64(0)
    Y = np.int64(0)
    X = np.int64(0)
    ci = np.int64(0)
    tq = np.int64(0)
    pos = 2
    while True:
        if pos + 1 >= n or data[pos] != 0xFF:
            return -1
        while pos + 1 < n and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos + 3 >= n:
            return -1
        code = np.int64(data[pos + 1])
        length = _u16(data, pos + 2)
        end = pos + 2 + length
        if length < 2 or end > n:
            return -1
        if code == 0xDB:  # DQT
            p = pos + 4
            if p >= end:
                return -1
            while p < end:
                pq = np.int64(data[p]) >> 4
                t = np.int64(data[p]) & 15
                width = pq + 1
                if pq > 1 or t > 3 or p + 1 + 64 * width > end:
                    return -1
                p += 1
                for k in range(64):
                    v = np.int64(data[p]) if pq == 0 else _u16(data, p)
                    if v == 0:
                        return -1
                    qt[t, k] = v
                    p += width
                qdef[t] = pq + 1
        elif code == 0xC4:  # DHT
            m = dht_tables(data[pos:end], 16, 256, keys, tb, tv, tc)
            if m < 0:
                return -1
            for t in range(m):
                slot = 4 * keys[t, 0] + keys[t, 1]
                for i in range(16):
                    hbits[slot, i] = tb[t, i]
                for i in range(tc[t]):
                    hvals[slot, i] = tv[t, i]
                hcount[slot] = tc[t]
        elif code == 0xDD:  # DRI
            if length != 4:
                return -1
            ri = _u16(data, pos + 4)
        elif code == 0xC0 or code == 0xC1:  # SOF0, SOF1
            if sof != 0 or length != 11 or data[pos + 9] != 1:
                return -1
            sof = code
            P = np.int64(data[pos + 4])
            Y = _u16(data, pos + 5)
            X = _u16(data, pos + 7)
            ci = np.int64(data[pos + 10])
            h = np.int64(data[pos + 11]) >> 4
            v = np.int64(data[pos + 11]) & 15
            tq = np.int64(data[pos + 12])
            if not (P == 8 or (P == 12 and code == 0xC1)) or X == 0 or Y == 0 or Y * X > max_pixels:
                return -1
            if not (1 <= h <= 4 and 1 <= v <= 4) or tq > 3:
                return -1
        elif code == 0xDA:  # SOS
            if sof == 0 or length != 8 or data[pos + 4] != 1 or np.int64(data[pos + 5]) != ci:
                return -1
            td = np.int64(data[pos + 6]) >> 4
            ta = np.int64(data[pos + 6]) & 15
            if data[pos + 7] != 0 or data[pos + 8] != 63 or data[pos + 9] != 0:
                return -1
            if td > 3 or ta > 3 or (sof == 0xC0 and (td > 1 or ta > 1)):
                return -1
            if qdef[tq] == 0 or (P == 8 and qdef[tq] != 1) or hcount[td] < 0 or hcount[4 + ta] < 0:
                return -1
            e = end  # the entropy-coded data ends at the first marker that is not RSTn
            while e < n:
                if data[e] == 0xFF:
                    if e + 1 >= n:
                        break
                    b = data[e + 1]
                    if b != 0x00 and not (0xD0 <= b <= 0xD7):
                        break
                    e += 2
                else:
                    e += 1
            q = e  # then fill bytes and EOI
            while q + 1 < n and data[q] == 0xFF and data[q + 1] == 0xFF:
                q += 1
            if q + 1 >= n or data[q] != 0xFF or data[q + 1] != 0xD9:
                return -1
            for k in range(64):
                steps[nat_zz[k]] = qt[tq, k]
            huffman_decoder(hbits[td], hvals[td, : hcount[td]], 4, P + 3, False, dc_dec)
            huffman_decoder(hbits[4 + ta], hvals[4 + ta, : hcount[4 + ta]], 4, P + 2, True, ac_dec)
            info[PLAIN_P] = P
            info[PLAIN_Y] = Y
            info[PLAIN_X] = X
            info[PLAIN_RI] = ri
            info[PLAIN_START] = end
            info[PLAIN_END] = e
            return 0
        elif not (0xE0 <= code <= 0xEF or code == 0xFE):  # APPn and COM are skipped; anything else
            return -1
        pos = end


@_helper
def _decode_symbol(acc, nbits, table):
    """Next Huffman symbol; the reader holds at least 16 bits. Returns (symbol, length), or
    (-1, 0) for a bit pattern that is no code."""
    e = np.int64(table[_LOOK + ((acc >> (nbits - LOOKAHEAD)) & _PEEK_MASK)])
    if e != 0:
        return e >> 8, e & 255
    p16 = (acc >> (nbits - 16)) & 0xFFFF
    for length in range(LOOKAHEAD + 1, 17):
        c = p16 >> (16 - length)
        if c <= table[_MAXCODE + length]:
            return np.int64(table[_HUFFVAL + table[_VALPTR + length] + c]), np.int64(length)
    return np.int64(-1), np.int64(0)


@_helper
def _decode_block(
    data,
    end,
    stuffed,
    pos,
    acc,
    nbits,
    fake,
    marker,
    dct,
    act,
    size_bits,
    max_dc,
    max_ac,
    pred,
    lv,
    nzk,
    coef,
    col,
    deq_nat,
    nat_zz,
    to_coef,
):
    """Decode one block (T.81 §F.2.2): DC difference and AC run/size symbols.

    Without ``to_coef`` the non-zero AC levels go to ``lv[k]`` (zigzag ``k``; the caller
    keeps ``lv`` zero elsewhere) and their positions to ``nzk``; with it, straight to the
    dequantized natural-order coefficients of column ``col`` of the strip buffer ``coef``
    (64, blocks): ``coef[nat_zz[k], col] = level * deq_nat[nat_zz[k]]``.
    Returns (status, pos, acc, nbits, fake, marker, DC level, number of AC levels).
    """
    size_mask = (1 << size_bits) - 1
    if nbits < 16:
        pos, acc, nbits, fake, marker = _fill(data, pos, end, acc, nbits, fake, marker, stuffed)
    s, length = _decode_symbol(acc, nbits, dct)
    if s < 0:
        return E_BAD_CODE, pos, acc, nbits, fake, marker, pred, 0
    nbits -= length
    if s > max_dc:
        return E_BAD_CATEGORY, pos, acc, nbits, fake, marker, pred, 0
    if s:
        if nbits < s:
            pos, acc, nbits, fake, marker = _fill(data, pos, end, acc, nbits, fake, marker, stuffed)
        nbits -= s
        v = (acc >> nbits) & ((1 << s) - 1)
        if v < (1 << (s - 1)):
            v -= (1 << s) - 1
        pred += v
    n = 0
    k = 1
    while k < 64:
        if nbits < 16:
            pos, acc, nbits, fake, marker = _fill(data, pos, end, acc, nbits, fake, marker, stuffed)
        f = np.int64(act[_FAST + ((acc >> (nbits - LOOKAHEAD)) & _PEEK_MASK)])
        if f != 0:
            nbits -= f & 255
            r = (f >> 8) & 255
            if r == FAST_EOB:
                break
            k += r
            if k > 63:
                return E_RUN_OVERFLOW, pos, acc, nbits, fake, marker, pred, n
            if to_coef:
                j = nat_zz[k]
                coef[j, col] = (f >> 16) * deq_nat[j]
            else:
                lv[k] = f >> 16
                nzk[n] = k
            n += 1
            k += 1
            continue
        sym, length = _decode_symbol(acc, nbits, act)
        if sym < 0:
            return E_BAD_CODE, pos, acc, nbits, fake, marker, pred, n
        nbits -= length
        r = sym >> size_bits
        s = sym & size_mask
        if s == 0:
            if r == 15:
                k += 16
                if k > 64:
                    return E_RUN_OVERFLOW, pos, acc, nbits, fake, marker, pred, n
                continue
            break  # EOB (other r/0 symbols are rejected when the table is read)
        k += r
        if k > 63:
            return E_RUN_OVERFLOW, pos, acc, nbits, fake, marker, pred, n
        if s > max_ac:
            return E_BAD_CATEGORY, pos, acc, nbits, fake, marker, pred, n
        if nbits < s:
            pos, acc, nbits, fake, marker = _fill(data, pos, end, acc, nbits, fake, marker, stuffed)
        nbits -= s
        v = (acc >> nbits) & ((1 << s) - 1)
        if v < (1 << (s - 1)):
            v -= (1 << s) - 1
        if to_coef:
            j = nat_zz[k]
            coef[j, col] = v * deq_nat[j]
        else:
            lv[k] = v
            nzk[n] = k
        n += 1
        k += 1
    return OK, pos, acc, nbits, fake, marker, pred, n


@_helper
def _restart(data, pos, end, rst):
    """Skip fill bytes and the expected RSTm (T.81 §B.1.1.2, §F.1.2.3); (ok, pos, rst)."""
    while pos + 1 < end and data[pos] == 0xFF and data[pos + 1] == 0xFF:
        pos += 1
    if pos + 1 < end and data[pos] == 0xFF and data[pos + 1] == 0xD0 + (rst & 7):
        return True, pos + 2, rst + 1
    return False, pos, rst


@_jit
def decode_blocks(data, start, end, nblocks, dct, act, size_bits, stuffed, restart_interval, max_dc, max_ac, out):
    """Decode ``nblocks`` blocks of a Huffman-coded scan from ``data[start:end]`` into ``out``
    (int32 zigzag levels); ``dct`` / ``act`` are :func:`huffman_decoder` tables.

    Returns ``(status, pos, block)``: status (module docstring), the byte position the
    reader had reached (it reads up to 6 bytes ahead, so this is where an error was
    noticed, not where the scan ends), and the block being decoded.
    Twin: :func:`medcodec.codec.entropy.decode_scan_reference`.
    """
    # np.int64 / np.bool_ rather than literals: numba would otherwise compile the helpers
    # once more for Literal[int](0) / Literal[bool](False) arguments (seconds of start-up)
    pos = start
    acc = np.int64(0)
    nbits = np.int64(0)
    fake = np.int64(0)
    marker = np.bool_(False)
    pred = np.int64(0)
    rst = np.int64(0)
    lv = np.zeros(64, np.int64)
    nzk = np.empty(64, np.int64)
    unused = np.empty((1, 1))
    for b in range(nblocks):
        if restart_interval > 0 and b > 0 and b % restart_interval == 0:
            if fake * 8 > nbits:
                return E_TRUNCATED, pos, b
            acc = np.int64(0)
            nbits = np.int64(0)
            fake = np.int64(0)
            marker = np.bool_(False)
            ok, pos, rst = _restart(data, pos, end, rst)
            if not ok:
                return E_RESTART, pos, b
            pred = np.int64(0)
        status, pos, acc, nbits, fake, marker, pred, n = _decode_block(
            data,
            end,
            stuffed,
            pos,
            acc,
            nbits,
            fake,
            marker,
            dct,
            act,
            size_bits,
            max_dc,
            max_ac,
            pred,
            lv,
            nzk,
            unused,
            np.int64(0),
            unused[0],
            nzk,
            np.bool_(False),
        )
        for k in range(64):
            out[b, k] = 0
        out[b, 0] = pred
        for i in range(n):
            out[b, nzk[i]] = lv[nzk[i]]
            lv[nzk[i]] = 0
        if status != OK:
            return status, pos, b
    if fake * 8 > nbits:
        return E_TRUNCATED, pos, nblocks
    return OK, pos, nblocks


@_inlined
def _round_px(v, half_up):
    """A reconstructed sample to an integer: ``floor(v + 0.5)`` with ``half_up`` (libjpeg, DCMTK
    and GDCM round an exact half up: a flat block whose DC gives 100.5 is 101 there; half to even
    made it 100 here, and a PSNR search certified a stream every other decoder shows 1 off
    everywhere, an outside audit of 2026-12-03), else ``np.rint`` (half to even: ``.mdc``,
    whose streams were coded against it)."""
    return np.int64(np.floor(v + 0.5)) if half_up else np.int64(np.rint(v))


@_inlined
def _strip_pixels(coef, ws, nb, out, y0, offset, lo, hi, half_up):
    """Pixels of the ``nb`` blocks of one block row, from their dequantized natural-order
    coefficients held coefficient-major in ``coef`` (64, >= nb): AAN inverse DCT, level
    shift, round (:func:`_round_px`: half up with ``half_up``, as ISO 10918-1 decoders do,
    else half to even like ``np.rint``), clip to the integers [lo, hi], into
    ``out[y0 : y0 + 8, : 8 * nb]``. Leaves ``coef`` all zero.

    The callers put only the blocks with AC levels here (:func:`_strip_ac_blocks`): a DC-only
    block is a constant (:func:`_strip_dc_blocks`), and 40-90 % of a frame's blocks are at
    0.2-1 bpp, whose inverse DCT was then half of the decoding time. Every loop runs over the
    blocks with the same operations, so it vectorises (8 blocks per AVX-512 instruction) where a
    per-block inverse DCT stays scalar.
    """
    for u in range(8):  # columns: coefficients (v, u) -> ws (y, u)
        for b in range(nb):
            i0 = coef[u, b]
            i1 = coef[8 + u, b]
            i2 = coef[16 + u, b]
            i3 = coef[24 + u, b]
            i4 = coef[32 + u, b]
            i5 = coef[40 + u, b]
            i6 = coef[48 + u, b]
            i7 = coef[56 + u, b]
            coef[u, b] = 0.0
            coef[8 + u, b] = 0.0
            coef[16 + u, b] = 0.0
            coef[24 + u, b] = 0.0
            coef[32 + u, b] = 0.0
            coef[40 + u, b] = 0.0
            coef[48 + u, b] = 0.0
            coef[56 + u, b] = 0.0
            o = _idct8(i0, i1, i2, i3, i4, i5, i6, i7)
            ws[u, b] = o[0]
            ws[8 + u, b] = o[1]
            ws[16 + u, b] = o[2]
            ws[24 + u, b] = o[3]
            ws[32 + u, b] = o[4]
            ws[40 + u, b] = o[5]
            ws[48 + u, b] = o[6]
            ws[56 + u, b] = o[7]
    for y in range(8):  # rows: ws (y, u) -> pixels (y, x)
        r = 8 * y
        yy = y0 + y
        for b in range(nb):
            o = _idct8(
                ws[r, b],
                ws[r + 1, b],
                ws[r + 2, b],
                ws[r + 3, b],
                ws[r + 4, b],
                ws[r + 5, b],
                ws[r + 6, b],
                ws[r + 7, b],
            )
            x = 8 * b
            out[yy, x] = min(max(_round_px(o[0] + offset, half_up), lo), hi)
            out[yy, x + 1] = min(max(_round_px(o[1] + offset, half_up), lo), hi)
            out[yy, x + 2] = min(max(_round_px(o[2] + offset, half_up), lo), hi)
            out[yy, x + 3] = min(max(_round_px(o[3] + offset, half_up), lo), hi)
            out[yy, x + 4] = min(max(_round_px(o[4] + offset, half_up), lo), hi)
            out[yy, x + 5] = min(max(_round_px(o[5] + offset, half_up), lo), hi)
            out[yy, x + 6] = min(max(_round_px(o[6] + offset, half_up), lo), hi)
            out[yy, x + 7] = min(max(_round_px(o[7] + offset, half_up), lo), hi)


@_inlined
def _compact_next(n_dc, bx):
    """Whether the next block row is compacted (only its blocks with AC levels in the inverse
    DCT, :func:`_strip_ac_blocks`), judged from this row's DC-only blocks: compacting costs a copy
    of each other block, so a row with few DC-only blocks is cheaper transformed whole (the DC-only
    ones are then overwritten, :func:`_strip_dc_blocks`). Measured at 1 bpp: compacting every row
    made a 512x512 head phantom 9 % slower to decode, a sparse MIP 30 % faster."""
    return n_dc * COMPACT_SHARE >= bx


#: A block row is compacted when at least 1/COMPACT_SHARE of the previous one was DC-only.
COMPACT_SHARE = 4


@_inlined
def _strip_ac_blocks(coef, ws, nb, xs, strip, bx, out, y0, offset, lo, hi, half_up):
    """:func:`_strip_pixels` of the ``nb`` blocks held compacted in ``coef[:, :nb]``, whose block
    columns are ``xs[:nb]``: straight into ``out`` when every block of the row is there,
    else into ``strip`` (8, >= 8 nb) and then copied to their columns (an indexed store in the
    inverse DCT's row pass stops it vectorising: 20 % slower where few blocks are DC-only)."""
    if nb == bx:
        _strip_pixels(coef, ws, nb, out, y0, offset, lo, hi, half_up)
        return
    _strip_pixels(coef, ws, nb, strip, 0, offset, lo, hi, half_up)
    for b in range(nb):
        x = 8 * xs[b]
        s = 8 * b
        for y in range(8):
            for k in range(8):
                out[y0 + y, x + k] = strip[y, s + k]


@_inlined
def _strip_dc_blocks(dc_only, dc, nb, dc_mul, out, y0, offset, lo, hi, half_up):
    """Overwrite the blocks of a strip that hold only a DC level with their constant,
    ``DC * dc_mul`` exactly as the reference product computes it (rounded as :func:`_strip_pixels`)."""
    for b in range(nb):
        if dc_only[b]:
            p = min(max(_round_px(dc[b] * dc_mul + offset, half_up), lo), hi)
            for y in range(8):
                for x in range(8):
                    out[y0 + y, 8 * b + x] = p


@_helper
def _crop(src, dst):
    """dst[:, :] = src[:rows, :cols] as a loop (a slice assignment compiles numba's error
    formatting, seconds of start-up)."""
    for y in range(dst.shape[0]):
        for x in range(dst.shape[1]):
            dst[y, x] = src[y, x]


@_jit
def decode_pixels(
    data,
    start,
    end,
    dct,
    act,
    size_bits,
    stuffed,
    restart_interval,
    max_dc,
    max_ac,
    deq_nat,
    nat_zz,
    dc_mul,
    offset,
    lo,
    hi,
    out,
    half_up,
):
    """Coded bytes to pixels: Huffman decoding straight into dequantized coefficients, inverse
    DCT, level shift, rounding (``half_up``: :func:`_round_px`), clipping and cropping, one
    block row at a time into ``out``.

    A block with only a DC level (the common case in the air and the table of a CT) is a
    constant, ``DC * dc_mul``, computed exactly as the reference product computes it; other
    blocks take the AAN inverse DCT of ``level * deq_nat`` (natural order,
    :func:`medcodec.codec.transform.inverse_multipliers`), vectorised over the blocks of a
    row (:func:`_strip_pixels`). Returns ``(status, pos, block)`` like
    :func:`decode_blocks`; after an error the pixels of the block row being decoded and of
    the rows after it are not set. Twin: :func:`decode_blocks` + the reference synthesis
    product + ``levelshift.unshift``.
    """
    rows = out.shape[0]
    cols = out.shape[1]
    bx = (cols + 7) // 8
    by = (rows + 7) // 8
    # frames that are not whole blocks are decoded into a padded frame, then cropped
    padded = rows % 8 != 0 or cols % 8 != 0
    target = np.empty((8 * by, 8 * bx), out.dtype) if padded else out
    # np.int64 / np.bool_ rather than literals: numba would otherwise compile the helpers
    # once more for Literal[int](0) / Literal[bool](False) arguments (seconds of start-up)
    pos = start
    acc = np.int64(0)
    nbits = np.int64(0)
    fake = np.int64(0)
    marker = np.bool_(False)
    pred = np.int64(0)
    rst = np.int64(0)
    lv = np.zeros(64, np.int64)
    nzk = np.empty(64, np.int64)
    coef = np.zeros((64, bx))
    ws = np.empty((64, bx))
    xs = np.empty(bx, np.int64)
    strip = np.empty((8, 8 * bx), out.dtype)
    dc_only = np.zeros(bx, np.bool_)
    dc = np.zeros(bx, np.int64)
    compact = np.bool_(True)  # the first row compacts; then as _compact_next says
    for i in range(by):
        m = 0  # blocks whose coefficients are in coef[:, :m] (all of them unless compact)
        n_dc = 0
        for j in range(bx):
            b = i * bx + j
            if restart_interval > 0 and b > 0 and b % restart_interval == 0:
                if fake * 8 > nbits:
                    return E_TRUNCATED, pos, b
                acc = np.int64(0)
                nbits = np.int64(0)
                fake = np.int64(0)
                marker = np.bool_(False)
                ok, pos, rst = _restart(data, pos, end, rst)
                if not ok:
                    return E_RESTART, pos, b
                pred = np.int64(0)
            status, pos, acc, nbits, fake, marker, pred, n = _decode_block(
                data,
                end,
                stuffed,
                pos,
                acc,
                nbits,
                fake,
                marker,
                dct,
                act,
                size_bits,
                max_dc,
                max_ac,
                pred,
                lv,
                nzk,
                coef,
                m,
                deq_nat,
                nat_zz,
                np.bool_(True),
            )
            if status != OK:
                return status, pos, b
            if n != 0 or not compact:  # a DC-only block wrote nothing to coef[:, m]: compact, its slot stays free
                coef[0, m] = pred * deq_nat[0]
                xs[m] = j
                m += 1
            n_dc += n == 0
            dc_only[j] = n == 0
            dc[j] = pred
        _strip_ac_blocks(coef, ws, m, xs, strip, bx, target, 8 * i, offset, lo, hi, half_up)
        compact = _compact_next(n_dc, bx)
        _strip_dc_blocks(dc_only, dc, bx, dc_mul, target, 8 * i, offset, lo, hi, half_up)
    if fake * 8 > nbits:
        return E_TRUNCATED, pos, by * bx
    if padded:
        _crop(target, out)
    return OK, pos, by * bx


@_jit
def levels_pixels(zz, deq_nat, nat_zz, dc_mul, offset, lo, hi, out, half_up):
    """Zigzag levels (nblocks, 64) to clipped pixels in ``out``: the inverse path of
    :func:`decode_pixels` without the entropy decoding (``half_up``: :func:`_round_px`). Twin:
    ``levels @ synthesis_matrix``, ``unblockify``, ``levelshift.unshift``.
    """
    rows = out.shape[0]
    cols = out.shape[1]
    bx = (cols + 7) // 8
    by = (rows + 7) // 8
    padded = rows % 8 != 0 or cols % 8 != 0
    target = np.empty((8 * by, 8 * bx), out.dtype) if padded else out
    lv = np.zeros(64, np.int64)
    coef = np.zeros((64, bx))
    ws = np.empty((64, bx))
    xs = np.empty(bx, np.int64)
    strip = np.empty((8, 8 * bx), out.dtype)
    dc_only = np.zeros(bx, np.bool_)
    dc = np.zeros(bx, np.int64)
    compact = np.bool_(True)
    for i in range(by):
        m = 0  # as in decode_pixels: compact rows give the inverse DCT only blocks with AC levels
        n_dc = 0
        for j in range(bx):
            b = i * bx + j
            for k in range(64):
                lv[k] = zz[b, k]
            mask = _nonzero_mask(lv)
            dc_only[j] = mask == 0
            dc[j] = lv[0]
            n_dc += mask == 0
            if mask == 0 and compact:
                continue
            coef[0, m] = lv[0] * deq_nat[0]
            xs[m] = j
            while mask != 0:
                k = _ctz64(mask) + 1
                mask &= mask - 1
                n = nat_zz[k]
                coef[n, m] = lv[k] * deq_nat[n]
            m += 1
        _strip_ac_blocks(coef, ws, m, xs, strip, bx, target, 8 * i, offset, lo, hi, half_up)
        compact = _compact_next(n_dc, bx)
        _strip_dc_blocks(dc_only, dc, bx, dc_mul, target, 8 * i, offset, lo, hi, half_up)
    if padded:
        _crop(target, out)
    return out


# ======================================================================================
# Texture-aware rate-distortion quantization (issue 11), fused beside the DCT
# ======================================================================================
#
# The default level selection of the standard JPEG encoder (``rdo="texture"``,
# :mod:`medcodec.codec._rdoq` explains the cost function). Per frame:
#
#   1. the symbol counts of the rounded levels of every 4th strip of blocks: the code lengths
#      the decisions are priced with (the "previous pass"; :func:`_texture_code_lengths`); the
#      frame's noise level on the same strips (:func:`noise_sigma`), which sets the penalty's
#      weight (:func:`texture_mu`);
#   2. per strip of 8 pixel rows (:func:`_texture_strip`): DCT of all its blocks
#      (:func:`_fdct_strip`), scaled by the steps, rounded, the non-zero masks and AC energies
#      coefficient-major (:func:`_strip_scaled`, :func:`_strip_round`: loops over the blocks,
#      vectorised; blocks under the background floor get no energy target); then per block the
#      greedy pass from the last coefficient to the first that lowers or zeroes a level when
#      error + lambda x bits + an energy-loss penalty decreases (:func:`_texture_block`), and
#      its AC symbols; then a Viterbi search over the DC chain that knows decoders clip
#      (:func:`trellis_dc`);
#   3. DC symbols, optimal Huffman tables and bit packing (:func:`_coded_scan`).
#
# Twins: ``_rdoq.texture_levels_reference`` and ``_rdoq.trellis_dc_reference`` (plain Python),
# ``_rdoq.symbol_bits`` (NumPy); ``tests/codec/test_rdoq.py`` and ``tests/codec/test_texture_rdo.py``
# check they agree (the latter bit for bit, the whole fused kernel included).


@_jit
def symbol_code_lengths(freq, out):
    """Estimated code length of every symbol, ``-log2((freq + 0.5) / sum(freq + 0.5))``, into ``out``:
    a symbol not seen yet still has a finite (high) price."""
    total = 0.0
    for i in range(freq.shape[0]):
        total += freq[i] + 0.5
    unseen = -math.log2(0.5 / total)  # most symbols of an alphabet: one logarithm for all of them
    for i in range(freq.shape[0]):
        out[i] = -math.log2((freq[i] + 0.5) / total) if freq[i] != 0 else unseen
    return out


@_jit
def _deficit_penalty(energy, target, target2, mu):
    """``mu * (target - sqrt(energy))**2`` when ``energy < target**2``, else 0."""
    if energy >= target2:
        return 0.0
    t = target - math.sqrt(max(energy, 0.0))
    return mu * t * t


@_jit
def _deficit_accept(base, pen, eq1, target, target2, mu):
    """Whether a move whose error + rate change is ``base < 0`` lowers J once the penalty is counted:
    ``base + P(eq1) - pen < 0`` with ``P = mu (target - sqrt(eq1))^2`` below ``target2`` (else 0) and
    ``pen`` the penalty before the move. Decided without the square root (it was on the path of
    every decision): with ``R = pen - base > 0`` the test is ``mu (T^2 + eq1) - R < 2 mu T sqrt(eq1)``,
    true when the left side is negative, else compared squared. The same decision as computing
    :func:`_deficit_penalty` but for ties within rounding."""
    if eq1 >= target2:
        return True
    lhs = mu * (target2 + eq1) - (pen - base)
    if lhs < 0:
        return True
    return lhs * lhs < 4.0 * mu * mu * target2 * eq1


@_helper
def _strip_round(sx, weights, mask, eo):
    """Step 1 of :func:`_texture_block` for every block ``j`` of a strip held coefficient-major
    (``sx[k, j]``: zigzag coefficient ``k`` / step): the bit mask of the AC levels that round to
    non-zero (bit ``k - 1``) into ``mask[j]``, the AC energy
    ``sum_k weights[k] |x_k|**2`` (k ascending) into ``eo[j]``. Loops over the blocks, which the
    compiler vectorises."""
    bx = sx.shape[1]
    for j in range(bx):
        eo[j] = 0.0
        mask[j] = 0
    for k in range(1, 64):
        src = sx[k]
        w = weights[k]
        bit = np.int64(1) << (k - 1)
        for j in range(bx):
            a = abs(src[j])
            m = np.int32(a + 0.5)  # a >= 0: truncation is floor
            eo[j] += w * a * a
            mask[j] |= bit if m != 0 else 0


@_helper
def _floor_targets(sx, dc_floor, eo):
    """No energy target (``eo[j] = 0``: the penalty is 0) for the blocks whose DC coefficient / step
    ``sx[0, j]`` lies below ``dc_floor``: background (air, padding), where keeping the noise costs
    bits and shows nothing."""
    for j in range(eo.shape[0]):
        if sx[0, j] < dc_floor:
            eo[j] = 0.0


#: Per-block helpers inlined (numba IR) into their strip loops: a call per block passes every array's
#: fields (some 50 words) and reloads them; inlined, they stay in registers.
_inline = numba.njit(cache=True, nogil=True, _nrt=False, inline="always")  # type: ignore[call-overload]


@_inline
def _texture_block(sx, j, mask, eo, pos, lvc, weights, ac_bits, size_bits, lam, mu, rho, patience, rt):
    """Levels of block ``j`` of a strip prepared by :func:`_strip_round`: rounding, then the greedy
    backward pass of :func:`texture_levels` (``_rdoq`` module docstring; ``rt``: :func:`_run_table` of
    ``ac_bits``). Returns ``c``, the
    number of non-zero rounded AC levels; ``pos[:c]`` holds their positions (ascending) and
    ``lvc[:c]`` their final magnitudes (0: zeroed by the pass)."""
    eob = ac_bits[_u(0)]
    eq = 0.0
    c = 0
    while mask != 0:
        k = _ctz64(mask) + 1
        mask &= mask - 1
        m = np.int64(np.int32(abs(sx[_u(k), _u(j)]) + 0.5))  # the rounded magnitude (_strip_round)
        pos[_u(c)] = k
        lvc[_u(c)] = m
        c += 1
        eq += weights[_u(k)] * m * m
    if c == 0:
        return c
    target = math.sqrt(eo) * rho
    target2 = target * target
    pen = _deficit_penalty(eq, target, target2, mu)
    q = 64  # the nearest level after k that stays non-zero (64: the block's end) ...
    mq = np.int64(0)  # ... and its magnitude
    misses = 0
    i = c - 1
    while i >= 0 and misses < patience:
        k = pos[_u(i)]
        p = pos[_u(i - 1)] if i > 0 else 0  # the level before k (not decided yet)
        m = lvc[_u(i)]
        if m == 1:  # zero it: its symbol goes, the next one's run grows (or the EOB moves)
            a = abs(sx[_u(k), _u(j)])
            r = k - p - 1
            here = rt[_u(r << 5 | 1)] + 1
            if q < 64:
                sq = bit_length(mq)
                rq = q - k - 1
                rn = q - p - 1
                dr = rt[_u(rn << 5 | sq)] - rt[_u(rq << 5 | sq)] - here
            else:
                dr = eob - here - (eob if k < 63 else 0.0)
            base = weights[_u(k)] * (2.0 * a - 1.0) + lam * dr
            eq1 = eq - weights[_u(k)]
            if base < 0 and _deficit_accept(base, pen, eq1, target, target2, mu):
                eq = eq1
                pen = _deficit_penalty(eq1, target, target2, mu)
                m = 0
                misses = -1
        elif m == 2:  # 2 -> 1 drops its category by one (4 -> 3, 8 -> 7 ... are not tried: docs/design-notes.md)
            a = abs(sx[_u(k), _u(j)])
            s = bit_length(m)
            rr = ((k - p - 1) & 15) << size_bits
            base = weights[_u(k)] * (2.0 * (a - m) + 1.0) + lam * (ac_bits[_u(rr | (s - 1))] - ac_bits[_u(rr | s)] - 1)
            eq1 = eq - weights[_u(k)] * (2 * m - 1)
            if base < 0 and _deficit_accept(base, pen, eq1, target, target2, mu):
                eq = eq1
                pen = _deficit_penalty(eq1, target, target2, mu)
                m -= 1
                misses = -1
        lvc[_u(i)] = m
        if m != 0:
            q = k
            mq = m
        misses += 1
        i -= 1
    return c


@_helper
def _chain_out(sx, j, c, pos, lvc, out, b):
    """Signed levels of block ``j`` of a strip (AC from :func:`_texture_block`'s ``c``, ``pos``,
    ``lvc``; DC rounded to nearest) into row ``b`` of int32 ``out``."""
    out[b, 0] = _round_level(sx[0, j], 0.5)
    for k in range(1, 64):
        out[b, k] = 0
    for i in range(c):
        k = pos[i]
        m = lvc[i]
        out[b, k] = m if sx[k, j] >= 0 else -m


#: Blocks per coefficient-major chunk in :func:`texture_levels`.
_CHUNK = 64


@_jit
def _run_table(ac_bits, size_bits):
    """Code bits of a run of any length 0..63 (its ZRLs included) then a size: ``rt[run << 5 | size]``
    = ``(run >> 4) ac_bits[ZRL] + ac_bits[(run & 15) << size_bits | size]`` (sizes < 32), made once per
    frame so that the greedy looks a rate up in one load."""
    zrl = ac_bits[15 << size_bits]
    rt = np.zeros(64 << 5)
    for run in range(64):
        for sz in range(min(32, 1 << size_bits)):
            rt[run << 5 | sz] = (run >> 4) * zrl + ac_bits[((run & 15) << size_bits) | sz]
    return rt


@_jit
def texture_levels(scaled, weights, ac_bits, size_bits, lam, mu, rho, patience, dc_floor, out):
    """Texture-aware levels of every block (``_rdoq`` module docstring) into int32 ``out``.

    Parameters
    ----------
    scaled
        float64 (N, 64): DCT coefficients divided by their steps, zigzag order.
    weights
        float64 (64,): squared steps (the pixel-domain error of a unit level error).
    ac_bits
        float64 (16 << size_bits,): code length of each AC symbol ``run << size_bits | size``.
    lam, mu, rho
        Lagrange multiplier (squared error per bit); weight of the energy-loss penalty
        ``mu * max(0, rho * |x| - |l|)**2`` (norms of the block's AC in pixel units).
    patience
        The backward pass over a block stops after this many non-zero levels in a row were
        left as they were (64: never; smaller is faster and a little larger, see docs/design-notes.md).
    dc_floor
        Blocks whose DC coefficient / step is below this (background: air, padding) have no
        energy target (the penalty is 0); ``-inf``: none.
    out
        int32 (N, 64): levels; column 0 (DC) rounded to nearest.
    """
    rt = _run_table(ac_bits, size_bits)
    pos = np.zeros(64, np.int64)
    lvc = np.zeros(64, np.int64)
    sx = np.empty((64, _CHUNK))
    mask = np.empty(_CHUNK, np.int64)
    eo = np.empty(_CHUNK)
    n = scaled.shape[0]
    for b0 in range(0, n, _CHUNK):
        c = min(_CHUNK, n - b0)
        for k in range(64):
            for j in range(c):
                sx[k, j] = scaled[b0 + j, k]
        _strip_round(sx[:, :c], weights, mask[:c], eo[:c])
        _floor_targets(sx, dc_floor, eo[:c])
        for j in range(c):
            c = _texture_block(sx, j, mask[j], eo[j], pos, lvc, weights, ac_bits, size_bits, lam, mu, rho, patience, rt)
            _chain_out(sx, j, c, pos, lvc, out, b0 + j)
    return out


@_jit
def trellis_dc(scaled_dc, weight, dc_bits, lam, out, lo, hi, flat):
    """Trellis-quantize the DC levels of all blocks along the prediction chain (T.81 §F.1.2.1).

    Each block's DC level is one of ``round(x) - 1``, ``round(x)``, ``round(x) + 1``;
    a Viterbi search over the blocks minimises ``weight (x - l)^2 + lam (code + SSSS bits)``
    of the differences, the first block predicted from 0. Writes ``out[:, 0]``.

    The decoder clips samples to the sample range, whose ends are ``lo`` and ``hi`` in DC
    units (``8 (sample - offset) / step``): a block with no AC level (``flat[b] != 0``) is
    decoded as the constant ``clip(l)``, so its error is ``weight (x - clip(l, lo, hi))^2``
    (a black background coded one level below ``x`` is decoded exactly; ``-inf, inf``: no clipping).
    Twin: ``_rdoq.trellis_dc_reference``.
    """
    n = scaled_dc.shape[0]
    if n == 0:
        return out
    rnd = np.empty(n, np.int64)  # candidates of block b: rnd[b] - 1, rnd[b], rnd[b] + 1
    for b in range(n):
        x = scaled_dc[b]
        rnd[b] = np.int64(math.floor(x + 0.5)) if x >= 0 else -np.int64(math.floor(-x + 0.5))
    rate = np.empty(dc_bits.shape[0])  # lam x bits of a difference of category s
    for s in range(dc_bits.shape[0]):
        rate[s] = lam * (dc_bits[s] + s)
    back = np.zeros((n, 3), np.int8)
    cost = np.empty(3)
    new = np.empty(3)
    sd = np.empty(5, np.int64)  # category of each difference rnd[b] - rnd[b - 1] + (c - p), c - p = -2..2
    for c in range(3):
        v = rnd[0] + c - 1
        d = scaled_dc[0] - (min(max(float(v), lo), hi) if flat[0] else v)
        cost[c] = weight * d * d + rate[bit_length(v)]
    for b in range(1, n):
        x = scaled_dc[b]
        base = rnd[b] - rnd[b - 1]
        for e in range(5):
            sd[e] = bit_length(base + e - 2)
        fb = flat[b] != 0
        for c in range(3):
            v = rnd[b] + c - 1
            d = x - (min(max(float(v), lo), hi) if fb else v)
            best = np.inf
            arg = 0
            for p in range(3):
                t = cost[p] + rate[sd[c - p + 2]]
                if t < best:
                    best = t
                    arg = p
            new[c] = best + weight * d * d
            back[b, c] = arg
        for c in range(3):
            cost[c] = new[c]
    arg = 0
    for c in range(1, 3):
        if cost[c] < cost[arg]:
            arg = c
    for b in range(n - 1, -1, -1):
        out[b, 0] = rnd[b] + arg - 1
        arg = back[b, arg]
    return out


@_jit
def texture_frame_levels(
    frame,
    offset,
    exact_div,
    qmul_zz,
    nat_zz,
    weights,
    size_bits,
    restart_interval,
    lam,
    mu,
    rho,
    patience,
    dc_rdo,
    stride,
    dc_floor,
    dc_lo,
    dc_hi,
    kappa,
    floor_px,
    out,
):
    """Steps 1-2 of the texture-aware path for a whole frame: the int32 zigzag levels in ``out``.

    The code lengths come from the rounded levels of every ``stride``-th block row (a
    sample is enough for code lengths, and costs 1/stride of a DCT pass); then every
    block is transformed and quantized by :func:`_texture_block` straight from the DCT
    output, and the DC chain by :func:`trellis_dc` (``dc_rdo``) or rounding.

    Blocks whose DC coefficient / step lies below ``dc_floor`` (background) have no energy
    target (:func:`_floor_targets`). ``dc_lo``, ``dc_hi``: the ends of the sample range in the
    same units, where the decoder clips (:func:`trellis_dc`). With ``kappa > 0`` the penalty's
    weight is :func:`texture_mu` of the frame's noise level (:func:`noise_sigma` on the sampled
    strips, samples below ``floor_px`` left out).

    Twin: ``FrameCoder.scaled``, the counts of the sampled rows' rounded levels,
    :func:`symbol_code_lengths`, ``_rdoq.texture_levels_reference``, ``_rdoq.trellis_dc_reference``.
    """
    by = (frame.shape[0] + 7) // 8
    bx = (frame.shape[1] + 7) // 8
    n = by * bx
    pos = np.zeros(64, np.int64)
    lvc = np.zeros(64, np.int64)
    dc_len = np.empty(1 << size_bits)
    ac_len = np.empty(16 << size_bits)
    bufs = _strip_buffers(frame, stride)
    _texture_code_lengths(
        frame, offset, exact_div, qmul_zz, nat_zz, weights, dc_floor, size_bits, stride, bufs, dc_len, ac_len
    )
    if kappa > 0:
        mu = texture_mu(mu, kappa, noise_sigma(frame, stride, floor_px), weights)
    rt = _run_table(ac_len, size_bits)
    dc = np.empty(n)
    flat = np.empty(n, np.uint8)
    for i in range(by):
        sx, mask, eo = _texture_strip(
            frame, i, offset, exact_div, qmul_zz, nat_zz, weights, dc_floor, stride, False, bufs
        )
        for j in range(bx):
            b = i * bx + j
            dc[b] = sx[0, j]
            c = _texture_block(sx, j, mask[j], eo[j], pos, lvc, weights, ac_len, size_bits, lam, mu, rho, patience, rt)
            _chain_out(sx, j, c, pos, lvc, out, b)
            flat[b] = 1
            for t in range(c):
                if lvc[t] != 0:
                    flat[b] = 0
    if dc_rdo:
        trellis_dc(dc, weights[0], dc_len, lam, out, dc_lo, dc_hi, flat)
    return out


@_helper
def _strip_scaled_round(coef, exact_div, qmul_zz, nat_zz, weights, sx, mask, eo):
    """Zigzag DCT coefficients / steps of a strip's blocks (:func:`_fdct_strip`), coefficient-major
    into ``sx[k, j]`` (the values :func:`fdct_scaled` gives: multiplied by ``qmul_zz``, divided by
    ``exact_div`` at :data:`EXACT_ZZ`), and in the same pass what :func:`_strip_round` makes of
    them (``mask``, ``eo``; the energy summed k ascending, as there): one pass over the
    strip instead of two."""
    bx = coef.shape[1]
    src = coef[0]  # DC: EXACT_ZZ[0]
    dst = sx[0]
    d = exact_div[0]
    for j in range(bx):
        dst[j] = src[j] / d
        eo[j] = 0.0
        mask[j] = 0
    e = 1
    for k in range(1, 64):
        src = coef[nat_zz[k]]
        dst = sx[k]
        w = weights[k]
        bit = np.int64(1) << (k - 1)
        if e < 4 and k == EXACT_ZZ[e]:
            d = exact_div[e]
            e += 1
            for j in range(bx):
                x = src[j] / d
                dst[j] = x
                a = abs(x)
                eo[j] += w * a * a
                mask[j] |= bit & -np.int64(a + 0.5 >= 1.0)  # int32(a + 0.5) != 0, branch-free
        else:
            q = qmul_zz[k]
            for j in range(bx):
                x = src[j] * q
                dst[j] = x
                a = abs(x)
                eo[j] += w * a * a
                mask[j] |= bit & -np.int64(a + 0.5 >= 1.0)


@_jit
def _strip_buffers(frame, stride):
    """Work buffers of the texture path (:func:`_texture_strip`): slot ``i // stride`` keeps
    sampled strip ``i`` (step 1), the last slot is the working strip."""
    by = (frame.shape[0] + 7) // 8
    bx = (frame.shape[1] + 7) // 8
    slots = (by + stride - 1) // stride + 1
    return (np.empty((8, bx)), np.empty((64, bx)), np.empty((64, bx)), np.empty((slots, 64, bx)),
            np.empty((slots, bx), np.int64), np.empty((slots, bx)))  # fmt: skip


@_jit
def _texture_strip(frame, i, offset, exact_div, qmul_zz, nat_zz, weights, dc_floor, stride, fresh, bufs):
    """Strip ``i`` prepared for :func:`_texture_block` (``sx``, ``mask``, ``eo`` of
    :func:`_strip_round`): computed into its slot of ``bufs`` (:func:`_strip_buffers`) when
    ``fresh`` or when it is not a sampled strip, else the sampled strip kept from step 1."""
    row, tmp, coef, ksx, kmask, keo = bufs
    slot = i // stride if i % stride == 0 else ksx.shape[0] - 1
    sx = ksx[slot]
    mask = kmask[slot]
    eo = keo[slot]
    if fresh or i % stride != 0:
        _fdct_strip(frame, 8 * i, offset, row, tmp, coef)
        _strip_scaled_round(coef, exact_div, qmul_zz, nat_zz, weights, sx, mask, eo)
        _floor_targets(sx, dc_floor, eo)
    return sx, mask, eo


#: Bins of the histogram of ``|a - b - c + d|`` in :func:`noise_sigma` (larger values share the last).
NOISE_BINS = 1024


@_jit
def noise_sigma(frame, stride, floor_px):
    """Noise level of a frame: ``median |HH| / 0.6745`` (the robust estimate of a white noise's
    standard deviation from its finest diagonal Haar detail, ``HH = (a - b - c + d) / 2`` over the
    2x2 cells ``[[a, b], [c, d]]`` at rows ``y, y + 1`` and columns ``x, x + 1``), over the cells
    with odd ``x`` on rows ``8 i + 1, 8 i + 2`` and ``8 i + 5, 8 i + 6`` of every ``stride``-th
    strip ``i`` whose four samples are all ``>= floor_px`` (background left out); 0 when there is
    none. The cells start at odd rows and columns so that an image enlarged by repeating each
    sample 2x2 still shows its noise. The median comes from a histogram of the integers
    ``|a - b - c + d|`` (lower median). Twin: ``_rdoq.noise_sigma_reference``."""
    rows = frame.shape[0]
    cols = frame.shape[1]
    hist = np.zeros(NOISE_BINS, np.int64)
    for y0 in range(0, rows, 8 * stride):
        for y in range(y0 + 1, min(y0 + 7, rows - 1), 4):
            r0 = frame[y]
            r1 = frame[y + 1]
            for x in range(1, cols - 1, 2):
                a = np.int64(r0[x])
                b = np.int64(r0[x + 1])
                c = np.int64(r1[x])
                d = np.int64(r1[x + 1])
                ok = min(min(a, b), min(c, d)) >= floor_px  # branch-free: background cells add 0
                hist[_u(min(abs(a - b - c + d), NOISE_BINS - 1))] += np.int64(ok)
    n = np.int64(0)
    for t in range(NOISE_BINS):
        n += hist[t]
    if n == 0:
        return 0.0
    want = (n - 1) // 2  # index of the lower median in sorted order
    acc = np.int64(0)
    for t in range(NOISE_BINS):
        acc += hist[t]
        if acc > want:
            return t / 2.0 / 0.6745
    return (NOISE_BINS - 1) / 2.0 / 0.6745


@_jit
def texture_mu(mu, kappa, sigma, weights):
    """The energy penalty's weight for a frame whose noise level is ``sigma``:
    ``mu min(1, (kappa sigma)^2 / mean AC step^2)`` (``weights``: squared steps, zigzag), or ``mu``
    when ``kappa <= 0``. Where the steps are coarse against the noise, rounding loses the grain
    anyway (libjpeg-turbo's too) and keeping it costs the most bits; where they are fine, the
    full penalty keeps it."""
    if kappa <= 0:
        return mu
    m = 0.0
    for k in range(1, 64):
        m += weights[k]
    m /= 63.0
    r = (kappa * sigma) ** 2 / m
    return mu * r if r < 1.0 else mu


@_jit
def _texture_code_lengths(
    frame, offset, exact_div, qmul_zz, nat_zz, weights, dc_floor, size_bits, stride, bufs, dc_len, ac_len
):
    """Code lengths (into ``dc_len`` / ``ac_len``) of the symbols of the rounded levels of every
    ``stride``-th block row, each row its own DC chain: step 1 of the texture-aware path. The
    sampled strips stay in ``bufs`` for step 2."""
    by = (frame.shape[0] + 7) // 8
    bx = (frame.shape[1] + 7) // 8
    dc_freq = np.zeros(1 << size_bits, np.int64)
    ac_freq = np.zeros(16 << size_bits, np.int64)
    zrl = 15 << size_bits
    for i in range(0, by, stride):
        sx, mask, _ = _texture_strip(
            frame, i, offset, exact_div, qmul_zz, nat_zz, weights, dc_floor, stride, True, bufs
        )
        pred = np.int64(0)
        for j in range(bx):  # the counts _block_symbols makes of the rounded levels
            d = np.int64(_round_level(sx[0, j], 0.5))
            dc_freq[bit_length(d - pred)] += 1
            pred = d
            mk = mask[j]
            prev = 0
            while mk != 0:
                k = _ctz64(mk) + 1
                mk &= mk - 1
                r = k - prev - 1
                prev = k
                while r > 15:
                    ac_freq[zrl] += 1
                    r -= 16
                ac_freq[(r << size_bits) | bit_length(np.int32(abs(sx[k, j]) + 0.5))] += 1
            if prev < 63:
                ac_freq[0] += 1
    symbol_code_lengths(dc_freq, dc_len)
    symbol_code_lengths(ac_freq, ac_len)


@_helper
def _strip_texture_symbols(
    sx, mask, eo, b0, pos, lvc, weights, ac_len, size_bits, lam, mu, rho, patience, restart_interval, stream, ns,
    extra, ac_freq, dc, dcl, dc_slot, flat, rt,
):  # fmt: skip
    """Step 2 of :func:`encode_frame_texture` for the blocks of one strip (the first is block ``b0``):
    each block's levels (:func:`_texture_block`, inlined here) and AC symbols, emitted into ``stream``
    from ``ns`` on (``extra``: magnitude bits so far) with a slot kept for the DC symbol
    (``dc_slot``); the DC coefficients / steps into ``dc``, rounded into ``dcl``, ``flat``: no AC
    level left. Returns the new ``ns``, ``extra``."""
    zrl = 15 << size_bits
    for j in range(sx.shape[1]):
        b = b0 + j
        if restart_interval > 0 and b % restart_interval == 0 and b > 0:
            stream[ns] = RESTART_SYMBOL
            ns += 1
        dc[b] = sx[0, j]
        dcl[b, 0] = _round_level(sx[0, j], 0.5)
        c = _texture_block(sx, j, mask[j], eo[j], pos, lvc, weights, ac_len, size_bits, lam, mu, rho, patience, rt)
        dc_slot[b] = ns
        ns += 1
        prev = 0
        flat[b] = 1
        for t in range(c):  # the AC symbols of the levels left non-zero (T.81 §F.1.2.2)
            m = lvc[t]
            if m == 0:
                continue
            flat[b] = 0
            k = pos[t]
            r = k - prev - 1
            while r > 15:
                ac_freq[zrl] += 1
                stream[_u(ns)] = zrl
                ns += 1
                r -= 16
            sz = bit_length(m)
            neg = np.int64(sx[_u(k), _u(j)] < 0)  # extra bits: m, or its complement for a negative level
            sym = (r << size_bits) | sz
            ac_freq[_u(sym)] += 1
            extra += sz
            stream[_u(ns)] = ((m ^ (-neg & ((np.int64(1) << sz) - 1))) << 16) | (sz << 10) | sym
            ns += 1
            prev = k
        if prev < 63:
            ac_freq[0] += 1
            stream[_u(ns)] = 0
            ns += 1
    return ns, extra


@_jit
def encode_frame_texture(
    frame,
    offset,
    exact_div,
    qmul_zz,
    nat_zz,
    weights,
    lam,
    mu,
    rho,
    patience,
    dc_rdo,
    stride,
    dc_floor,
    dc_lo,
    dc_hi,
    kappa,
    floor_px,
    size_bits,
    stuff,
    restart_interval,
    dc_bits,
    dc_huffval,
    ac_bits,
    ac_huffval,
):
    """The texture-aware encoder of a frame in one call, pixels to coded bytes: the levels of
    :func:`texture_frame_levels`, whose AC symbols are emitted as each block is decided (a slot
    is kept for its DC symbol, filled once the DC chain is decided), then optimal tables and
    packing (:func:`_coded_scan`). Returns what :func:`_coded_scan` returns.
    Twin: :func:`texture_frame_levels` + :func:`encode_levels`."""
    by = (frame.shape[0] + 7) // 8
    bx = (frame.shape[1] + 7) // 8
    n = by * bx
    pos = np.zeros(64, np.int64)
    lvc = np.zeros(64, np.int64)
    dc_len = np.empty(1 << size_bits)
    ac_len = np.empty(16 << size_bits)
    bufs = _strip_buffers(frame, stride)
    _texture_code_lengths(
        frame, offset, exact_div, qmul_zz, nat_zz, weights, dc_floor, size_bits, stride, bufs, dc_len, ac_len
    )
    if kappa > 0:
        mu = texture_mu(mu, kappa, noise_sigma(frame, stride, floor_px), weights)
    rt = _run_table(ac_len, size_bits)
    dc_freq = np.zeros(1 << size_bits, np.int64)
    ac_freq = np.zeros(16 << size_bits, np.int64)
    cap = 65 * n + 1
    if restart_interval > 0:
        cap += n // restart_interval + 1
    stream = np.empty(cap, np.int64)
    dc_slot = np.empty(n, np.int64)
    dc = np.empty(n)
    flat = np.empty(n, np.uint8)
    dcl = np.empty((n, 1), np.int32)
    ns = np.int64(0)
    extra = np.int64(0)
    for i in range(by):
        sx, mask, eo = _texture_strip(
            frame, i, offset, exact_div, qmul_zz, nat_zz, weights, dc_floor, stride, False, bufs
        )
        ns, extra = _strip_texture_symbols(
            sx, mask, eo, i * bx, pos, lvc, weights, ac_len, size_bits, lam, mu, rho, patience, restart_interval,
            stream, ns, extra, ac_freq, dc, dcl, dc_slot, flat, rt,
        )  # fmt: skip
    if dc_rdo:
        trellis_dc(dc, weights[0], dc_len, lam, dcl, dc_lo, dc_hi, flat)
    dc_base = 16 << size_bits
    pred = np.int64(0)
    for b in range(n):
        if restart_interval > 0 and b % restart_interval == 0:
            pred = np.int64(0)
        diff = np.int64(dcl[b, 0]) - pred
        sz = bit_length(diff)
        dc_freq[sz] += 1
        extra += sz
        stream[dc_slot[b]] = (np.int64(_extra_bits(diff, sz)) << 16) | (sz << 10) | (dc_base + sz)
        pred = np.int64(dcl[b, 0])
    return _coded_scan(
        stream,
        ns,
        dc_freq,
        ac_freq,
        extra,
        size_bits,
        stuff,
        restart_interval,
        n,
        dc_bits,
        dc_huffval,
        ac_bits,
        ac_huffval,
    )


@_jit
def jpeg_stream(coded, dc_bits, dc_huffval, n_dc, ac_bits, ac_huffval, n_ac, head, tail):
    """A complete single-scan JPEG stream as one uint8 array: ``head`` (SOI, DQT, SOF), the DHT
    segment of the two tables (T.81 §B.2.4.2: Tc=0 Th=0, then Tc=1 Th=0; each BITS then its
    ``n`` HUFFVAL bytes), ``tail`` ([DRI,] SOS), the entropy-coded bytes ``coded`` and EOI.
    The tables are the ones :func:`huffman_table` made for 4-bit size fields (every symbol a
    byte). Twin: :func:`medcodec.codec.stream.build_jpeg`."""
    length = 2 + 17 + n_dc + 17 + n_ac  # Lh: the length field and both tables
    nh = head.shape[0]
    nt = tail.shape[0]
    nc = coded.shape[0]
    out = np.empty(nh + 2 + length + nt + nc + 2, np.uint8)
    for i in range(nh):
        out[i] = head[i]
    p = nh
    out[p] = 0xFF
    out[p + 1] = 0xC4
    out[p + 2] = length >> 8
    out[p + 3] = length & 0xFF
    p += 4
    out[p] = 0x00
    p += 1
    for i in range(16):
        out[p + i] = dc_bits[i]
    p += 16
    for i in range(n_dc):
        out[p + i] = dc_huffval[i]
    p += n_dc
    out[p] = 0x10
    p += 1
    for i in range(16):
        out[p + i] = ac_bits[i]
    p += 16
    for i in range(n_ac):
        out[p + i] = ac_huffval[i]
    p += n_ac
    for i in range(nt):
        out[p + i] = tail[i]
    p += nt
    out[p : p + nc] = coded
    p += nc
    out[p] = 0xFF
    out[p + 1] = 0xD9
    return out


@_jit
def encode_jpeg_texture(
    frame,
    offset,
    exact_div,
    qmul_zz,
    nat_zz,
    weights,
    lam,
    mu,
    rho,
    patience,
    dc_rdo,
    stride,
    dc_floor,
    dc_lo,
    dc_hi,
    kappa,
    floor_px,
    restart_interval,
    head,
    tail,
):
    """The whole JPEG stream of a frame coded by :func:`encode_frame_texture` (4-bit size fields,
    0xFF stuffing), assembled by :func:`jpeg_stream` around ``head`` and ``tail``: one call from
    pixels to the bytes of the file. Twin: :func:`encode_frame_texture`, then
    :func:`medcodec.codec.stream.build_jpeg`."""
    dc_bits = np.empty(16, np.int32)
    dc_huffval = np.empty(16, np.int32)
    ac_bits = np.empty(16, np.int32)
    ac_huffval = np.empty(256, np.int32)
    coded, n_dc, n_ac, _, _ = encode_frame_texture(
        frame, offset, exact_div, qmul_zz, nat_zz, weights, lam, mu, rho, patience, dc_rdo, stride, dc_floor, dc_lo,
        dc_hi, kappa, floor_px, 4, True, restart_interval, dc_bits, dc_huffval, ac_bits, ac_huffval,
    )  # fmt: skip
    return jpeg_stream(coded, dc_bits, dc_huffval, n_dc, ac_bits, ac_huffval, n_ac, head, tail)
