"""Predictive lossless / near-lossless frame coding (array <-> bytes), the ``.mdc`` v2 spatial mode.

One frame at a time: :func:`encode_frame` codes it so that every decoded sample is within
``max_error`` of the original (``0``: bit-exact), and **checks that by decoding** before it
returns; :func:`decode_frame` inverts it. The algorithm (LOCO-I style prediction and bias
correction, near-lossless residual quantization, context-adaptive binary range coding) is
in :mod:`._kernels_v2` and specified in ``docs/format.md`` §10-11.

:func:`encode_frame_reference` / :func:`decode_frame_reference` are the plain-Python twins
(built on :mod:`.arith`), bit-exact with the kernels on small frames; they are for tests only
(about 10^4 samples per second).

Why a bound holds: the residual ``e`` between a sample and its prediction is quantized to
``round(e / (2k+1))`` (ties away from zero, ISO 14495-1 §A.4.4), so the reconstruction
``prediction + (2k+1) * level`` is within ``k`` of the sample; clamping to the frame's
[min, max] can only move it closer, since the sample lies in that range. A modular level
(format 2.8) differs from that level by the range's step count, which moves the reconstruction
outside [min - k, max + k]; the wrap back is exact (§10.2 step 5). The decoder repeats the
encoder's predictions from the same reconstructed samples, so both agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import CodecError, CorruptStreamError, InvalidInputError, TruncatedStreamError
from . import _kernels_v2 as K
from .arith import Contexts, RangeDecoder, RangeEncoder

__all__ = [
    "PREDICTORS",
    "MAX_ERROR_LIMIT",
    "FrameParams",
    "encode_frame",
    "encode_frame_smallest",
    "distinct_values",
    "packing_estimate",
    "decode_frame",
    "encode_frame_reference",
    "decode_frame_reference",
]

#: Predictor codes of the FRAM header: 0 = MED (LOCO-I median edge detector), 1 = blend of
#: six linear predictors weighted by their recent errors (the default: 1-5% smaller on CT/MR/CR).
PREDICTORS = {"med": 0, "blend": 1}
#: Largest ``max_error`` accepted (a bound beyond this is better served by the DCT modes).
MAX_ERROR_LIMIT = 255


@dataclass(frozen=True)
class FrameParams:
    """What a predictive frame's decoder needs besides its bytes (stored in its FRAM header)."""

    max_error: int
    vmin: int
    vmax: int
    t1: int
    t2: int
    t3: int
    predictor: int = PREDICTORS["blend"]
    #: Run mode (format 2.7, ``docs/format.md`` §10.4; FRAM flag 1): where the local gradients are
    #: all within ``max_error`` the samples that follow are coded as a run of the left neighbour.
    runs: bool = False
    #: Levels reduced modulo the frame's quantized range (format 2.8, §10.2 step 5; FRAM flag 2):
    #: a jump across most of the range (a label on black) codes as a short step the other way.
    modular: bool = False
    #: Run bits' contexts from the row above (format 2.8, §10.4; FRAM flag 4; with ``runs`` only).
    run_above: bool = False
    #: A packed frame (format 2.9, §10.5; FRAM flag 8; lossless only): the frame's distinct values,
    #: increasing; the coder codes each sample's index into them, ``vmin`` = 0, ``vmax`` = count - 1.
    values: tuple[int, ...] | None = None

    @classmethod
    def for_frame(
        cls, frame: np.ndarray, max_error: int, predictor: int = PREDICTORS["blend"], *, runs: bool = True,
        modular: bool = False, packed: bool = False,
    ) -> FrameParams:  # fmt: skip
        """The header an encoder writes for ``frame``: its own extremes, the JPEG-LS default
        thresholds; with ``modular``, format 2.8's tools (``run_above`` with ``runs``); with
        ``packed``, format 2.9's table of its distinct values (exact: ``max_error`` becomes 0)."""
        values = distinct_values(frame) if packed else None
        max_error = 0 if packed else max_error
        vmin, vmax = (0, len(values) - 1) if values is not None else (int(frame.min()), int(frame.max()))
        return cls(
            max_error, vmin, vmax, *K.default_thresholds(vmax - vmin, max_error), predictor=predictor, runs=runs,
            modular=modular, run_above=runs and modular, values=values,
        )  # fmt: skip

    def validate(self, *, offset: int | None = None, segment: str | None = None) -> None:
        """Raise :class:`CorruptStreamError` unless the parameters are consistent."""
        problems = []
        if not 0 <= self.max_error <= MAX_ERROR_LIMIT:
            problems.append(f"max_error {self.max_error} outside 0..{MAX_ERROR_LIMIT}")
        if not (-(1 << 16) <= self.vmin <= self.vmax < (1 << 16)):
            problems.append(f"value range {self.vmin}..{self.vmax} is not a 16-bit range")
        if not 0 < self.t1 <= self.t2 <= self.t3:
            problems.append(f"thresholds {self.t1}, {self.t2}, {self.t3} not increasing and positive")
        if self.predictor not in PREDICTORS.values():
            problems.append(f"predictor code {self.predictor} unknown")
        if self.run_above and not self.runs:
            problems.append("run contexts from the row above without run mode")
        if self.values is not None:
            n = len(self.values)
            if self.max_error or not n or (self.vmin, self.vmax) != (0, n - 1):
                problems.append(f"a packed frame needs max_error 0 and the index range 0..{n - 1}")
            elif n > 1 and not bool(np.all(np.diff(np.asarray(self.values, np.int64)) > 0)):
                problems.append("a packed frame's values are not increasing")
        if problems:
            raise CorruptStreamError("; ".join(problems), offset=offset, segment=segment)


#: Packing (format 2.9) by the cheap estimate of :func:`packing_estimate` (the cost of the residuals
#: in index space, table included, over that in value space): at most ``PACK_SURE`` the frame is
#: packed; up to ``PACK_TRY`` it is coded both ways and the smaller kept; above, not packed. On the
#: benchmark's images (docs/design-notes.md, "Packed frames") the estimate ranks them as the coder
#: does: the DX chest 0.68 (packing pays 28 %), the 14-bit CT 0.983 (2 %), the palette ultrasound
#: 0.985 (4 %), the dense CT / MR 1.002-1.006 (the table would cost 0.2-1 %).
PACK_SURE = 0.95
PACK_TRY = 1.0


def distinct_values(frame: np.ndarray) -> tuple[int, ...]:
    """The distinct values of an integer frame, increasing (a histogram over its range: O(n))."""
    img = np.asarray(frame)
    lo = int(img.min())
    counts = np.bincount((img.astype(np.int64) - lo).ravel())
    return tuple(int(v) + lo for v in np.flatnonzero(counts))


def _to_indices(img: np.ndarray, values: tuple[int, ...]) -> np.ndarray:
    """Each sample's index in the increasing ``values`` (a lookup table over their range: O(n))."""
    img = np.asarray(img)
    lo, hi = values[0], values[-1]
    if img.size and (int(img.min()) < lo or int(img.max()) > hi):
        raise InvalidInputError("frame values outside the packed frame's table")
    lut = np.full(hi - lo + 1, -1, dtype=np.int32)
    lut[np.asarray(values, dtype=np.int64) - lo] = np.arange(len(values), dtype=np.int32)
    idx = lut.take(img.astype(np.int32, copy=False) - np.int32(lo))  # within lo..hi: no overflow
    if idx.size and int(idx.min()) < 0:
        raise InvalidInputError("frame values outside the packed frame's table")
    return idx


def _residual_bits(x: np.ndarray) -> float:
    """A cheap stand-in for the coder's cost: log2(1 + |MED residual|) + 1 per non-zero residual,
    on every 4th row (times 4)."""
    x = np.asarray(x, dtype=np.int64)
    if x.shape[0] < 2 or x.shape[1] < 2:
        return 0.0
    rows = np.arange(1, x.shape[0], 4)
    a, b, c, cur = x[rows, :-1], x[rows - 1, 1:], x[rows - 1, :-1], x[rows, 1:]
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    e = np.abs(cur - np.where(c >= hi, lo, np.where(c <= lo, hi, a + b - c)))
    return float(np.sum(np.log2(1.0 + e) + (e > 0))) * 4.0


def packing_estimate(img: np.ndarray) -> tuple[tuple[int, ...], float] | None:
    """The frame's distinct values and the estimated cost of coding their indices (format 2.9, the
    table's bits counted) over that of coding the values; ``None`` for a dense frame (every value
    of its range used: the indices would be the values shifted)."""
    values = distinct_values(img)
    if len(values) == values[-1] - values[0] + 1:
        return None
    gaps = np.diff(np.asarray(values, dtype=np.int64))
    table_bits = float(np.sum(2.0 * np.log2(gaps) + 1.0)) + 64.0
    plain = _residual_bits(img)
    packed = _residual_bits(_to_indices(img, values)) + table_bits
    return values, (packed / plain if plain > 0 else float("inf"))


def encode_frame(frame: np.ndarray, params: FrameParams, *, verify: bool = True) -> bytes:
    """Code one 2-D integer frame; with ``verify`` decode it and check the error bound.

    Raises
    ------
    InvalidInputError
        Frame not 2-D integer, or samples outside ``params``' range.
    CodecError
        The decoded frame breaks the bound (a bug in the codec, never expected).
    """
    if frame.ndim != 2 or frame.dtype.kind not in "iu":
        raise InvalidInputError(f"a frame must be a 2-D integer array, got {frame.dtype} {frame.shape}")
    img = np.ascontiguousarray(frame, dtype=np.int32)
    coded = img if params.values is None else _to_indices(img, params.values)
    if coded.size and (int(coded.min()) < params.vmin or int(coded.max()) > params.vmax):
        raise InvalidInputError(f"frame values outside the declared range {params.vmin}..{params.vmax}")
    cap = img.size * 3 + 1024
    while True:
        out = np.empty(cap, dtype=np.uint8)
        status, n = K.encode_predictive(
            coded, params.max_error, params.vmin, params.vmax, params.t1, params.t2, params.t3, params.predictor, out,
            params.runs, params.modular, params.run_above,
        )  # fmt: skip
        if status == K.OK:
            break
        cap *= 2  # incompressible noise: more than 3 bytes per sample (never seen; bounded by 2**31)
        if cap > 1 << 31:
            raise CodecError("predictive coder: output larger than 2 GiB for one frame")
    data = out[:n].tobytes()
    if verify:
        _verify(data, params, img)
    return data


def encode_frame_smallest(
    frame: np.ndarray, max_error: int, predictor: int = PREDICTORS["blend"], *, modular: bool = True,
    packing: bool = False,
) -> tuple[FrameParams, bytes]:  # fmt: skip
    """Code one frame with and without run mode (§10.4) and keep the smaller (ties: without),
    verified by decoding; returns its parameters and bytes. ``modular``: with format 2.8's tools
    (both ways), ``False`` as format 2.7 codes. ``packing`` (format 2.9): code the indices of the
    frame's distinct values, losslessly, where :func:`packing_estimate` says it pays: packed alone
    when it is sure (lossless only), both ways and the smaller kept when it is not, and
    near-lossless (a packed frame is exact, within any bound, and on a sparse histogram it can be
    smaller than the ``max_error`` coding); ties: the first candidate, unpacked and without runs.

    Neither choice wins everywhere (docs/design-notes.md, "Run mode"): runs save 3-12 % on
    radiographs and ultrasound with flat backgrounds and burned-in text at ``max_error=0``, and
    cost up to 17 % on smooth CT at ``max_error=3``, where a zero level in regular mode is cheaper
    than a run that keeps breaking. Trying both costs one more encoding pass per frame.
    """
    img = np.ascontiguousarray(frame, dtype=np.int32)
    estimate = packing_estimate(img) if packing and img.size else None
    candidates = []
    if estimate is None or estimate[1] > PACK_SURE or max_error > 0:
        candidates.append(FrameParams.for_frame(img, max_error, predictor, runs=False, modular=modular))
    if estimate is not None and estimate[1] <= PACK_TRY:
        n = len(estimate[0])  # the values already found: FrameParams.for_frame(packed=True) without a second pass
        thresholds = K.default_thresholds(n - 1, 0)
        candidates.append(
            FrameParams(0, 0, n - 1, *thresholds, predictor=predictor, modular=modular, values=estimate[0])
        )
    candidates += [dataclasses.replace(p, runs=True, run_above=modular) for p in candidates]
    best = min(((p, encode_frame(img, p, verify=False)) for p in candidates), key=lambda pd: len(pd[1]))
    _verify(best[1], best[0], img)
    return best


def _verify(data: bytes, params: FrameParams, img: np.ndarray) -> None:
    dec = decode_frame(data, params, img.shape)
    err = int(np.abs(dec.astype(np.int64) - img).max()) if img.size else 0
    if err > params.max_error:
        raise CodecError(
            f"internal error: decoded frame has max |error| {err} > max_error {params.max_error}; please report"
        )


def decode_frame(
    data: bytes | np.ndarray,
    params: FrameParams,
    shape: tuple[int, int],
    *,
    start: int = 0,
    end: int | None = None,
    out: np.ndarray | None = None,
    offset: int | None = None,
    segment: str | None = None,
) -> np.ndarray:
    """Decode one frame coded by :func:`encode_frame` (``data[start:end]``) into int32 or ``out``.

    Raises
    ------
    TruncatedStreamError
        The coded data ends before the frame does.
    """
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    end = len(buf) if end is None else end
    if not 0 <= start <= end <= len(buf):
        raise CorruptStreamError(f"coded data {start}..{end} outside the buffer", offset=offset, segment=segment)
    params.validate(offset=offset, segment=segment)
    target = np.empty(shape, dtype=np.int32)
    status = K.decode_predictive(
        buf, start, end, params.max_error, params.vmin, params.vmax, params.t1, params.t2, params.t3,
        params.predictor, target, params.runs, params.modular, params.run_above,
    )  # fmt: skip
    if status != K.OK:
        raise TruncatedStreamError("predictive coded data ends before the frame does", offset=offset, segment=segment)
    if params.values is not None:  # indices 0..n-1 (the decoder clamps to vmin..vmax) -> the values
        target = np.asarray(params.values, dtype=np.int64)[target].astype(np.int32)
    if out is None:
        return target
    out[...] = target
    return out


# ----------------------------------------------------------------------------- plain-Python twin


def _grad_q(d: int, p: FrameParams) -> int:
    k = p.max_error
    if d <= -p.t3:
        return -4
    if d <= -p.t2:
        return -3
    if d <= -p.t1:
        return -2
    if d < -k:
        return -1
    if d <= k:
        return 0
    if d < p.t1:
        return 1
    if d < p.t2:
        return 2
    if d < p.t3:
        return 3
    return 4


def _act_bucket(v: int) -> int:
    v = min(v, K._ACT_LUT_SIZE - 1)
    edges = [int(x) for x in K.ACT_EDGES]
    return max(i for i, e in enumerate(edges) if e <= v)


def _div_round_half_up(num: int, den: int) -> int:
    """num / den rounded to nearest, halves away from zero (den > 0)."""
    return (num + den // 2) // den if num >= 0 else -((-num + den // 2) // den)


def _subpredictions(a: int, b: int, c: int, d: int) -> list[int]:
    """The blend's six sub-predictions, in eighths (§10.2 step 4)."""
    return [8 * (a + b - c), 8 * (a + d - b), 4 * (a + b), 8 * b + 4 * (a - c), 2 * (a + b + c + d),
            4 * (a + b) + 2 * (d - c)]  # fmt: skip


def _run_bucket(n: int) -> int:
    return n if n < 4 else min(n.bit_length() + 1, K.N_RUN - 1)


def _run_ctx(m: _Model, y: int, x: int, n: int, ra: int) -> int:
    """Context of a run bit (§10.4): the run's length so far and, with ``run_above`` (format 2.8),
    whether N and NE of the sample are farther than k from the run's value ``ra``."""
    ctx = K.CTX_RUN + _run_bucket(n)
    if m.p.run_above and y > 0:
        b = m.R[y - 1][x]
        d = m.R[y - 1][x + 1] if x + 1 < m.cols else b
        k = m.p.max_error
        ctx += K.N_RUN * (abs(b - ra) > k) + 2 * K.N_RUN * (abs(d - ra) > k)
    return ctx


def _modular(e: int, rng: int) -> int:
    """Level ``e`` reduced modulo ``rng`` (format 2.8, §10.2 step 5)."""
    e = e + rng if e < 0 else e
    return e - rng if e >= (rng + 1) // 2 else e


def _quantize(e: int, k: int) -> int:
    """The level of residual ``e`` for bound ``k`` (§10.2 step 5)."""
    if not k:
        return e
    scale = 2 * k + 1
    return (e + k) // scale if e > 0 else -((k - e) // scale)


class _Model:
    """The per-pixel model of ``docs/format.md`` §10, one plain-Python object per frame."""

    def __init__(self, p: FrameParams, rows: int, cols: int):
        self.p, self.rows, self.cols = p, rows, cols
        self.R = [[0] * cols for _ in range(rows)]
        self.E = [[0] * (cols + 1) for _ in range(2)]
        self.EP = [[[0] * (cols + 1) for _ in range(2)] for _ in range(K.N_SUB)]
        self.B = [0] * K.N_TEX
        self.C = [0] * K.N_TEX
        self.N = [1] * K.N_TEX
        self.scale = 2 * p.max_error + 1
        #: Levels are reduced modulo this many steps (format 2.8), 0: not reduced.
        self.rng = (p.vmax - p.vmin + 2 * p.max_error) // self.scale + 1 if p.modular else 0

    def neighbours(self, y: int, x: int) -> tuple[int, int, int, int]:
        """(a, b, c, d) = W, N, NW, NE of pixel (y, x) (§10.2 step 1)."""
        p, R, cols = self.p, self.R, self.cols
        if y == 0:
            a = b = c = d = (p.vmin + p.vmax) // 2 if x == 0 else R[0][x - 1]
        else:
            b = R[y - 1][x]
            a, c = (b, b) if x == 0 else (R[y][x - 1], R[y - 1][x - 1])
            d = R[y - 1][x + 1] if x + 1 < cols else b
        return a, b, c, d

    def run_sample(self, y: int, x: int, rx: int) -> None:
        """Record a sample coded in run mode (§10.4): level 0, no bias update."""
        a, b, c, d = self.neighbours(y, x)
        cur = y & 1
        if self.p.predictor != 0:
            for i, s in enumerate(_subpredictions(a, b, c, d)):
                self.EP[i][cur][x] = abs(8 * rx - s)
        self.R[y][x] = rx
        self.E[cur][x] = 0

    def predict(self, y: int, x: int) -> tuple[int, int, int, int, list[int]]:
        """(prediction, sign, texture context, activity context, sub-predictions) of pixel (y, x)."""
        p, cols = self.p, self.cols
        a, b, c, d = self.neighbours(y, x)
        cur, prv = y & 1, (y & 1) ^ 1
        E = self.E
        eW = E[cur][x - 1] if x > 0 else E[prv][x]
        eNE = E[prv][x + 1] if x + 1 < cols else E[prv][x]
        q = (_grad_q(d - b, p) * 9 + _grad_q(b - c, p)) * 9 + _grad_q(c - a, p)
        g = (abs(d - b) + abs(b - c) + abs(c - a)) // self.scale
        e = 2 * eW + E[prv][x] + eNE
        shape = 0 if 2 * g < e else (1 if g < 2 * e else 2)
        act = _act_bucket(g + e) * 3 + shape
        sign = -1 if q < 0 else 1
        q = abs(q)
        subs: list[int] = []
        if p.predictor == 0:
            if c >= max(a, b):
                px = min(a, b)
            elif c <= min(a, b):
                px = max(a, b)
            else:
                px = a + b - c
        else:
            subs = _subpredictions(a, b, c, d)
            num = den = 0
            for i, s in enumerate(subs):
                EPi = self.EP[i]
                tot = EPi[prv][x] + EPi[prv][x + 1] + 1
                tot += (EPi[cur][x - 1] + EPi[prv][x - 1]) if x > 0 else 2 * EPi[prv][x]
                w = max((1 << 36) // (tot * tot), 1)
                num += w * s
                den += w
            px = _div_round_half_up(num, 8 * den)
        px = min(max(px + sign * self.C[q], p.vmin), p.vmax)
        return px, sign, q, act, subs

    def update(self, y: int, x: int, px: int, sign: int, q: int, e: int, subs: list[int]) -> int:
        p, k = self.p, self.p.max_error
        rx = px + sign * e * self.scale
        if self.rng and rx < p.vmin - k:  # a modular level (format 2.8): wrapped back into range
            rx += self.rng * self.scale
        elif self.rng and rx > p.vmax + k:
            rx -= self.rng * self.scale
        rx = min(max(rx, p.vmin), p.vmax)
        self.R[y][x] = rx
        cur = y & 1
        self.E[cur][x] = abs(e)
        for i, s in enumerate(subs):
            self.EP[i][cur][x] = abs(8 * rx - s)
        B, C, N = self.B, self.C, self.N
        B[q] += e * self.scale
        if N[q] == K.RESET:
            B[q] = B[q] >> 1 if B[q] >= 0 else -((-B[q] + 1) >> 1)
            N[q] >>= 1
        N[q] += 1
        n = N[q]
        if B[q] <= -n:
            B[q] += n
            C[q] = max(C[q] - 1, -128)
            if B[q] <= -n:
                B[q] = -n + 1
        elif B[q] > 0:
            B[q] -= n
            C[q] = min(C[q] + 1, 127)
            if B[q] > 0:
                B[q] = 0
        return rx


def encode_frame_reference(frame: np.ndarray, params: FrameParams) -> bytes:
    """Plain-Python twin of :func:`encode_frame` (no verification): the same bytes, slowly."""
    if params.values is not None:
        frame = _to_indices(np.asarray(frame), params.values)
    rows, cols = frame.shape
    m = _Model(params, rows, cols)
    enc = RangeEncoder(Contexts(K.N_CTX_RUNS))
    k = params.max_error
    for y in range(rows):
        x, broken = 0, False
        while x < cols:
            px, sign, q, act, subs = m.predict(y, x)
            if params.runs and q == 0 and not broken:  # run mode (§10.4)
                a = m.neighbours(y, x)[0]
                n = 0
                while x < cols and abs(int(frame[y, x]) - a) <= k:
                    enc.encode(_run_ctx(m, y, x, n, a), 0)
                    m.run_sample(y, x, a)
                    n, x = n + 1, x + 1
                if x == cols:
                    break
                enc.encode(_run_ctx(m, y, x, n, a), 1)
                broken = True
                continue
            broken = False
            e = _quantize((int(frame[y, x]) - px) * sign, k)
            if m.rng:
                e = _modular(e, m.rng)
            if e == 0:
                enc.encode(K.CTX_ZERO + act, 0)
            else:
                enc.encode(K.CTX_ZERO + act, 1)
                enc.encode(K.CTX_SIGN + act, int(e < 0))
                mag = abs(e)
                nb = mag.bit_length()
                base = K.CTX_LEN + act * K.MAX_NBITS
                for i in range(1, nb):
                    enc.encode(base + i, 1)
                if nb < K.MAX_NBITS - 1:
                    enc.encode(base + nb, 0)
                mb = K.CTX_MANT + (act * K.MAX_NBITS + nb) * K.MAX_NBITS
                for j in range(nb - 2, -1, -1):
                    enc.encode(mb + j, (mag >> j) & 1)
            m.update(y, x, px, sign, q, e, subs)
            x += 1
    return enc.finish()


def decode_frame_reference(data: bytes, params: FrameParams, shape: tuple[int, int]) -> np.ndarray:
    """Plain-Python twin of :func:`decode_frame`."""
    rows, cols = shape
    m = _Model(params, rows, cols)
    dec = RangeDecoder(Contexts(K.N_CTX_RUNS), data)
    for y in range(rows):
        x, broken = 0, False
        while x < cols:
            px, sign, q, act, subs = m.predict(y, x)
            if params.runs and q == 0 and not broken:  # run mode (§10.4)
                a = m.neighbours(y, x)[0]
                n = 0
                while x < cols and not dec.decode(_run_ctx(m, y, x, n, a)):
                    m.run_sample(y, x, a)
                    n, x = n + 1, x + 1
                if x == cols:
                    break
                broken = True
                continue
            broken = False
            e = 0
            if dec.decode(K.CTX_ZERO + act):
                neg = dec.decode(K.CTX_SIGN + act)
                base = K.CTX_LEN + act * K.MAX_NBITS
                nb = 1
                while nb < K.MAX_NBITS - 1 and dec.decode(base + nb):
                    nb += 1
                mb = K.CTX_MANT + (act * K.MAX_NBITS + nb) * K.MAX_NBITS
                e = 1
                for j in range(nb - 2, -1, -1):
                    e = (e << 1) | dec.decode(mb + j)
                e = -e if neg else e
            m.update(y, x, px, sign, q, e, subs)
            x += 1
    if dec.overrun:
        raise TruncatedStreamError("predictive coded data ends before the frame does")
    out = np.array(m.R, dtype=np.int32).reshape(rows, cols)
    return out if params.values is None else np.asarray(params.values, dtype=np.int32)[out]
