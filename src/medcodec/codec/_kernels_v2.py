"""numba kernels of ``.mdc`` v2: an adaptive binary range coder, the predictive frame coder and
the context-adaptive coder of DCT levels.

What runs here, per frame (``docs/format.md`` §10 specifies every step):

* **Adaptive binary range coder** (LZMA-style carry-less bytes with a cache for the carry;
  32-bit range, 15-bit probabilities). Each context holds the probability of a 0 bit and an
  adaptation count: the step after ``n`` updates is ``1/(n + 1.5)`` until ``n`` reaches
  :data:`ADAPT_LIMIT`, so a context learns fast at first and then averages.
* **Predictive coder** (LOCO-I / JPEG-LS style, ISO 14495-1 §A): the MED predictor, bias
  correction per texture context (365 contexts from the three quantized local gradients,
  sign-merged), near-lossless quantization of the residual with ``|error| <= k`` (the encoder
  predicts from the reconstructed pixels, as the decoder does), and the residual coded by the
  range coder: a zero flag, a sign, the magnitude's bit length in unary and the bits under its
  leading one, every decision under a context chosen by the local activity (gradients plus the
  neighbours' residual magnitudes, :data:`N_ACT` buckets). With ``runs`` (format 2.7, §10.4), a
  sample whose gradients are all within ``k`` starts a run of samples within ``k`` of its left
  neighbour, one bit each (context by the run's length so far); the sample that breaks it is
  coded in regular mode.

* **DCT coefficient coder** (:func:`encode_coefficients` / :func:`decode_coefficients`): the
  quantized 8x8 levels of the v1 DCT path, range-coded with Lepton-style contexts (§12), plus
  the decoder tools of v2 DCT frames: reconstruction offsets (:func:`offset_sums`,
  :func:`levels_pixels_offsets`; :func:`offset_levels` its two-step reference) and the
  deblocking filter (:func:`deblock`).

Both directions share one model step per pixel (:func:`_predict`, :func:`_update`), so encoder
and decoder cannot drift apart. The plain-Python twin is :mod:`medcodec.codec.lossless`'s
``*_reference`` (a different implementation of the same algorithm, bit-exact; tested in
``tests/codec/test_lossless.py``); with ``NUMBA_DISABLE_JIT=1`` these kernels run as Python too.

Safety for the decoder: it never reads outside ``data[start:end]`` (past the end it feeds zero
bytes and counts them), every decoded pixel is clamped to the frame's declared range, and the
unary length is capped, so arbitrary bytes give a bounded amount of work and valid-range pixels.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _kernels as KK

_jit = numba.njit(cache=True, nogil=True)
_helper = numba.njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]

PROB_BITS = 15
PROB_ONE = 1 << PROB_BITS
PROB_MIN = 31
PROB_MAX = PROB_ONE - 31
#: Updates after which a context's adaptation step stops shrinking (1/(ADAPT_LIMIT + 1.5)).
ADAPT_LIMIT = 127
#: 65536 / (n + 1.5): the adaptation step after n updates, 16-bit fixed point.
RECIP = np.array([int(65536 / (n + 1.5)) for n in range(ADAPT_LIMIT + 1)], dtype=np.int64)

N_ACT = 75  # activity contexts: 25 magnitude buckets x 3 shapes (coding contexts)
MAX_NBITS = 18  # bit length of a residual magnitude: |q| < 2**17 (16-bit data)
N_TEX = 365  # LOCO-I texture contexts
RESET = 64  # LOCO-I: halve the bias statistics every RESET samples of a context

# context layout of the probability table
CTX_ZERO = 0
CTX_SIGN = CTX_ZERO + N_ACT
CTX_LEN = CTX_SIGN + N_ACT
CTX_MANT = CTX_LEN + N_ACT * MAX_NBITS
N_CTX = CTX_MANT + N_ACT * MAX_NBITS * MAX_NBITS
# run mode (format 2.7, ``docs/format.md`` §10.4): contexts after the regular ones, so a frame
# without runs uses exactly the layout above
N_RUN = 16  # run-continuation contexts, by run length so far (:func:`_run_bucket`)
#: Format 2.8 (§10.4): each run bit's context also says whether the samples above (N) and
#: above-right (NE) of it differ from the run's value by more than k: 4 groups of N_RUN.
N_RUN_ABOVE = 4
CTX_RUN = N_CTX
N_CTX_RUNS = CTX_RUN + N_RUN * N_RUN_ABOVE

#: activity -> bucket: bucket i holds activities in [ACT_EDGES[i], ACT_EDGES[i+1])
ACT_EDGES = np.array(
    [0, 1, 2, 3, 4, 6, 8, 11, 15, 20, 27, 36, 50, 70, 100, 150, 210, 300, 420, 600, 850, 1200, 1700, 2400, 3400],
    dtype=np.int64,
)
_ACT_LUT_SIZE = 4096
ACT_LUT = np.zeros(_ACT_LUT_SIZE, dtype=np.int64)
for _v in range(_ACT_LUT_SIZE):
    ACT_LUT[_v] = int(np.searchsorted(ACT_EDGES, _v, side="right")) - 1

# status codes
OK = 0
E_OVERFLOW = 1  # encoder: output buffer too small (the caller retries with a larger one)
E_TRUNCATED = 4  # decoder: read past the end of the data
E_RANGE = 6  # decoder: a level outside what any frame can produce (corrupt data)


def default_thresholds(span: int, k: int) -> tuple[int, int, int]:
    """Gradient thresholds T1 <= T2 <= T3 (ISO 14495-1 §C.2.4.1.1.1 defaults for MAXVAL = span)."""
    maxval = max(int(span), 1)
    if maxval >= 128:
        factor = (min(maxval, 4095) + 128) >> 8
        t1 = factor * (3 - 2) + 2 + 3 * k
        t2 = factor * (7 - 3) + 3 + 5 * k
        t3 = factor * (21 - 4) + 4 + 7 * k
    else:
        factor = 256 // (maxval + 1)
        t1 = max(2, 3 // factor + 3 * k)
        t2 = max(3, 7 // factor + 5 * k)
        t3 = max(4, 21 // factor + 7 * k)
    t1 = min(max(t1, k + 1), maxval)
    t2 = min(max(t2, t1), maxval)
    t3 = min(max(t3, t2), maxval)
    return t1, t2, t3


# ----------------------------------------------------------------------------- range coder


@_helper
def _adapt(P, N, ctx, bit):
    p = P[ctx]
    r = RECIP[N[ctx]]
    if bit == 0:
        p += ((PROB_ONE - p) * r) >> 16
    else:
        p -= (p * r) >> 16
    if p < PROB_MIN:
        p = PROB_MIN
    elif p > PROB_MAX:
        p = PROB_MAX
    P[ctx] = p
    if N[ctx] < ADAPT_LIMIT:
        N[ctx] += 1


@_helper
def _shift_low(st, out):
    # st: 0 low, 1 range, 2 cache, 3 cache_size, 4 pos, 5 overflow
    low = st[0]
    if low < 0xFF000000 or low >= 0x100000000:
        carry = low >> 32
        temp = st[2]
        while True:
            pos = st[4]
            if pos < out.shape[0]:
                out[pos] = (temp + carry) & 0xFF
            else:
                st[5] = 1
            st[4] = pos + 1
            temp = 0xFF
            st[3] -= 1
            if st[3] == 0:
                break
        st[2] = (low >> 24) & 0xFF
    st[3] += 1
    st[0] = (low & 0x00FFFFFF) << 8


@_helper
def _enc_bit(st, out, P, N, ctx, bit):
    rng = st[1]
    bound = (rng >> PROB_BITS) * P[ctx]
    if bit == 0:
        rng = bound
    else:
        st[0] += bound
        rng -= bound
    _adapt(P, N, ctx, bit)
    while rng < 0x1000000:
        rng <<= 8
        _shift_low(st, out)
    st[1] = rng


@_helper
def _enc_init(st):
    st[0] = 0
    st[1] = 0xFFFFFFFF
    st[2] = 0
    st[3] = 1
    st[4] = 0
    st[5] = 0


@_helper
def _enc_flush(st, out):
    for _ in range(5):
        _shift_low(st, out)


@_helper
def _next_byte(st, data):
    # st: 0 code, 1 range, 2 pos, 3 end, 4 bytes read past the end
    pos = st[2]
    st[2] = pos + 1
    if pos < st[3]:
        return np.int64(data[pos])
    st[4] += 1
    return np.int64(0)


@_helper
def _dec_init(st, data, start, end):
    st[0] = 0
    st[1] = 0xFFFFFFFF
    st[2] = start
    st[3] = end
    st[4] = 0
    for _ in range(5):
        st[0] = ((st[0] << 8) | _next_byte(st, data)) & 0xFFFFFFFF


@_helper
def _dec_bit(st, data, P, N, ctx):
    rng = st[1]
    code = st[0]
    bound = (rng >> PROB_BITS) * P[ctx]
    if code < bound:
        rng = bound
        bit = 0
    else:
        code -= bound
        rng -= bound
        bit = 1
    _adapt(P, N, ctx, bit)
    while rng < 0x1000000:
        rng <<= 8
        code = ((code << 8) | _next_byte(st, data)) & 0xFFFFFFFF
    st[0] = code
    st[1] = rng
    return bit


# ----------------------------------------------------------------------------- pixel model


@_helper
def _grad_q(d, t1, t2, t3, k):
    if d <= -t3:
        return -4
    if d <= -t2:
        return -3
    if d <= -t1:
        return -2
    if d < -k:
        return -1
    if d <= k:
        return 0
    if d < t1:
        return 1
    if d < t2:
        return 2
    if d < t3:
        return 3
    return 4


@_helper
def _neighbours(R, y, x, cols, mid):
    """(a, b, c, d) = W, N, NW, NE of pixel (y, x) from the reconstructed frame R."""
    if y == 0:
        if x == 0:
            return mid, mid, mid, mid
        a = np.int64(R[y, x - 1])
        return a, a, a, a
    b = np.int64(R[y - 1, x])
    if x == 0:
        a = b
        c = b
    else:
        a = np.int64(R[y, x - 1])
        c = np.int64(R[y - 1, x - 1])
    d = np.int64(R[y - 1, x + 1]) if x + 1 < cols else b
    return a, b, c, d


@_helper
def _context(a, b, c, d, t1, t2, t3, k, eW, eN, eNE, scale):
    """Texture context q (signed, -364..364) and activity bucket of one pixel."""
    q = (_grad_q(d - b, t1, t2, t3, k) * 9 + _grad_q(b - c, t1, t2, t3, k)) * 9 + _grad_q(c - a, t1, t2, t3, k)
    g = (abs(d - b) + abs(b - c) + abs(c - a)) // scale
    e = 2 * eW + eN + eNE
    act = g + e
    if act >= _ACT_LUT_SIZE:
        act = _ACT_LUT_SIZE - 1
    shape = 0 if 2 * g < e else (1 if g < 2 * e else 2)
    return q, ACT_LUT[act] * 3 + shape


@_helper
def _med(a, b, c):
    if c >= max(a, b):
        return min(a, b)
    if c <= min(a, b):
        return max(a, b)
    return a + b - c


#: floor(2**36 / t**2) for small t: the blend weights without a division per sub-predictor
_WEIGHT_LUT_SIZE = 8192
WEIGHT_LUT = np.array([0] + [(1 << 36) // (t * t) for t in range(1, _WEIGHT_LUT_SIZE)], dtype=np.int64)
N_SUB = 6  # sub-predictors of the blended predictor


@_helper
def _subpredict(a, b, c, d, S):
    """Sub-predictions (x8 fixed point) of the blended predictor into S[0:N_SUB]."""
    S[0] = 8 * (a + b - c)
    S[1] = 8 * (a + d - b)
    S[2] = 4 * (a + b)
    S[3] = 8 * b + 4 * (a - c)
    S[4] = 2 * (a + b + c + d)
    S[5] = 4 * (a + b) + 2 * (d - c)


@_helper
def _blend(S, W):
    """Weighted mean of the sub-predictions, rounded to an integer pixel value."""
    num = np.int64(0)
    den = np.int64(0)
    for i in range(N_SUB):
        num += W[i] * S[i]
        den += W[i]
    # num / (8 * den) rounded to nearest
    q = 8 * den
    if num >= 0:
        return (num + (q >> 1)) // q
    return -((-num + (q >> 1)) // q)


@_helper
def _weights(EP, cur, prv, x, cols, W):
    """Weight of each sub-predictor from its errors at W, N, NW, NE (smaller error: larger weight)."""
    for i in range(N_SUB):
        s = EP[i, prv, x] + EP[i, prv, x + 1] + 1
        if x > 0:
            s += EP[i, cur, x - 1] + EP[i, prv, x - 1]
        else:
            s += 2 * EP[i, prv, x]
        w = WEIGHT_LUT[s] if s < _WEIGHT_LUT_SIZE else (np.int64(1) << 36) // (s * s)
        W[i] = w if w > 0 else 1


@_helper
def _bias_update(Bq, Cq, Nq, qi, err, scale):
    """LOCO-I bias statistics after coding ``err`` in texture context ``qi`` (ISO 14495-1 §A.6)."""
    Bq[qi] += err * scale
    if Nq[qi] == RESET:
        Bq[qi] = Bq[qi] >> 1 if Bq[qi] >= 0 else -((-Bq[qi] + 1) >> 1)
        Nq[qi] >>= 1
    Nq[qi] += 1
    n = Nq[qi]
    if Bq[qi] <= -n:
        Bq[qi] += n
        if Cq[qi] > -128:
            Cq[qi] -= 1
        if Bq[qi] <= -n:
            Bq[qi] = -n + 1
    elif Bq[qi] > 0:
        Bq[qi] -= n
        if Cq[qi] < 127:
            Cq[qi] += 1
        if Bq[qi] > 0:
            Bq[qi] = 0


@_helper
def _encode_residual(st, out, P, N, act, q):
    if q == 0:
        _enc_bit(st, out, P, N, CTX_ZERO + act, 0)
        return
    _enc_bit(st, out, P, N, CTX_ZERO + act, 1)
    m = q
    if q < 0:
        _enc_bit(st, out, P, N, CTX_SIGN + act, 1)
        m = -q
    else:
        _enc_bit(st, out, P, N, CTX_SIGN + act, 0)
    nb = np.int64(0)
    t = m
    while t > 0:
        nb += 1
        t >>= 1
    base = CTX_LEN + act * MAX_NBITS
    for i in range(1, nb):
        _enc_bit(st, out, P, N, base + i, 1)
    if nb < MAX_NBITS - 1:
        _enc_bit(st, out, P, N, base + nb, 0)
    mb = CTX_MANT + (act * MAX_NBITS + nb) * MAX_NBITS
    for j in range(nb - 2, -1, -1):
        _enc_bit(st, out, P, N, mb + j, (m >> j) & 1)


@_helper
def _decode_residual(st, data, P, N, act):
    if _dec_bit(st, data, P, N, CTX_ZERO + act) == 0:
        return np.int64(0)
    neg = _dec_bit(st, data, P, N, CTX_SIGN + act)
    base = CTX_LEN + act * MAX_NBITS
    nb = np.int64(1)
    while nb < MAX_NBITS - 1 and _dec_bit(st, data, P, N, base + nb) == 1:
        nb += 1
    mb = CTX_MANT + (act * MAX_NBITS + nb) * MAX_NBITS
    m = np.int64(1)
    for j in range(nb - 2, -1, -1):
        m = (m << 1) | _dec_bit(st, data, P, N, mb + j)
    return -m if neg else m


@_helper
def _run_bucket(n):
    """Context of the run-continuation bit after ``n`` samples of the run: 0..3 as they are, then
    ``floor(log2 n) + 2`` (4-7: 4, 8-15: 5, ...), 15 from 8192 on."""
    if n < 4:
        return n
    b = 0
    t = n
    while t > 1:
        b += 1
        t >>= 1
    return min(b + 2, N_RUN - 1)


@_helper
def _run_ctx(R, y, x, cols, n, ra, k, above):
    """Context of the run bit of sample (y, x) after ``n`` samples of a run of ``ra`` (§10.4):
    with ``above`` (format 2.8) also whether N and NE of it are farther than k from ``ra``."""
    ctx = CTX_RUN + _run_bucket(n)
    if above and y > 0:
        b = np.int64(R[y - 1, x])
        d = np.int64(R[y - 1, x + 1]) if x + 1 < cols else b
        if abs(b - ra) > k:
            ctx += N_RUN
        if abs(d - ra) > k:
            ctx += 2 * N_RUN
    return ctx


@_helper
def _modular(e, rng):
    """A level reduced modulo ``rng`` into -(rng // 2) .. (rng + 1) // 2 - 1 (format 2.8, §10.2
    step 5; ISO 14495-1 §A.4.5)."""
    if e < 0:
        e += rng
    if e >= (rng + 1) // 2:
        e -= rng
    return e


@_helper
def _reconstruct(px, sign, e, scale, vmin, vmax, k, rng):
    """``px + sign * e * scale`` back into the frame's range: with ``rng`` > 0 (modular levels) a
    value beyond ``vmin - k`` / ``vmax + k`` is wrapped by ``rng * scale`` first; then clamped."""
    rx = px + sign * e * scale
    if rng > 0:
        if rx < vmin - k:
            rx += rng * scale
        elif rx > vmax + k:
            rx -= rng * scale
    if rx < vmin:
        rx = vmin
    elif rx > vmax:
        rx = vmax
    return rx


@_helper
def _run_sample(R, EP, S, y, x, cols, mid, cur, predictor, rx):
    """Record sample (y, x) = ``rx`` coded in run mode: the reconstruction and, for the blend,
    each sub-predictor's error there (what the regular samples after it weigh)."""
    if predictor != 0:
        a, b, c, d = _neighbours(R, y, x, cols, mid)
        _subpredict(a, b, c, d, S)
        for i in range(N_SUB):
            EP[i, cur, x] = abs(8 * rx - S[i])
    R[y, x] = rx


@_jit
def encode_predictive(img, k, vmin, vmax, t1, t2, t3, predictor, out, runs=False, modular=False, run_above=False):
    """Code one frame. ``img``: int32 (rows, cols) within [vmin, vmax]; returns (status, nbytes).

    ``out`` must be large enough (status :data:`E_OVERFLOW` otherwise: retry larger). ``runs``:
    format 2.7's run mode (§10.4) where the local gradients are all within ``k``; ``modular`` and
    ``run_above``: format 2.8's levels modulo the range (§10.2 step 5) and run contexts from the
    row above (§10.4).
    """
    rows, cols = img.shape
    R = np.empty((rows, cols), dtype=np.int32)  # reconstruction (= img when k == 0)
    E = np.zeros((2, cols + 1), dtype=np.int64)  # |residual| of the previous and current row
    P = np.full(N_CTX_RUNS, PROB_ONE // 2, dtype=np.int32)
    NC = np.zeros(N_CTX_RUNS, dtype=np.uint8)
    Bq = np.zeros(N_TEX, dtype=np.int64)
    Cq = np.zeros(N_TEX, dtype=np.int64)
    Nq = np.ones(N_TEX, dtype=np.int64)
    EP = np.zeros((N_SUB, 2, cols + 1), dtype=np.int64)  # |error| x8 of each sub-predictor
    S = np.zeros(N_SUB, dtype=np.int64)
    W = np.zeros(N_SUB, dtype=np.int64)
    st = np.zeros(6, dtype=np.int64)
    _enc_init(st)
    scale = 2 * k + 1
    rng = (vmax - vmin + 2 * k) // scale + 1 if modular else 0
    mid = (vmin + vmax) // 2
    for y in range(rows):
        cur = y & 1
        prv = cur ^ 1
        x = 0
        broken = False
        while x < cols:
            a, b, c, d = _neighbours(R, y, x, cols, mid)
            eW = E[cur, x - 1] if x > 0 else E[prv, x]
            eNE = E[prv, x + 1] if x + 1 < cols else E[prv, x]
            qs, act = _context(a, b, c, d, t1, t2, t3, k, eW, E[prv, x], eNE, scale)
            if runs and qs == 0 and not broken:  # run mode (§10.4): samples within k of a
                n = 0
                while x < cols and abs(np.int64(img[y, x]) - a) <= k:
                    _enc_bit(st, out, P, NC, _run_ctx(R, y, x, cols, n, a, k, run_above), 0)
                    _run_sample(R, EP, S, y, x, cols, mid, cur, predictor, a)
                    E[cur, x] = 0
                    n += 1
                    x += 1
                if x == cols:  # a run ends with its row, no bit for that
                    break
                _enc_bit(st, out, P, NC, _run_ctx(R, y, x, cols, n, a, k, run_above), 1)
                broken = True  # the sample that broke it: regular mode, whatever its context
                continue
            broken = False
            sign = np.int64(1)
            if qs < 0:
                sign = np.int64(-1)
                qs = -qs
            if predictor == 0:
                px = _med(a, b, c)
            else:
                _subpredict(a, b, c, d, S)
                _weights(EP, cur, prv, x, cols, W)
                px = _blend(S, W)
            px += sign * Cq[qs]
            if px < vmin:
                px = vmin
            elif px > vmax:
                px = vmax
            e = (np.int64(img[y, x]) - px) * sign
            if k > 0:
                if e > 0:
                    e = (e + k) // scale
                else:
                    e = -((k - e) // scale)
            if rng > 0:
                e = _modular(e, rng)
            rx = _reconstruct(px, sign, e, scale, vmin, vmax, k, rng)
            R[y, x] = rx
            _encode_residual(st, out, P, NC, act, e)
            E[cur, x] = abs(e)
            if predictor != 0:
                for i in range(N_SUB):
                    EP[i, cur, x] = abs(8 * rx - S[i])
            _bias_update(Bq, Cq, Nq, qs, e, scale)
            x += 1
    _enc_flush(st, out)
    if st[5]:
        return E_OVERFLOW, 0
    return OK, st[4]


@_jit
def decode_predictive(
    data, start, end, k, vmin, vmax, t1, t2, t3, predictor, out, runs=False, modular=False, run_above=False
):
    """Decode one frame into ``out`` (int32-compatible (rows, cols)); returns status."""
    rows, cols = out.shape
    R = np.empty((rows, cols), dtype=np.int32)
    E = np.zeros((2, cols + 1), dtype=np.int64)
    P = np.full(N_CTX_RUNS, PROB_ONE // 2, dtype=np.int32)
    NC = np.zeros(N_CTX_RUNS, dtype=np.uint8)
    Bq = np.zeros(N_TEX, dtype=np.int64)
    Cq = np.zeros(N_TEX, dtype=np.int64)
    Nq = np.ones(N_TEX, dtype=np.int64)
    EP = np.zeros((N_SUB, 2, cols + 1), dtype=np.int64)  # |error| x8 of each sub-predictor
    S = np.zeros(N_SUB, dtype=np.int64)
    W = np.zeros(N_SUB, dtype=np.int64)
    st = np.zeros(5, dtype=np.int64)
    _dec_init(st, data, start, end)
    scale = 2 * k + 1
    rng = (vmax - vmin + 2 * k) // scale + 1 if modular else 0
    mid = (vmin + vmax) // 2
    for y in range(rows):
        cur = y & 1
        prv = cur ^ 1
        x = 0
        broken = False
        while x < cols:
            a, b, c, d = _neighbours(R, y, x, cols, mid)
            eW = E[cur, x - 1] if x > 0 else E[prv, x]
            eNE = E[prv, x + 1] if x + 1 < cols else E[prv, x]
            qs, act = _context(a, b, c, d, t1, t2, t3, k, eW, E[prv, x], eNE, scale)
            if runs and qs == 0 and not broken:  # run mode (§10.4)
                n = 0
                while x < cols and _dec_bit(st, data, P, NC, _run_ctx(R, y, x, cols, n, a, k, run_above)) == 0:
                    _run_sample(R, EP, S, y, x, cols, mid, cur, predictor, a)
                    out[y, x] = a
                    E[cur, x] = 0
                    n += 1
                    x += 1
                if x == cols:
                    break
                broken = True
                continue
            broken = False
            sign = np.int64(1)
            if qs < 0:
                sign = np.int64(-1)
                qs = -qs
            if predictor == 0:
                px = _med(a, b, c)
            else:
                _subpredict(a, b, c, d, S)
                _weights(EP, cur, prv, x, cols, W)
                px = _blend(S, W)
            px += sign * Cq[qs]
            if px < vmin:
                px = vmin
            elif px > vmax:
                px = vmax
            e = _decode_residual(st, data, P, NC, act)
            rx = _reconstruct(px, sign, e, scale, vmin, vmax, k, rng)
            R[y, x] = rx
            out[y, x] = rx
            E[cur, x] = abs(e)
            if predictor != 0:
                for i in range(N_SUB):
                    EP[i, cur, x] = abs(8 * rx - S[i])
            _bias_update(Bq, Cq, Nq, qs, e, scale)
            x += 1
        if st[4] > 8:  # far past the end: stop early, the caller reports truncation
            return E_TRUNCATED
    # a valid stream is read at most to its end (the flush wrote 4 bytes beyond the last needed)
    return E_TRUNCATED if st[4] > 0 else OK


# ----------------------------------------------------------------------------- DCT coefficients
#
# Context-adaptive coding of the quantized 8x8 DCT levels (zigzag order), Lepton/packJPG style:
# per block, the count of non-zero AC levels (6-bit binary tree, context: the neighbours'
# counts), the DC level predicted from the left/upper/upper-left blocks' DC (MED), then the AC
# levels in zigzag order until the count is used up, each under a context from its position,
# the non-zero levels still to come and the same coefficient's magnitude in the upper and left
# blocks. Values use the residual binarisation of the predictive mode (zero, sign, unary bit
# length, bits under the leading one) with their own context tables.

NZ_BUCKETS = 10  # context buckets of the neighbours' mean non-zero count
NBR_BUCKETS = 7  # buckets of |same coefficient| in the upper + left blocks
REM_BUCKETS = 6  # buckets of non-zero levels still to come
POS_BANDS = 16  # zigzag positions 1..63 in bands
CMAX_NBITS = 20  # bit length of a level: DC differences of 16-bit data need 19 bits

C_NZ = 0  # NZ_BUCKETS x 64 tree nodes
C_DC_ZERO = C_NZ + NZ_BUCKETS * 64
C_DC_SIGN = C_DC_ZERO + 12
C_DC_LEN = C_DC_SIGN + 12
C_DC_MANT = C_DC_LEN + 12 * CMAX_NBITS
C_AC_ZERO = C_DC_MANT + 12 * CMAX_NBITS * CMAX_NBITS
C_AC_SIGN = C_AC_ZERO + 64 * REM_BUCKETS * NBR_BUCKETS
C_AC_LEN = C_AC_SIGN + POS_BANDS
C_AC_MANT = C_AC_LEN + POS_BANDS * NBR_BUCKETS * CMAX_NBITS
N_CCTX = C_AC_MANT + POS_BANDS * CMAX_NBITS * CMAX_NBITS

#: zigzag position -> band: positions 1..8 one band each, then one band per 8 positions
POS_BAND = np.array([0] + [k - 1 if k <= 8 else 8 + (k - 9) // 8 for k in range(1, 64)], dtype=np.int64)


@_helper
def _nz_bucket(v):
    # v: 2 x mean of two neighbour counts (0..126)
    if v < 1:
        return 0
    if v < 2:
        return 1
    if v < 4:
        return 2
    if v < 6:
        return 3
    if v < 9:
        return 4
    if v < 14:
        return 5
    if v < 20:
        return 6
    if v < 30:
        return 7
    if v < 50:
        return 8
    return 9


@_helper
def _nbr_bucket(v):
    if v == 0:
        return 0
    if v == 1:
        return 1
    if v == 2:
        return 2
    if v <= 4:
        return 3
    if v <= 8:
        return 4
    if v <= 20:
        return 5
    return 6


@_helper
def _rem_bucket(r):
    if r <= 1:
        return 0
    if r == 2:
        return 1
    if r <= 4:
        return 2
    if r <= 8:
        return 3
    if r <= 16:
        return 4
    return 5


@_helper
def _bitlen(m):
    nb = np.int64(0)
    while m > 0:
        nb += 1
        m >>= 1
    return nb


@_helper
def _enc_magnitude(st, out, P, N, len_base, mant_base, m):
    """m >= 1: unary bit length (contexts len_base + i), then the bits under the leading one."""
    nb = _bitlen(m)
    for i in range(1, nb):
        _enc_bit(st, out, P, N, len_base + i, 1)
    if nb < CMAX_NBITS - 1:
        _enc_bit(st, out, P, N, len_base + nb, 0)
    mb = mant_base + nb * CMAX_NBITS
    for j in range(nb - 2, -1, -1):
        _enc_bit(st, out, P, N, mb + j, (m >> j) & 1)


@_helper
def _dec_magnitude(st, data, P, N, len_base, mant_base):
    nb = np.int64(1)
    while nb < CMAX_NBITS - 1 and _dec_bit(st, data, P, N, len_base + nb) == 1:
        nb += 1
    mb = mant_base + nb * CMAX_NBITS
    m = np.int64(1)
    for j in range(nb - 2, -1, -1):
        m = (m << 1) | _dec_bit(st, data, P, N, mb + j)
    return m


@_helper
def _dc_context(levels, i, bx):
    """(prediction, activity bucket 0..11) of block i's DC level from its causal neighbours."""
    bxi = i % bx
    if i < bx:
        if bxi == 0:
            return np.int64(0), np.int64(0)
        a = np.int64(levels[i - 1, 0])
        return a, np.int64(1)
    b = np.int64(levels[i - bx, 0])
    if bxi == 0:
        return b, np.int64(1)
    a = np.int64(levels[i - 1, 0])
    c = np.int64(levels[i - bx - 1, 0])
    act = abs(a - c) + abs(b - c)
    return _med(a, b, c), min(np.int64(2) + _bitlen(act), np.int64(11))


@_helper
def _nbr_mag(levels, i, bx, k):
    v = np.int64(0)
    if i % bx > 0:
        v += abs(levels[i - 1, k])
    if i >= bx:
        v += abs(levels[i - bx, k])
    return v


@_helper
def _nz_ctx(nzs, i, bx):
    if i % bx > 0 and i >= bx:
        return _nz_bucket(nzs[i - 1] + nzs[i - bx])
    if i % bx > 0:
        return _nz_bucket(2 * nzs[i - 1])
    if i >= bx:
        return _nz_bucket(2 * nzs[i - bx])
    return np.int64(0)


@_jit
def encode_coefficients(levels, bx, out):
    """Code (nblocks, 64) zigzag levels, ``bx`` blocks per row; returns (status, nbytes)."""
    nblocks = levels.shape[0]
    P = np.full(N_CCTX, PROB_ONE // 2, dtype=np.int32)
    NC = np.zeros(N_CCTX, dtype=np.uint8)
    nzs = np.zeros(nblocks, dtype=np.int64)
    st = np.zeros(6, dtype=np.int64)
    _enc_init(st)
    for i in range(nblocks):
        nz = np.int64(0)
        for k in range(1, 64):
            if levels[i, k] != 0:
                nz += 1
        nzs[i] = nz
        # non-zero count: 6-bit binary tree
        base = C_NZ + _nz_ctx(nzs, i, bx) * 64
        node = np.int64(1)
        for j in range(5, -1, -1):
            bit = (nz >> j) & 1
            _enc_bit(st, out, P, NC, base + node, bit)
            node = 2 * node + bit
        # DC
        pred, dact = _dc_context(levels, i, bx)
        r = np.int64(levels[i, 0]) - pred
        if r == 0:
            _enc_bit(st, out, P, NC, C_DC_ZERO + dact, 0)
        else:
            _enc_bit(st, out, P, NC, C_DC_ZERO + dact, 1)
            _enc_bit(st, out, P, NC, C_DC_SIGN + dact, 1 if r < 0 else 0)
            _enc_magnitude(
                st, out, P, NC, C_DC_LEN + dact * CMAX_NBITS, C_DC_MANT + dact * CMAX_NBITS * CMAX_NBITS, abs(r)
            )
        # AC
        rem = nz
        k = 1
        while rem > 0:
            v = np.int64(levels[i, k])
            nb = _nbr_bucket(_nbr_mag(levels, i, bx, k))
            zc = C_AC_ZERO + (k * REM_BUCKETS + _rem_bucket(rem)) * NBR_BUCKETS + nb
            if v == 0:
                _enc_bit(st, out, P, NC, zc, 0)
            else:
                _enc_bit(st, out, P, NC, zc, 1)
                band = POS_BAND[k]
                _enc_bit(st, out, P, NC, C_AC_SIGN + band, 1 if v < 0 else 0)
                _enc_magnitude(
                    st,
                    out,
                    P,
                    NC,
                    C_AC_LEN + (band * NBR_BUCKETS + nb) * CMAX_NBITS,
                    C_AC_MANT + band * CMAX_NBITS * CMAX_NBITS,
                    abs(v),
                )
                rem -= 1
            k += 1
    _enc_flush(st, out)
    if st[5]:
        return E_OVERFLOW, 0
    return OK, st[4]


@_jit
def decode_coefficients(data, start, end, bx, levels):
    """Decode into ``levels`` (nblocks, 64) int32, zeroed by the caller; returns status."""
    nblocks = levels.shape[0]
    P = np.full(N_CCTX, PROB_ONE // 2, dtype=np.int32)
    NC = np.zeros(N_CCTX, dtype=np.uint8)
    nzs = np.zeros(nblocks, dtype=np.int64)
    st = np.zeros(5, dtype=np.int64)
    _dec_init(st, data, start, end)
    for i in range(nblocks):
        base = C_NZ + _nz_ctx(nzs, i, bx) * 64
        node = np.int64(1)
        for _ in range(6):
            node = 2 * node + _dec_bit(st, data, P, NC, base + node)
        nz = node - 64
        nzs[i] = nz
        pred, dact = _dc_context(levels, i, bx)
        r = np.int64(0)
        if _dec_bit(st, data, P, NC, C_DC_ZERO + dact):
            neg = _dec_bit(st, data, P, NC, C_DC_SIGN + dact)
            r = _dec_magnitude(
                st, data, P, NC, C_DC_LEN + dact * CMAX_NBITS, C_DC_MANT + dact * CMAX_NBITS * CMAX_NBITS
            )
            if neg:
                r = -r
        dc = pred + r
        if dc > 0x3FFFFFFF or dc < -0x3FFFFFFF:  # corrupt data: keep int32 arithmetic sane
            return E_RANGE
        levels[i, 0] = dc
        rem = nz
        k = 1
        while rem > 0:
            if k > 63:
                return E_RANGE
            nb = _nbr_bucket(_nbr_mag(levels, i, bx, k))
            zc = C_AC_ZERO + (k * REM_BUCKETS + _rem_bucket(rem)) * NBR_BUCKETS + nb
            if _dec_bit(st, data, P, NC, zc):
                band = POS_BAND[k]
                neg = _dec_bit(st, data, P, NC, C_AC_SIGN + band)
                m = _dec_magnitude(
                    st,
                    data,
                    P,
                    NC,
                    C_AC_LEN + (band * NBR_BUCKETS + nb) * CMAX_NBITS,
                    C_AC_MANT + band * CMAX_NBITS * CMAX_NBITS,
                )
                levels[i, k] = -m if neg else m
                rem -= 1
            k += 1
        if st[4] > 8:
            return E_TRUNCATED
    return E_TRUNCATED if st[4] > 0 else OK


@_jit
def round_scaled(scaled, rounding, out):
    """int32 levels of (nblocks, 64) scaled coefficients as ``quantize.round_levels`` rounds
    them, ``trunc(x + copysign(rounding[k], x))`` (-0.0 gives 0 either way): the levels of
    ``FrameCoder.levels`` from the coefficients the reconstruction offsets need anyway."""
    for i in range(scaled.shape[0]):
        for k in range(64):
            x = scaled[i, k]
            out[i, k] = np.int32(np.trunc(x + rounding[k])) if x >= 0 else np.int32(np.trunc(x - rounding[k]))
    return out


@_jit
def offset_sums(levels, scaled, sums, counts):
    """Per zigzag position: sum of ``|level| - |scaled|`` and count over the non-zero AC levels."""
    for i in range(levels.shape[0]):
        for k in range(1, 64):
            v = levels[i, k]
            if v != 0:
                sums[k] += abs(v) - abs(scaled[i, k])
                counts[k] += 1


@_jit
def offset_levels(levels, offsets, unit, out):
    """``unit * level - sign(level) * offset[k]`` (int32), levels clipped to +-2**22 first."""
    lim = 1 << 22
    for i in range(levels.shape[0]):
        for k in range(64):
            v = levels[i, k]
            if v > lim:
                v = lim
            elif v < -lim:
                v = -lim
            if v > 0:
                out[i, k] = v * unit - offsets[k]
            elif v < 0:
                out[i, k] = v * unit + offsets[k]
            else:
                out[i, k] = 0
    return out


@_jit
def levels_pixels_offsets(zz, offsets, unit, deq_nat, nat_zz, dc_mul, offset, lo, hi, out):
    """:func:`._kernels.levels_pixels` of the levels :func:`offset_levels` makes (``unit * level -
    sign(level) * offset[k]``, levels clipped to +-2**22), without the intermediate array: the
    same integers into the same inverse DCT (``deq_nat`` and ``dc_mul`` already divided by
    ``unit``), so the same pixels, one pass over the levels fewer."""
    lim = 1 << 22
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
        m = 0  # compact rows: only blocks with AC levels take the inverse DCT (KK._compact_next)
        n_dc = 0
        for j in range(bx):
            b = i * bx + j
            for k in range(64):
                v = np.int64(zz[b, k])
                if v > lim:
                    v = np.int64(lim)
                elif v < -lim:
                    v = np.int64(-lim)
                lv[k] = v * unit - offsets[k] if v > 0 else (v * unit + offsets[k] if v < 0 else 0)
            mask = KK._nonzero_mask(lv)
            dc_only[j] = mask == 0
            dc[j] = lv[0]
            n_dc += mask == 0
            if mask == 0 and compact:
                continue
            coef[0, m] = lv[0] * deq_nat[0]
            xs[m] = j
            while mask != 0:
                k = KK._ctz64(mask) + 1
                mask &= mask - 1
                n = nat_zz[k]
                coef[n, m] = lv[k] * deq_nat[n]
            m += 1
        half_even = np.bool_(False)  # .mdc rounds half to even
        KK._strip_ac_blocks(coef, ws, m, xs, strip, bx, target, 8 * i, offset, lo, hi, half_even)
        compact = KK._compact_next(n_dc, bx)
        KK._strip_dc_blocks(dc_only, dc, bx, dc_mul, target, 8 * i, offset, lo, hi, np.bool_(False))
    if padded:
        KK._crop(target, out)
    return out


@_helper
def _deblock_edge(p1, p0, q0, q1, alpha, beta, tc):
    """Correction of p0 (+d) and q0 (-d) across one block edge; 0 where the edge looks real."""
    if abs(p0 - q0) < alpha and abs(p1 - p0) < beta and abs(q1 - q0) < beta:
        d = ((q0 - p0) * 4 + (p1 - q1) + 4) >> 3
        if d > tc:
            return tc
        if d < -tc:
            return -tc
        return d
    return np.int64(0)


@_jit
def deblock(img, alpha, beta, tc, lo, hi):
    """In place: smooth the 8x8 block edges of a decoded frame (vertical edges, then horizontal).

    At each edge (p1 p0 | q0 q1) whose step is below ``alpha`` and whose sides are flatter than
    ``beta``, p0 moves by d and q0 by -d, ``d = clamp(((q0 - p0) * 4 + (p1 - q1) + 4) >> 3,
    -tc, tc)`` (H.264's normal-strength luma filter on the two samples next to the edge). A
    sample moves by at most ``tc`` per direction, ``2 tc`` in all.
    """
    rows, cols = img.shape
    for y in range(rows):
        for x in range(8, cols, 8):
            p1 = np.int64(img[y, x - 2])
            p0 = np.int64(img[y, x - 1])
            q0 = np.int64(img[y, x])
            q1 = np.int64(img[y, x + 1]) if x + 1 < cols else q0
            d = _deblock_edge(p1, p0, q0, q1, alpha, beta, tc)
            if d != 0:
                img[y, x - 1] = min(max(p0 + d, lo), hi)
                img[y, x] = min(max(q0 - d, lo), hi)
    for y in range(8, rows, 8):
        for x in range(cols):
            p1 = np.int64(img[y - 2, x])
            p0 = np.int64(img[y - 1, x])
            q0 = np.int64(img[y, x])
            q1 = np.int64(img[y + 1, x]) if y + 1 < rows else q0
            d = _deblock_edge(p1, p0, q0, q1, alpha, beta, tc)
            if d != 0:
                img[y - 1, x] = min(max(p0 + d, lo), hi)
                img[y, x] = min(max(q0 - d, lo), hi)
    return img


@_jit
def deblock_band_gain(base, frame, starts, band, alpha, beta, tc, lo, hi, work):
    """How much :func:`deblock` lowers the squared error toward ``frame`` on the bands of ``band``
    rows starting at ``starts`` (multiples of 8), each filtered alone in ``work`` (band x cols),
    counted on rows 1 .. band - 2 of each band (there the band alone gives the whole frame's result)."""
    cols = base.shape[1]
    gain = np.int64(0)
    for y0 in starts:
        for y in range(band):
            for x in range(cols):
                work[y, x] = base[y0 + y, x]
        deblock(work, alpha, beta, tc, lo, hi)
        for y in range(1, band - 1):
            for x in range(cols):
                o = np.int64(frame[y0 + y, x])
                d0 = np.int64(base[y0 + y, x]) - o
                d1 = np.int64(work[y, x]) - o
                gain += d0 * d0 - d1 * d1
    return gain


@_jit
def squared_error(a, b):
    s = np.int64(0)
    rows, cols = a.shape
    for y in range(rows):
        for x in range(cols):
            d = np.int64(a[y, x]) - np.int64(b[y, x])
            s += d * d
    return s


# ----------------------------------------------------------------------------- restoration filter

#: Tap pairs of the restoration filter (a 5x5 diamond, point-symmetric): (dy, dx) and its mirror.
FILTER_PAIRS = np.array([[0, 1], [1, 0], [1, 1], [1, -1], [0, 2], [2, 0]], dtype=np.int64)
N_FILTER_TAPS = 6
#: Filter weights are integers in 1/FILTER_UNIT.
FILTER_UNIT = 256
FILTER_SHIFT = 8


@_helper
def _px(img, y, x, rows, cols):
    """Sample at (y, x) with coordinates clamped into the frame (edge replication)."""
    if y < 0:
        y = 0
    elif y >= rows:
        y = rows - 1
    if x < 0:
        x = 0
    elif x >= cols:
        x = cols - 1
    return np.int64(img[y, x])


@_jit
def _padded(img, pad):
    """int32 copy of ``img`` with ``pad`` samples of edge replication on every side."""
    rows, cols = img.shape
    P = np.empty((rows + 2 * pad, cols + 2 * pad), dtype=np.int32)
    for y in range(rows + 2 * pad):
        sy = min(max(y - pad, 0), rows - 1)
        for x in range(cols + 2 * pad):
            sx = min(max(x - pad, 0), cols - 1)
            P[y, x] = img[sy, sx]
    return P


@_jit
def _activity_padded(img, P):
    """Activity (int32, rows x cols) from ``P`` = :func:`_padded` (img, 2)."""
    rows, cols = img.shape
    L = np.empty((rows, cols), dtype=np.int32)
    for y in range(rows):
        # vertical neighbours clamp to the frame: P's replicated rows give exactly that
        for x in range(cols):
            p2 = 2 * P[y + 2, x + 2]
            L[y, x] = abs(p2 - P[y + 2, x + 1] - P[y + 2, x + 3]) + abs(p2 - P[y + 1, x + 2] - P[y + 3, x + 2])
    LP = _padded(L, 1)  # the 3x3 sum over clamped coordinates
    R = np.empty((rows + 2, cols), dtype=np.int32)
    for y in range(rows + 2):
        for x in range(cols):
            R[y, x] = LP[y, x] + LP[y, x + 1] + LP[y, x + 2]
    act = np.empty((rows, cols), dtype=np.int32)
    for y in range(rows):
        for x in range(cols):
            act[y, x] = R[y, x] + R[y + 1, x] + R[y + 2, x]
    return act


@_jit
def filter_activity(img, act):
    """Per sample, the sum over its 3x3 neighbourhood (clamped) of |2p - left - right| + |2p - up - down|."""
    a = _activity_padded(img, _padded(img, 2))
    rows, cols = img.shape
    for y in range(rows):
        for x in range(cols):
            act[y, x] = a[y, x]
    return act


@_jit
def filter_activity_sampled(img, step, out):
    """:func:`filter_activity` at every ``step``-th row and column only: ``out[y // step, x // step]``
    (the encoder's filter statistics need no more)."""
    rows, cols = img.shape
    L = np.empty((rows, cols + 2), dtype=np.int32)  # one clamped column on each side
    for y in range(rows):
        up = max(y - 1, 0)
        dn = min(y + 1, rows - 1)
        for x in range(cols):
            p2 = 2 * np.int64(img[y, x])
            left = np.int64(img[y, max(x - 1, 0)])
            right = np.int64(img[y, min(x + 1, cols - 1)])
            L[y, x + 1] = abs(p2 - left - right) + abs(p2 - np.int64(img[up, x]) - np.int64(img[dn, x]))
        L[y, 0] = L[y, 1]
        L[y, cols + 1] = L[y, cols]
    for y in range(0, rows, step):
        r0 = L[max(y - 1, 0)]
        r1 = L[y]
        r2 = L[min(y + 1, rows - 1)]
        for x in range(0, cols, step):
            a = np.int64(0)
            for dx in range(3):
                a += np.int64(r0[x + dx]) + r1[x + dx] + r2[x + dx]
            out[y // step, x // step] = a
    return out


@_helper
def _tap_diffs(img, y, x, rows, cols, d):
    """d[j] = a_j + b_j - 2p for the FILTER_PAIRS taps around (y, x), coordinates clamped."""
    p2 = 2 * np.int64(img[y, x])
    for j in range(N_FILTER_TAPS):
        dy = FILTER_PAIRS[j, 0]
        dx = FILTER_PAIRS[j, 1]
        d[j] = _px(img, y + dy, x + dx, rows, cols) + _px(img, y - dy, x - dx, rows, cols) - p2


@_helper
def _load_row(img, r, buf):
    """buf[x + 2] = img[r, clamp(x)] for x = -2 .. cols + 1."""
    cols = img.shape[1]
    for x in range(cols):
        buf[x + 2] = img[r, x]
    buf[0] = buf[1] = img[r, 0]
    buf[cols + 2] = buf[cols + 3] = img[r, cols - 1]


@_jit
def restore(img, thresholds, weights, clip, lo, hi, out):
    """The restoration filter: ``out = img + clamp(round(sum_j w[c, j] * (a_j + b_j - 2 p) / 256), -clip, clip)``
    clipped to ``lo..hi``, with ``c`` the number of ``thresholds`` the sample's activity reaches and
    (a_j, b_j) the samples at +-FILTER_PAIRS[j] (clamped coordinates); ``img`` is not modified.

    Streams over the rows with ring buffers (5 edge-padded image rows, 3 rows of horizontally
    summed Laplacians): no frame-sized temporaries."""
    return restore_rows(img, thresholds, weights, clip, lo, hi, out, 0, img.shape[0])


#: Largest ``hi - lo`` (declared sample range) for which the restoration filter runs in int32:
#: ``6 * 32768 * 2 * span + 128 < 2**31`` (six taps of |weight| <= 2**15 on differences
#: ``a + b - 2p`` of at most ``2 * span``), i.e. every 12-bit frame; wider ones run in int64.
#: Twice the SIMD lanes: the decoder's filter pass 1.5-1.8x faster, bit for bit.
RESTORE_INT32_SPAN = (2**31 - 1 - FILTER_UNIT // 2) // (6 * 32768 * 2)


@_jit
def restore_rows(img, thresholds, weights, clip, lo, hi, out, y_from, y_to):
    """:func:`restore` on output rows ``y_from .. y_to - 1`` only (the others of ``out`` are left
    as they are): the encoder's filter search looks at bands of rows. int32 arithmetic when the
    sample range allows it exactly (:data:`RESTORE_INT32_SPAN`), else int64."""
    cols = img.shape[1]
    ncls = thresholds.shape[0] + 1
    if hi - lo <= RESTORE_INT32_SPAN:
        return _restore_rows(img, thresholds, weights, clip, lo, hi, out, y_from, y_to,
                             np.empty((5, cols + 4), np.int32), np.empty((N_FILTER_TAPS, cols), np.int32),
                             np.empty(cols, np.int32), np.empty((ncls, N_FILTER_TAPS), np.int32))  # fmt: skip
    return _restore_rows(img, thresholds, weights, clip, lo, hi, out, y_from, y_to,
                         np.empty((5, cols + 4), np.int64), np.empty((N_FILTER_TAPS, cols), np.int64),
                         np.empty(cols, np.int64), np.empty((ncls, N_FILTER_TAPS), np.int64))  # fmt: skip


@_jit
def _restore_rows(img, thresholds, weights, clip, lo, hi, out, y_from, y_to, B, W, acc, w):
    """:func:`restore_rows` with work buffers of one integer type (int32 or int64): ``B`` (5,
    cols + 4) edge-padded image rows (row r in slot r % 5), ``W`` (6, cols) the weights of each
    sample's class, ``acc`` (cols) the weighted sums, ``w`` (classes, 6) the weights."""
    rows, cols = img.shape
    ncls = thresholds.shape[0] + 1
    for c in range(ncls):
        for j in range(N_FILTER_TAPS):
            w[c, j] = weights[c, j]
    lim = np.empty(4, dtype=acc.dtype)  # the constants in the work type: clip, lo, hi, half
    lim[0] = clip
    lim[1] = lo
    lim[2] = hi
    lim[3] = FILTER_UNIT // 2
    clip_t, lo_t, hi_t, half = lim[0], lim[1], lim[2], lim[3]
    # int32 from here on (activity < 9 * 4 * 65535 < 2**31): twice the lanes per vector
    H = np.empty((3, cols), dtype=np.int32)  # 3-tap sum of the Laplacian row r in slot r % 3
    L = np.empty(cols + 2, dtype=np.int32)
    cls = np.zeros(cols, dtype=np.int32)
    A = np.empty(cols, dtype=np.int32)
    loaded = np.full(5, -1, dtype=np.int64)
    for y in range(max(y_from - 2, -1), min(y_to, rows)):
        # make image rows up to y + 2 available, then the Laplacian sums of row y + 1
        r_new = min(y + 2, rows - 1)
        for r in range(max(r_new - 4, 0), r_new + 1):
            if loaded[r % 5] != r:
                _load_row(img, r, B[r % 5])
                loaded[r % 5] = r
        rl = y + 1
        if rl < rows and ncls > 1:  # one class: no activity needed
            up = B[max(rl - 1, 0) % 5]
            mid = B[rl % 5]
            dn = B[min(rl + 1, rows - 1) % 5]
            for x in range(cols):
                p2 = 2 * np.int32(mid[x + 2])
                L[x + 1] = abs(p2 - np.int32(mid[x + 1]) - np.int32(mid[x + 3])) + abs(
                    p2 - np.int32(up[x + 2]) - np.int32(dn[x + 2])
                )
            L[0] = L[1]
            L[cols + 1] = L[cols]
            h = H[rl % 3]
            for x in range(cols):
                h[x] = L[x] + L[x + 1] + L[x + 2]
        if y < y_from:
            continue
        h0 = H[max(y - 1, 0) % 3]
        h1 = H[y % 3]
        h2 = H[min(y + 1, rows - 1) % 3]
        m2 = B[max(y - 2, 0) % 5]
        m1 = B[max(y - 1, 0) % 5]
        c0 = B[y % 5]
        p1 = B[min(y + 1, rows - 1) % 5]
        p2r = B[min(y + 2, rows - 1) % 5]
        # row-wise passes without branches (numba vectorises them): class, weighted taps, rounding
        if ncls > 1:  # class = thresholds reached, one threshold at a time (vectorises)
            for x in range(cols):
                A[x] = h0[x] + h1[x] + h2[x]
                cls[x] = 0
            for t in range(ncls - 1):
                th = np.int32(min(thresholds[t], np.int64(0x7FFFFFFF)))  # above any activity either way
                for x in range(cols):
                    cls[x] += A[x] >= th
        if ncls == 1:
            a0, a1, a2, a3, a4, a5 = w[0, 0], w[0, 1], w[0, 2], w[0, 3], w[0, 4], w[0, 5]
            for x in range(cols):  # one class: the weights are constants, the loop vectorises
                k = x + 2
                pp = 2 * c0[k]
                acc[x] = (
                    a0 * (c0[k + 1] + c0[k - 1] - pp)
                    + a1 * (p1[k] + m1[k] - pp)
                    + a2 * (p1[k + 1] + m1[k - 1] - pp)
                    + a3 * (p1[k - 1] + m1[k + 1] - pp)
                    + a4 * (c0[k + 2] + c0[k - 2] - pp)
                    + a5 * (p2r[k] + m2[k] - pp)
                )
        else:
            for x in range(cols):  # gather the class weights first, then a loop that vectorises
                c = cls[x]
                W[0, x] = w[c, 0]
                W[1, x] = w[c, 1]
                W[2, x] = w[c, 2]
                W[3, x] = w[c, 3]
                W[4, x] = w[c, 4]
                W[5, x] = w[c, 5]
            for x in range(cols):
                k = x + 2
                pp = 2 * c0[k]
                acc[x] = (
                    W[0, x] * (c0[k + 1] + c0[k - 1] - pp)
                    + W[1, x] * (p1[k] + m1[k] - pp)
                    + W[2, x] * (p1[k + 1] + m1[k - 1] - pp)
                    + W[3, x] * (p1[k - 1] + m1[k + 1] - pp)
                    + W[4, x] * (c0[k + 2] + c0[k - 2] - pp)
                    + W[5, x] * (p2r[k] + m2[k] - pp)
                )
        for x in range(cols):
            s_ = acc[x]
            mag = min((abs(s_) + half) >> FILTER_SHIFT, clip_t)  # sign(s) * floor((|s| + 128) / 256), clamped
            delta = mag if s_ >= 0 else -mag
            out[y, x] = min(max(c0[x + 2] + delta, lo_t), hi_t)
    return out


#: The encoder's filter statistics and texture checks look at every FILTER_SAMPLE-th row and column.
FILTER_SAMPLE = 2


@_jit
def filter_stats(dec, orig, bins, nbins, ata, atb, counts, energy_dec, energy_orig):
    """Encoder statistics of the restoration filter per activity bin (``bins``: one per sampled
    sample, ``[y // FILTER_SAMPLE, x // FILTER_SAMPLE]``), on every FILTER_SAMPLE-th row and
    column: normal equations of the tap differences of ``dec`` toward ``orig - dec`` (``ata``
    (nbins, 6, 6), upper triangle; ``atb`` (nbins, 6)), sample counts, and the squared
    4-neighbour Laplacian of ``dec`` and of ``orig``; all accumulated.

    The sums go to a local (nbins, 29) table, 27 products per sample from registers, then into
    the caller's arrays (1.7x faster than accumulating into ``ata[b, i, j]`` directly; the same
    sums, added in the same order)."""
    rows, cols = dec.shape
    acc = np.zeros((nbins, 29))  # 21 ata (upper), 6 atb, 2 energies
    cnt = np.zeros(nbins, np.int64)
    for y in range(0, rows, FILTER_SAMPLE):
        ym2, ym1, yp1, yp2 = max(y - 2, 0), max(y - 1, 0), min(y + 1, rows - 1), min(y + 2, rows - 1)
        for x in range(0, cols, FILTER_SAMPLE):
            xm2, xm1, xp1, xp2 = max(x - 2, 0), max(x - 1, 0), min(x + 1, cols - 1), min(x + 2, cols - 1)
            b = bins[y // FILTER_SAMPLE, x // FILTER_SAMPLE]
            p = np.int64(dec[y, x])
            pp = 2 * p
            d0 = np.float64(np.int64(dec[y, xp1]) + dec[y, xm1] - pp)
            d1 = np.float64(np.int64(dec[yp1, x]) + dec[ym1, x] - pp)
            d2 = np.float64(np.int64(dec[yp1, xp1]) + dec[ym1, xm1] - pp)
            d3 = np.float64(np.int64(dec[yp1, xm1]) + dec[ym1, xp1] - pp)
            d4 = np.float64(np.int64(dec[y, xp2]) + dec[y, xm2] - pp)
            d5 = np.float64(np.int64(dec[yp2, x]) + dec[ym2, x] - pp)
            q = np.int64(orig[y, x])
            t = np.float64(q - p)
            a = acc[b]
            a[0] += d0 * d0
            a[1] += d0 * d1
            a[2] += d0 * d2
            a[3] += d0 * d3
            a[4] += d0 * d4
            a[5] += d0 * d5
            a[6] += d1 * d1
            a[7] += d1 * d2
            a[8] += d1 * d3
            a[9] += d1 * d4
            a[10] += d1 * d5
            a[11] += d2 * d2
            a[12] += d2 * d3
            a[13] += d2 * d4
            a[14] += d2 * d5
            a[15] += d3 * d3
            a[16] += d3 * d4
            a[17] += d3 * d5
            a[18] += d4 * d4
            a[19] += d4 * d5
            a[20] += d5 * d5
            a[21] += d0 * t
            a[22] += d1 * t
            a[23] += d2 * t
            a[24] += d3 * t
            a[25] += d4 * t
            a[26] += d5 * t
            ld = d0 + d1
            lq = np.float64(np.int64(orig[y, xp1]) + orig[y, xm1] + orig[yp1, x] + orig[ym1, x] - 4 * q)
            a[27] += ld * ld
            a[28] += lq * lq
            cnt[b] += 1
    for b in range(nbins):
        m = 0
        for i in range(N_FILTER_TAPS):
            for j in range(i, N_FILTER_TAPS):
                ata[b, i, j] += acc[b, m]
                m += 1
            atb[b, i] += acc[b, 21 + i]
        energy_dec[b] += acc[b, 27]
        energy_orig[b] += acc[b, 28]
        counts[b] += cnt[b]


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def filter_stats_one(dec, orig, ata, atb, counts, energy_dec, energy_orig):
    """:func:`filter_stats` with one bin (the one-class filter of fast encoding: no activity), a
    row at a time: the tap differences of a row's sampled samples into vectors, then the 29 sums
    as dot products over them (vectorised; ~5x faster). The same sums: every term is an integer
    and, below 2**53, float64 adds integers exactly in any order (a 512 x 512 16-bit frame's
    largest sum is ~2**50)."""
    rows, cols = dec.shape
    n = (cols + FILTER_SAMPLE - 1) // FILTER_SAMPLE
    D = np.empty((8, n))  # d0..d5, t, then one scratch row
    ld = np.empty(n)
    lq = np.empty(n)
    acc = np.zeros(29)
    cnt = np.int64(0)
    for y in range(0, rows, FILTER_SAMPLE):
        ym2, ym1, yp1, yp2 = max(y - 2, 0), max(y - 1, 0), min(y + 1, rows - 1), min(y + 2, rows - 1)
        r0, ru, rd, ru2, rd2 = dec[y], dec[ym1], dec[yp1], dec[ym2], dec[yp2]
        o0, ou, od = orig[y], orig[ym1], orig[yp1]
        i_lo = 1  # interior samples: x - 2 >= 0 and x + 2 <= cols - 1, no clamping (vectorises)
        i_hi = max((cols - 3) // FILTER_SAMPLE + 1, i_lo)
        for i in range(i_lo, min(i_hi, n)):
            x = i * FILTER_SAMPLE
            p = np.int64(r0[x])
            pp = 2 * p
            d0 = np.int64(r0[x + 1]) + r0[x - 1] - pp
            d1 = np.int64(rd[x]) + ru[x] - pp
            D[0, i] = d0
            D[1, i] = d1
            D[2, i] = np.int64(rd[x + 1]) + ru[x - 1] - pp
            D[3, i] = np.int64(rd[x - 1]) + ru[x + 1] - pp
            D[4, i] = np.int64(r0[x + 2]) + r0[x - 2] - pp
            D[5, i] = np.int64(rd2[x]) + ru2[x] - pp
            q = np.int64(o0[x])
            D[6, i] = q - p
            ld[i] = d0 + d1
            lq[i] = np.int64(o0[x + 1]) + o0[x - 1] + od[x] + ou[x] - 4 * q
        for i in range(n):
            if i_lo <= i < i_hi:
                continue
            x = i * FILTER_SAMPLE
            xm2, xm1, xp1, xp2 = max(x - 2, 0), max(x - 1, 0), min(x + 1, cols - 1), min(x + 2, cols - 1)
            p = np.int64(dec[y, x])
            pp = 2 * p
            d0 = np.int64(dec[y, xp1]) + dec[y, xm1] - pp
            d1 = np.int64(dec[yp1, x]) + dec[ym1, x] - pp
            D[0, i] = d0
            D[1, i] = d1
            D[2, i] = np.int64(dec[yp1, xp1]) + dec[ym1, xm1] - pp
            D[3, i] = np.int64(dec[yp1, xm1]) + dec[ym1, xp1] - pp
            D[4, i] = np.int64(dec[y, xp2]) + dec[y, xm2] - pp
            D[5, i] = np.int64(dec[yp2, x]) + dec[ym2, x] - pp
            q = np.int64(orig[y, x])
            D[6, i] = q - p
            ld[i] = d0 + d1
            lq[i] = np.int64(orig[y, xp1]) + orig[y, xm1] + orig[yp1, x] + orig[ym1, x] - 4 * q
        m = 0
        for a in range(N_FILTER_TAPS):
            for b in range(a, N_FILTER_TAPS):
                s = 0.0
                for i in range(n):
                    s += D[a, i] * D[b, i]
                acc[m] += s
                m += 1
        for a in range(N_FILTER_TAPS):
            s = 0.0
            for i in range(n):
                s += D[a, i] * D[6, i]
            acc[21 + a] += s
        s = 0.0
        s2 = 0.0
        for i in range(n):
            s += ld[i] * ld[i]
            s2 += lq[i] * lq[i]
        acc[27] += s
        acc[28] += s2
        cnt += n
    m = 0
    for i in range(N_FILTER_TAPS):
        for j in range(i, N_FILTER_TAPS):
            ata[0, i, j] += acc[m]
            m += 1
        atb[0, i] += acc[21 + i]
    energy_dec[0] += acc[27]
    energy_orig[0] += acc[28]
    counts[0] += cnt


@_jit
def band_laplacian_energy(img, bins, out, y_from, y_to):
    """:func:`laplacian_energy` on the sampled positions whose rows and both row neighbours lie in
    ``y_from .. y_to - 1`` (the columns clamped to the frame as there)."""
    rows, cols = img.shape
    first = max(y_from + 1, 0)
    first += (-first) % FILTER_SAMPLE
    for y in range(first, min(y_to - 1, rows), FILTER_SAMPLE):
        if y + 1 >= rows:
            break
        for x in range(0, cols, FILTER_SAMPLE):
            p2 = 2 * np.int64(img[y, x])
            v = np.float64(np.int64(img[y, min(x + 1, cols - 1)]) + img[y, max(x - 1, 0)] + img[y + 1, x]
                           + img[y - 1, x] - 2 * p2)  # fmt: skip
            out[bins[y // FILTER_SAMPLE, x // FILTER_SAMPLE]] += v * v
    return out


@_jit
def laplacian_energy(img, bins, out):
    """Per bin, the sum of the squared 4-neighbour Laplacian of ``img`` (clamped) on every
    FILTER_SAMPLE-th row and column, accumulated into ``out``."""
    rows, cols = img.shape
    P = _padded(img, 2)
    for y in range(0, rows, FILTER_SAMPLE):
        for x in range(0, cols, FILTER_SAMPLE):
            p2 = 2 * np.int64(P[y + 2, x + 2])
            v = np.float64(np.int64(P[y + 2, x + 3]) + P[y + 2, x + 1] + P[y + 3, x + 2] + P[y + 1, x + 2] - 2 * p2)
            out[bins[y // FILTER_SAMPLE, x // FILTER_SAMPLE]] += v * v
    return out
