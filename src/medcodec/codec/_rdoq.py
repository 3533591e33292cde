"""Rate-distortion optimised quantization (array -> array): texture-aware greedy, trellis, thresholding.

``texture`` (the default of standard JPEG, issue 11) minimises, block by block,

    J = D + lambda * R + mu * max(0, rho * |x_AC| - |l_AC|)**2

with D and R as for the trellis below and |x_AC|, |l_AC| the Euclidean norms of the block's
AC coefficients and of its dequantized AC levels (pixel units; the DCT is orthonormal, so
norm / 8 is the block's standard deviation). The penalty is zero while a block keeps its
AC energy and grows when a noisy block would be decoded flat, which is the waxy 8x8 mosaic
PSNR-only quantizers produce in soft tissue. The search is greedy: levels start rounded;
from the last non-zero coefficient back to the first, a +-1 may become 0 and a 2 may drop
one magnitude category (2 -> 1) when that lowers J; other moves cost at least two unit errors
for a bit or two and are not tried (4 -> 3, 8 -> 7 ... were: they changed the BD-rate by less
than 0.1 % and cost 1-2.5 % of the encoding time). R is priced with the
code lengths of the rounded levels' symbols on every :data:`TEXTURE_STATS_STRIDE`-th block
row. Then :func:`trellis_dc` decides the DC chain, knowing that decoders clip: a block left
without AC levels decodes as its clipped constant, so a black background can be coded one
level beyond the range's end, exactly. ``lambda`` = :data:`LAMBDA_SCALE` x mean AC step^2,
``mu`` = :data:`TEXTURE_MU` x min(1, (:data:`TEXTURE_KAPPA` sigma / mean AC step)^2) with sigma
the frame's noise level (:func:`._kernels.noise_sigma`: where the steps are coarse against the
noise, rounding loses the grain anyway), ``rho`` = :data:`TEXTURE_RHO`; the measurements
behind them are in docs/design-notes.md. The kernels (:func:`._kernels.encode_frame_texture`,
pixels to bytes in one call) have the plain-Python twin :func:`texture_levels_reference`.

Plain rounding picks, for every coefficient, the level nearest to it. That minimises the
error but not the error *for the bits spent*: an isolated +-1 after a long zero run costs
a run/size code plus a bit, and a level 9 costs one extra bit more than a level 7. The
trellis quantizer chooses, block by block, the levels that minimise

    J = D + lambda * R,     D = sum_k q_k^2 (x_k - l_k)^2,     R = bits of the block's symbols

where ``x_k`` are the DCT coefficients divided by their steps ``q_k`` (zigzag order; the
DCT is orthonormal, so D is the pixel-domain squared error before rounding and clipping)
and R is measured with the entropy coder's own symbols (T.81 §F.1.2.2: run/size codes,
ZRL, EOB, plus SSSS magnitude bits), so the result is still a plain ISO 10918-1 scan
(and a plain ``.mdc`` scan with ``size_bits=5``). The code lengths come from the symbol
statistics of a previous pass (the levels are re-quantized a couple of times; the final
Huffman tables are then optimised for the final levels as usual).

Dynamic programme per block (the approach of mozjpeg's ``quantize_trellis``): states are
"coefficient i is the last non-zero one so far"; from state j to state i the zeros
j+1..i-1 are coded as a run (ZRL for every 16), and coefficient i takes one of its
candidate levels. Because the rate of a level depends only on its magnitude category
SSSS, the only candidates worth trying are, for each category up to that of the rounded
magnitude r, the magnitude in that category nearest to |x|: ``min(2**s - 1, r)``. The
block ends with EOB after the best final state (no EOB if coefficient 63 is non-zero).
DC levels are rounded (the DC difference chain couples blocks; left to plain rounding).

``threshold`` is the cheap alternative: a dead zone (AC magnitudes below
:data:`THRESHOLD_DEADZONE` step become 0, instead of below 0.5) and isolated +-1 levels
(zero neighbours on both sides in zigzag order) are dropped when the coefficient is below
:data:`THRESHOLD_ISOLATED` step.

The kernel :func:`trellis_blocks` has a plain-Python twin :func:`trellis_blocks_reference`
written from the description above; ``tests/codec/test_rdoq.py`` checks that they agree.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from ..errors import InvalidInputError
from . import _kernels as K
from . import entropy
from ._kernels import texture_levels, trellis_dc  # kernels of the modes below

__all__ = [
    "MODES",
    "LAMBDA_SCALE",
    "THRESHOLD_DEADZONE",
    "THRESHOLD_ISOLATED",
    "default_lambda",
    "symbol_bits",
    "trellis_blocks",
    "trellis_dc",
    "trellis_dc_reference",
    "texture_levels",
    "texture_levels_reference",
    "texture_frame_levels",
    "TEXTURE_MU",
    "TEXTURE_RHO",
    "TEXTURE_FLOOR",
    "texture_floor",
    "texture_dc_floor",
    "dc_clip",
    "noise_sigma_reference",
    "TEXTURE_KAPPA",
    "trellis_blocks_reference",
    "threshold_levels",
    "threshold_blocks",
    "rdo_levels",
]

MODES = ("none", "threshold", "trellis", "texture")

#: lambda = LAMBDA_SCALE * (mean AC step)^2, in squared error per bit. High-rate theory
#: for an entropy-coded uniform quantizer gives dD/dR = -2 ln2 * step^2 / 12 = 0.116 step^2;
#: the value used was tuned on 12-bit CT (benchmarks/bench_jpeg_vs_libjpeg_turbo.py).
LAMBDA_SCALE = 0.12
THRESHOLD_DEADZONE = 0.62
THRESHOLD_ISOLATED = 1.0
TRELLIS_PASSES = 1
#: Predecessor window of the trellis (see :func:`trellis_blocks`).
TRELLIS_WINDOW = 4
TRELLIS_DC = True
#: Texture mode: weight of the energy-loss penalty, and the share of each block's AC energy
#: (as a norm) below which the penalty starts. Chosen by measurement (docs/design-notes.md).
TEXTURE_MU = 16.0
TEXTURE_RHO = 1.0
#: Texture mode: Viterbi search over the DC prediction chain after the AC decisions.
TEXTURE_DC = True
#: Texture mode: the code lengths are estimated from every this-many-th block row.
TEXTURE_STATS_STRIDE = 4
#: Texture mode: the backward pass over a block stops after this many rejected moves in a row.
TEXTURE_PATIENCE = 64
#: Texture mode: blocks whose mean lies in the lowest this share of the image's sample range
#: (background: air outside the patient, padding; on the training CTs below -925 HU, under lung
#: parenchyma) get no energy target: plain RD decisions, as turbo's rounding keeps nothing there
#: either. Chosen on the training sets (docs/design-notes.md).
TEXTURE_FLOOR = 0.03
#: Texture mode: the penalty's weight falls as ``(kappa sigma / step)^2`` where the mean AC step
#: exceeds ``kappa`` times the frame's noise level sigma (:func:`._kernels.texture_mu`); 0: never.
TEXTURE_KAPPA = 3.0

_jit = numba.njit(cache=True, nogil=True)


def default_lambda(steps_zz: np.ndarray, scale: float | None = None) -> float:
    """Lagrange multiplier for the steps (zigzag order): ``scale`` (default
    :data:`LAMBDA_SCALE`) x mean of the squared AC steps."""
    s = np.asarray(steps_zz, dtype=np.float64)[1:]
    return float((LAMBDA_SCALE if scale is None else scale) * np.mean(s * s))


def symbol_bits(levels: np.ndarray, *, size_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Estimated code lengths in bits of every DC and AC symbol, from the symbol counts of ``levels``.

    ``-log2((count + 0.5) / (total + 0.5 * alphabet))``: a symbol not seen yet still has a
    finite (high) price. Returns (DC bits, AC bits), indexed by symbol.
    """
    dc_freq, ac_freq, _ = entropy.symbol_counts(levels, size_bits=size_bits)
    out = []
    for freq in (dc_freq, ac_freq):
        f = freq.astype(np.float64) + 0.5
        out.append(-np.log2(f / f.sum()))
    return out[0], out[1]


@_jit
def _bit_length(v: int) -> int:
    s = 0
    while v:
        s += 1
        v >>= 1
    return s


@_jit
def trellis_blocks(
    scaled: np.ndarray,
    weights: np.ndarray,
    ac_bits: np.ndarray,
    size_bits: int,
    lam: float,
    out: np.ndarray,
    window: int = 0,
) -> np.ndarray:
    """Trellis-quantize the AC coefficients of every block (module docstring).

    Parameters
    ----------
    scaled
        float64 (N, 64): DCT coefficients divided by their steps, zigzag order.
    weights
        float64 (64,): squared steps (distortion weight of a unit level error).
    ac_bits
        float64 (16 << size_bits,): code length of each AC symbol ``run << size_bits | size``.
    size_bits
        Width of the size field in an AC symbol (4 for JPEG, 5 for ``.mdc``).
    lam
        Lagrange multiplier (squared error per bit).
    out
        int32 (N, 64): receives the levels; column 0 (DC) is rounded to nearest.
    window
        If > 0, a coefficient's predecessor (the previous non-zero one) is searched among
        the ``window`` nearest candidates and the start of the block only
        (:data:`TRELLIS_WINDOW`); 0 searches all. Zeroing several non-zero coefficients in
        a row in mid-block is what the window gives up, and it is almost never worth its
        distortion: on 12-bit CT, window 4 changes the BD-rate by < 0.05 % and halves the time.
    """
    n = scaled.shape[0]
    zrl_bits = ac_bits[15 << size_bits]
    eob_bits = ac_bits[0]
    cost = np.empty(64)
    prev = np.empty(64, np.int64)
    chosen = np.empty(64, np.int64)
    zacc = np.empty(64)
    mag = np.empty(64, np.int64)
    live = np.empty(64, np.int64)  # positions that can be non-zero (0: the start state)
    for b in range(n):
        x0 = scaled[b, 0]
        out[b, 0] = np.int32(math.floor(x0 + 0.5)) if x0 >= 0 else -np.int32(math.floor(-x0 + 0.5))
        zacc[0] = 0.0
        nlive = 1
        live[0] = 0
        for k in range(1, 64):
            a = abs(scaled[b, k])
            zacc[k] = zacc[k - 1] + weights[k] * a * a
            mag[k] = np.int64(math.floor(a + 0.5))
            out[b, k] = 0
            if mag[k] > 0:
                live[nlive] = k
                nlive += 1
        cost[0] = 0.0
        for li in range(1, nlive):
            i = live[li]
            cost[i] = np.inf
            r = mag[i]
            a = abs(scaled[b, i])
            smax = _bit_length(r)
            first = 1 if window <= 0 else max(1, li - window)
            for lj in range(li - 1, first - 2, -1):
                if lj == first - 1:
                    lj = 0  # the start of the block is always a candidate
                j = live[lj]
                cj = cost[j]
                if cj == np.inf:
                    continue
                run = i - j - 1
                base = cj + (zacc[i - 1] - zacc[j]) + lam * (run >> 4) * zrl_bits
                if base >= cost[i]:  # what follows only adds non-negative terms
                    continue
                rr = (run & 15) << size_bits
                for s in range(1, smax + 1):
                    m = min((1 << s) - 1, r)
                    d = a - m
                    c = base + weights[i] * d * d + lam * (ac_bits[rr | s] + s)
                    if c < cost[i]:
                        cost[i] = c
                        prev[i] = j
                        chosen[i] = m
        best = zacc[63] + lam * eob_bits  # everything zero: EOB right after DC
        last = 0
        for li in range(1, nlive):
            i = live[li]
            c = cost[i] + (zacc[63] - zacc[i])
            if i < 63:
                c += lam * eob_bits
            if c < best:
                best = c
                last = i
        i = last
        while i > 0:
            m = chosen[i]
            out[b, i] = m if scaled[b, i] >= 0 else -m
            i = prev[i]
    return out


def trellis_dc_reference(
    scaled_dc: np.ndarray,
    weight: float,
    dc_bits: np.ndarray,
    lam: float,
    lo: float = -math.inf,
    hi: float = math.inf,
    flat: np.ndarray | None = None,
) -> np.ndarray:
    """Plain-Python twin of :func:`trellis_dc`: Viterbi with explicit path lists; a block marked
    in ``flat`` (no AC level) is decoded as the constant level clipped to ``lo..hi``."""
    x = np.asarray(scaled_dc, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0, np.int32)
    flat = np.zeros(x.size, bool) if flat is None else np.asarray(flat, bool)

    def err(b: int, c: int) -> float:
        d = float(x[b]) - (min(max(float(c), lo), hi) if flat[b] else float(c))
        return float(weight) * d * d  # the kernel's order of operations: ties must break alike

    def rate(diff: int) -> float:
        s = abs(int(diff)).bit_length()
        return lam * (float(dc_bits[s]) + s)

    def cands(v: float) -> list[int]:
        r = int(np.sign(v) * math.floor(abs(v) + 0.5))
        return [r - 1, r, r + 1]

    paths = [(err(0, c) + rate(c), [c]) for c in cands(x[0])]
    for b in range(1, x.size):
        nxt = []
        for c in cands(x[b]):
            # first minimum wins ties, like the kernel
            best = min(range(len(paths)), key=lambda p: (paths[p][0] + rate(c - paths[p][1][-1]), p))
            cost, path = paths[best]
            nxt.append((cost + rate(c - path[-1]) + err(b, c), [*path, c]))
        paths = nxt
    best = min(range(len(paths)), key=lambda p: (paths[p][0], p))
    return np.asarray(paths[best][1], np.int32)


def texture_levels_reference(
    scaled: np.ndarray,
    weights: np.ndarray,
    ac_bits: np.ndarray,
    size_bits: int,
    lam: float,
    mu: float = TEXTURE_MU,
    rho: float = TEXTURE_RHO,
    patience: int = TEXTURE_PATIENCE,
    dc_floor: float = -math.inf,
) -> np.ndarray:
    """Plain-Python twin of :func:`texture_levels`: the same greedy decisions, each judged by
    recomputing the whole block's cost ``D + lam R + penalty`` from scratch (no deltas); a block
    whose scaled DC lies below ``dc_floor`` has no energy target."""
    scaled = np.asarray(scaled, dtype=np.float64)
    out = np.zeros(scaled.shape, np.int32)
    zrl = float(ac_bits[15 << size_bits])
    eob = float(ac_bits[0])
    w = [float(v) for v in weights]

    def rate(m: list[int]) -> float:
        bits, run, last = 0.0, 0, 0
        for k in range(1, 64):
            if m[k] == 0:
                run += 1
                continue
            s = m[k].bit_length()
            bits += (run // 16) * zrl + float(ac_bits[((run % 16) << size_bits) | s]) + s
            run, last = 0, k
        return bits + (eob if last < 63 else 0.0)

    for b, x in enumerate(scaled):
        a = [abs(float(v)) for v in x]
        out[b, 0] = int(math.copysign(math.floor(a[0] + 0.5), x[0]))
        target = rho * math.sqrt(sum(w[k] * a[k] * a[k] for k in range(1, 64)))
        if x[0] < dc_floor:  # background: no energy target
            target = 0.0

        def cost(m: list[int], a: list[float] = a, target: float = target) -> float:
            d = sum(w[k] * (a[k] - m[k]) ** 2 for k in range(1, 64))
            deficit = target - math.sqrt(sum(w[k] * m[k] * m[k] for k in range(1, 64)))
            return d + lam * rate(m) + (mu * deficit * deficit if deficit > 0 else 0.0)

        m = [0] + [math.floor(a[k] + 0.5) for k in range(1, 64)]
        current = cost(m)
        misses = 0  # non-zero levels left as they were, in a row
        for k in range(63, 0, -1):
            if m[k] == 0:
                continue
            if misses >= patience:
                break
            # a +-1 may become 0; a 2 may drop one category (2 -> 1); other moves are left out:
            # they add at least 2 unit errors to save a bit or two, and 4 -> 3, 8 -> 7 ... gained
            # nothing measurable (docs/design-notes.md)
            options = [0] if m[k] == 1 else [1] if m[k] == 2 else []
            best_m, best_c = m[k], current
            for cand in options:
                trial = m.copy()
                trial[k] = cand
                c = cost(trial)
                if c < best_c:
                    best_m, best_c = cand, c
            misses = 0 if best_m != m[k] else misses + 1
            m[k], current = best_m, best_c
        for k in range(1, 64):
            out[b, k] = m[k] if x[k] >= 0 else -m[k]
    return out


def _steps_weights(coder: Any) -> tuple[np.ndarray, np.ndarray]:
    """A coder's float64 steps (zigzag) and their squares, memoised on the coder."""
    hit = coder.__dict__.get("_texture_steps")
    if hit is None:
        steps = coder.steps_zz.astype(np.float64)
        hit = coder.__dict__["_texture_steps"] = (steps, steps * steps)
    return hit


def texture_dc_floor(coder: Any, floor: float | None) -> float:
    """The background floor (a sample value, or None: none) as the kernels compare it: a block's
    DC coefficient / step, ``8 (mean - offset) / step_0``."""
    if floor is None:
        return -math.inf
    return 8.0 * (float(floor) - float(coder.offset)) / float(coder.steps_zz[0])


def dc_clip(coder: Any) -> tuple[float, float]:
    """The ends of a coder's sample range, where every decoder clips, as the DC kernels compare a
    block's DC coefficient / step (:func:`._kernels.trellis_dc`): ``8 (end - offset) / step_0``."""
    step, offset = float(coder.steps_zz[0]), float(coder.offset)
    return 8.0 * (float(coder._lo) - offset) / step, 8.0 * (float(coder._hi) - offset) / step


def _floor_px(floor: float | None) -> float:
    return -math.inf if floor is None else float(floor)


def noise_sigma_reference(frame: np.ndarray, stride: int, floor: float | None = None) -> float:
    """NumPy twin of :func:`._kernels.noise_sigma`: ``median |a - b - c + d| / 2 / 0.6745`` over
    the 2x2 cells at odd columns of rows ``8 i + 1, 8 i + 2`` and ``8 i + 5, 8 i + 6`` of every
    ``stride``-th strip ``i`` whose samples are all ``>= floor``."""
    a = np.asarray(frame, dtype=np.int64)
    vals = []
    for y in range(a.shape[0] - 1):
        if y % (8 * stride) not in (1, 5):
            continue
        s = a[y : y + 2, 1 : 1 + (a.shape[1] - 1) // 2 * 2]
        p, q, r, t = s[0, 0::2], s[0, 1::2], s[1, 0::2], s[1, 1::2]
        keep = np.minimum(np.minimum(p, q), np.minimum(r, t)) >= _floor_px(floor)
        vals.append(np.minimum(np.abs(p - q - r + t)[keep], K.NOISE_BINS - 1))
    v = np.sort(np.concatenate(vals)) if vals else np.zeros(0, np.int64)
    return 0.0 if v.size == 0 else float(v[(v.size - 1) // 2]) / 2.0 / 0.6745


def texture_weight(coder: Any, frame: np.ndarray, weights: np.ndarray, scale: float) -> tuple[float, float]:
    """The texture penalty's weight for the ``.mdc`` RD searches (2.1 levels, intra residuals) and the
    frame's background floor (a sample value): ``scale`` x :func:`._kernels.texture_mu` of the frame's
    noise, as the JPEG kernel weighs it (:data:`TEXTURE_MU`, :data:`TEXTURE_KAPPA`)."""
    pixels = coder._pixels(frame)
    floor = texture_floor(float(pixels.min()), float(pixels.max()))
    sigma = K.noise_sigma(pixels, TEXTURE_STATS_STRIDE, floor)
    return scale * K.texture_mu(TEXTURE_MU, TEXTURE_KAPPA, sigma, weights), floor


def texture_floor(vmin: float, vmax: float) -> float:
    """Background floor of an image whose samples span ``vmin..vmax``: ``vmin +``
    :data:`TEXTURE_FLOOR` ``x (vmax - vmin)``."""
    return float(vmin) + TEXTURE_FLOOR * (float(vmax) - float(vmin))


def texture_frame_levels(
    coder: Any,
    frame: np.ndarray,
    *,
    size_bits: int,
    restart_interval: int = 0,
    lam: float | None = None,
    floor: float | None = None,
) -> np.ndarray:
    """Texture-aware levels of a frame (int32 zigzag, (nblocks, 64)) in one fused kernel
    (:func:`._kernels.texture_frame_levels`) for a ``FrameCoder`` ``coder``; blocks whose mean
    lies below ``floor`` (a sample value, :func:`texture_floor`; None: none) have no energy target."""
    from . import transform

    steps = coder.steps_zz.astype(np.float64)
    lam = default_lambda(steps) if lam is None else float(lam)
    by, bx = transform.blocks_shape(*frame.shape)
    out = np.empty((by * bx, 64), np.int32)
    return K.texture_frame_levels(
        coder._pixels(frame), float(coder.offset), coder._exact_div, coder._qmul, transform.NAT_ZZ, steps * steps,
        size_bits, restart_interval, lam, TEXTURE_MU, TEXTURE_RHO, TEXTURE_PATIENCE, TEXTURE_DC, TEXTURE_STATS_STRIDE,
        texture_dc_floor(coder, floor), *dc_clip(coder), TEXTURE_KAPPA, _floor_px(floor), out,
    )  # fmt: skip


def encode_frame_texture(
    coder: Any,
    frame: np.ndarray,
    *,
    size_bits: int,
    stuff: bool,
    restart_interval: int,
    lam: float | None = None,
    floor: float | None = None,
) -> tuple[bytes, entropy.HuffmanTable, entropy.HuffmanTable]:
    """The texture-aware encoder of a frame in one kernel call (:func:`._kernels.encode_frame_texture`):
    returns ``(coded bytes, DC table, AC table)``. ``floor`` as for :func:`texture_frame_levels`."""
    from . import transform

    steps, weights = _steps_weights(coder)
    lam = default_lambda(steps) if lam is None else float(lam)
    arrays = entropy.new_table_arrays(size_bits)
    coded, n_dc, n_ac, dc_size, ac_size = K.encode_frame_texture(
        coder._pixels(frame), float(coder.offset), coder._exact_div, coder._qmul, transform.NAT_ZZ, weights,
        lam, TEXTURE_MU, TEXTURE_RHO, TEXTURE_PATIENCE, TEXTURE_DC, TEXTURE_STATS_STRIDE,
        texture_dc_floor(coder, floor), *dc_clip(coder), TEXTURE_KAPPA, _floor_px(floor), size_bits, stuff,
        restart_interval, *arrays,
    )  # fmt: skip
    dc, ac = entropy.tables_from_kernel(size_bits, arrays[0], arrays[1], n_dc, arrays[2], arrays[3], n_ac, dc_size,
                                        ac_size)  # fmt: skip
    return coded.tobytes(), dc, ac


def _texture_coder_args(coder: Any) -> tuple[Any, ...]:
    """What the texture kernels take from a coder, memoised on it (a series codes every frame with
    one coder): level offset, DCT multipliers, zigzag order, squared steps, lambda, and the ends of
    the sample range in DC units (:func:`dc_clip`)."""
    hit = coder.__dict__.get("_texture_args")
    if hit is None:
        from . import transform

        steps, weights = _steps_weights(coder)
        lam = default_lambda(steps) if coder.rdo_lambda is None else float(coder.rdo_lambda)
        hit = coder.__dict__["_texture_args"] = (
            float(coder.offset), coder._exact_div, coder._qmul, transform.NAT_ZZ, weights, lam, *dc_clip(coder)
        )  # fmt: skip
    return hit


def encode_jpeg_texture(
    coder: Any, frame: np.ndarray, *, restart_interval: int, floor: float | None, head: np.ndarray, tail: np.ndarray
) -> bytes:
    """The complete JPEG stream of ``frame`` coded by the texture-aware quantizer, in one kernel call
    from pixels to bytes (:func:`._kernels.encode_jpeg_texture`): ``head`` (uint8: SOI, DQT, SOF),
    the DHT of the frame's optimal tables, ``tail`` (uint8: [DRI,] SOS), the scan, EOI. The
    levels and tables are those of :func:`encode_frame_texture` (``size_bits=4``, stuffed);
    ``floor`` as for :func:`texture_frame_levels`."""
    offset, exact_div, qmul, nat_zz, weights, lam, lo, hi = _texture_coder_args(coder)
    out = K.encode_jpeg_texture(
        coder._pixels(frame), offset, exact_div, qmul, nat_zz, weights, lam, TEXTURE_MU, TEXTURE_RHO,
        TEXTURE_PATIENCE, TEXTURE_DC, TEXTURE_STATS_STRIDE, texture_dc_floor(coder, floor), lo, hi, TEXTURE_KAPPA,
        _floor_px(floor), restart_interval, head, tail,
    )  # fmt: skip
    return out.tobytes()


def trellis_blocks_reference(
    scaled: np.ndarray, weights: np.ndarray, ac_bits: np.ndarray, size_bits: int, lam: float, window: int = 0
) -> np.ndarray:
    """Plain-Python twin of :func:`trellis_blocks`: an explicit search over paths, per block.

    Written as a shortest path over the states "last non-zero coefficient" with a
    dictionary of best partial paths, independently of the kernel's arrays.
    """
    scaled = np.asarray(scaled, dtype=np.float64)
    out = np.zeros(scaled.shape, np.int32)
    zrl = float(ac_bits[15 << size_bits])
    eob = float(ac_bits[0])
    for b, x in enumerate(scaled):
        out[b, 0] = int(np.sign(x[0]) * math.floor(abs(x[0]) + 0.5))
        zero_cost = [float(weights[k] * x[k] ** 2) for k in range(64)]
        # best[j] = (cost, levels dict) with j the last non-zero position (0: none yet)
        best: dict[int, tuple[float, dict[int, int]]] = {0: (0.0, {})}
        for i in range(1, 64):
            r = math.floor(abs(x[i]) + 0.5)
            if r == 0:
                continue
            options = []
            states = list(best)
            if window > 0:  # the `window` nearest states, and the start of the block
                states = sorted({0, *states[-window:]})
            for j in states:
                cj, lv = best[j]
                run = i - j - 1
                zeros = sum(zero_cost[j + 1 : i])
                for s in range(1, r.bit_length() + 1):
                    m = min((1 << s) - 1, r)
                    rate = (run // 16) * zrl + float(ac_bits[((run % 16) << size_bits) | s]) + s
                    c = cj + zeros + weights[i] * (abs(x[i]) - m) ** 2 + lam * rate
                    options.append((c, -j, m, lv))
            c, _, m, lv = min(options, key=lambda o: (o[0], o[1]))
            best[i] = (c, {**lv, i: m})
        end = []
        for j, (cj, lv) in best.items():
            c = cj + sum(zero_cost[j + 1 : 64]) + (lam * eob if j < 63 else 0.0)
            end.append((c, j, lv))
        _, _, lv = min(end, key=lambda e: (e[0], e[1]))
        for i, m in lv.items():
            out[b, i] = m if x[i] >= 0 else -m
    return out


@_jit
def threshold_blocks(scaled: np.ndarray, deadzone: float, isolated: float, out: np.ndarray) -> np.ndarray:
    """Kernel of :func:`threshold_levels` (its NumPy twin): dead zone, then isolated +-1
    levels whose coefficient is below ``isolated`` dropped (neighbours judged before any
    is dropped)."""
    lv = np.empty(65, np.int64)
    lv[64] = 0
    for b in range(scaled.shape[0]):
        x0 = scaled[b, 0]
        m0 = np.int64(math.floor(abs(x0) + 0.5))
        out[b, 0] = m0 if x0 >= 0 else -m0
        lv[0] = 0  # the DC is no neighbour of the first AC level
        for k in range(1, 64):
            a = abs(scaled[b, k])
            lv[k] = 0 if a < deadzone else np.int64(math.floor(a + 0.5))
        for k in range(1, 64):
            m = lv[k]
            if m == 1 and lv[k - 1] == 0 and lv[k + 1] == 0 and abs(scaled[b, k]) < isolated:
                m = 0
            out[b, k] = m if scaled[b, k] >= 0 else -m
    return out


def threshold_levels(scaled: np.ndarray) -> np.ndarray:
    """Dead-zone quantization plus removal of isolated small levels (module docstring).

    NumPy reference twin of :func:`threshold_blocks`, which the encoder runs."""
    a = np.abs(scaled)
    lv = np.where(a < THRESHOLD_DEADZONE, 0.0, np.floor(a + 0.5))
    lv[:, 0] = np.floor(a[:, 0] + 0.5)
    ac = lv[:, 1:]
    left = np.zeros_like(ac)
    left[:, 1:] = ac[:, :-1]
    right = np.zeros_like(ac)
    right[:, :-1] = ac[:, 1:]
    isolated = (ac == 1) & (left == 0) & (right == 0) & (a[:, 1:] < THRESHOLD_ISOLATED)
    ac[isolated] = 0
    return (np.sign(scaled) * lv).astype(np.int32)


def rdo_levels(
    scaled: np.ndarray,
    steps_zz: np.ndarray,
    *,
    mode: str,
    size_bits: int,
    lam: float | None = None,
    passes: int | None = None,
) -> np.ndarray:
    """Levels for coefficients already divided by their steps (zigzag order), by ``mode``.

    ``"none"``: rounding; ``"threshold"``: :func:`threshold_levels`; ``"trellis"``: rounding,
    then ``passes`` trellis passes, each priced with the symbol statistics of the one before.
    """
    from . import quantize

    if mode == "none":
        return quantize.round_levels(scaled)
    scaled = np.ascontiguousarray(scaled, dtype=np.float64)
    if mode == "threshold":
        return threshold_blocks(scaled, THRESHOLD_DEADZONE, THRESHOLD_ISOLATED, np.empty(scaled.shape, np.int32))
    if mode == "texture":
        steps = np.asarray(steps_zz, dtype=np.float64)
        weights = steps * steps
        lam = default_lambda(steps) if lam is None else float(lam)
        dc_freq, ac_freq, _ = entropy.symbol_counts(quantize.round_levels(scaled), size_bits=size_bits)
        dc_bits = K.symbol_code_lengths(dc_freq, np.empty(dc_freq.shape[0]))
        ac_bits = K.symbol_code_lengths(ac_freq, np.empty(ac_freq.shape[0]))
        out = texture_levels(
            scaled,
            weights,
            ac_bits,
            size_bits,
            lam,
            TEXTURE_MU,
            TEXTURE_RHO,
            TEXTURE_PATIENCE,
            -math.inf,
            np.empty(scaled.shape, np.int32),
        )
        if TEXTURE_DC:
            flat = np.all(out[:, 1:] == 0, axis=1).astype(np.uint8)
            trellis_dc(np.ascontiguousarray(scaled[:, 0]), weights[0], dc_bits, lam, out, -math.inf, math.inf, flat)
        return out
    if mode != "trellis":
        raise InvalidInputError(f"rdo mode {mode!r} is unknown, expected one of {MODES}")
    steps = np.asarray(steps_zz, dtype=np.float64)
    weights = steps * steps
    lam = default_lambda(steps) if lam is None else float(lam)
    levels = threshold_blocks(scaled, THRESHOLD_DEADZONE, THRESHOLD_ISOLATED, np.empty(scaled.shape, np.int32))
    out = np.empty(scaled.shape, np.int32)
    for _ in range(TRELLIS_PASSES if passes is None else passes):
        dc_bits, ac_bits = symbol_bits(levels, size_bits=size_bits)
        trellis_blocks(scaled, weights, ac_bits, size_bits, lam, out, TRELLIS_WINDOW)
        if TRELLIS_DC:
            trellis_dc(np.ascontiguousarray(scaled[:, 0]), weights[0], dc_bits, lam, out, -math.inf, math.inf,
                       np.zeros(out.shape[0], np.uint8))  # fmt: skip
        levels = out.copy()
    return levels
