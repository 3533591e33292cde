"""Rate control: one knob abstraction, one rate target, the searches, frame sampling.

Every codec is steered by one knob (:class:`Knob`: a 1-100 quality, a target PSNR, a
quantisation step, a NEAR value, a distance), declared once per backend in
:mod:`medcodec.registry`. What a caller asks for is a :class:`RateTarget`: exactly one of
``quality`` | ``ratio`` | ``psnr`` | ``max_error``, validated in one place.

Two searches, both over any monotone knob:

* :class:`KnobSearch` / :func:`find_knob_for_rate`: the knob value whose stream is closest to a
  target bits-per-pixel, by safeguarded false position (Illinois) on ``log(bpp)`` over the knob
  (or its log), falling back to bisection, so a smooth knob needs 3-6 encodes and a rough one no
  more than bisection would. Every size measured is cached, so sweeping several targets on one
  codec reuses the brackets.
* :func:`find_knob_for_quality`: the smallest-stream knob value that still passes a monotone
  test (e.g. "worst frame reaches 45 dB"), by bisection in the search coordinate.
* The codec's own searches over its continuous quality 1..100, where an evaluation is cheap
  (sizes from symbol counts, errors in the DCT domain) or exact (the real JPEG stream):
  :func:`bisect_quality` (``.mdc``) and :func:`search_quality` (false position, JPEG).

Sizes are measured on a few calibration frames (:func:`calibration_indices`, the one sampling
formula); the caller then codes every frame with the value found and reports what it reached.
PSNR is :func:`medcodec.metrics.psnr` (peak ``2**bits_stored - 1``); :func:`masked_psnr` adds a
voxel mask (voxels a mapping clipped are not measured).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InvalidInputError, RateTargetWarning
from .metrics import psnr as _psnr

__all__ = [
    "Knob",
    "RateTarget",
    "KnobSearch",
    "SearchResult",
    "find_knob_for_rate",
    "find_knob_for_quality",
    "bisect_quality",
    "search_quality",
    "calibration_indices",
    "masked_psnr",
    "CALIBRATION_FRAMES",
    "RATIO_MISS",
    "check_ratio_reached",
]

#: A ratio target counts as missed (:class:`~medcodec.errors.RateTargetWarning`) when the ratio
#: reached is below ``target * (1 - RATIO_MISS)``; the searches stay well within this.
RATIO_MISS = 0.15


def check_ratio_reached(target: float | None, reached: float, *, what: str = "the stream") -> bool:
    """Warn (:class:`~medcodec.errors.RateTargetWarning`, naming the ratio reached) when a ratio
    target was not met: the knob's end of range was hit, or the content does not compress that far.
    Returns True when the target was met (or none was given)."""
    import warnings

    if target is None or reached >= float(target) * (1 - RATIO_MISS):
        return True
    warnings.warn(
        f"ratio {float(target):g}:1 not reached: {what} has {reached:.2f}:1 (pixel data), the most this codec's "
        "range gives for this content",
        RateTargetWarning,
        stacklevel=3,
    )
    return False


#: A PSNR target counts as missed (:class:`~medcodec.errors.RateTargetWarning`) below it by more
#: than this (dB): rounding of the search, not a shortfall anyone reads.
PSNR_MISS_DB = 0.01


def check_psnr_reached(target: float | None, reached: float, *, what: str = "the stream") -> bool:
    """Warn (:class:`~medcodec.errors.RateTargetWarning`, naming the PSNR reached) when a PSNR
    target was not met: higher qualities do not reach it (noise that a step of 1 at quality 100
    still rounds, a knob whose error does not fall steadily). True when met (or none was given)."""
    import warnings

    if target is None or reached >= float(target) - PSNR_MISS_DB:
        return True
    warnings.warn(
        f"PSNR {float(target):g} dB not reached: {what} decodes at {reached:.2f} dB, the best this codec's "
        "search found for this content",
        RateTargetWarning,
        stacklevel=3,
    )
    return False


#: Frames a series-wide rate search measures by default (evenly spaced).
CALIBRATION_FRAMES = 8


@dataclass(frozen=True)
class Knob:
    """The one parameter a codec's size is steered with.

    Parameters
    ----------
    name
        Short name (``"quality"``, ``"psnr_db"``, ``"step"``, ``"near"``, ``"distance"``).
    description
        What the value means, in the codec's own terms.
    low, high
        Range searched by the rate control.
    size_increases
        True when a larger value gives a larger stream (quality), False when smaller (distance).
    log_scale
        Search the value on a log scale (steps and distances spanning decades).
    integer
        Only integer values are meaningful.
    """

    name: str
    description: str
    low: float
    high: float
    size_increases: bool = True
    log_scale: bool = False
    integer: bool = False

    def clamp(self, value: float) -> float:
        v = min(max(float(value), self.low), self.high)
        return float(round(v)) if self.integer else v

    def to_search(self, value: float) -> float:
        """The search coordinate of ``value``: the value or its log (``log_scale``), negated when
        a larger value gives a smaller stream, so that size grows with the coordinate."""
        u = math.log(value) if self.log_scale else value
        return u if self.size_increases else -u

    def from_search(self, u: float) -> float:
        """Inverse of :meth:`to_search`, clamped (and rounded) to the knob."""
        u = u if self.size_increases else -u
        return self.clamp(math.exp(u) if self.log_scale else u)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "low": self.low,
            "high": self.high,
            "size_increases": self.size_increases,
            "log_scale": self.log_scale,
            "integer": self.integer,
        }


@dataclass(frozen=True)
class RateTarget:
    """What a caller asks of a lossy coder: exactly one of ``quality``, ``ratio``, ``psnr``, ``max_error``.

    Parameters
    ----------
    quality
        1..100 (the codec's quality law).
    ratio
        Uncompressed size / compressed size, >= 1.
    psnr
        dB (peak ``2**bits_stored - 1``), in (0, 200).
    max_error
        Largest absolute error in stored units, an integer >= 0 (only codecs with an error bound).

    Raises
    ------
    InvalidInputError
        More than one given, or a value out of range.

    Examples
    --------
    >>> RateTarget.of(ratio=10).kind, RateTarget.of().quality
    ('ratio', None)
    >>> RateTarget.of(quality=90, psnr=50)
    Traceback (most recent call last):
    ...
    medcodec.errors.InvalidInputError: give one of quality, ratio, psnr or max_error, not ['quality', 'psnr']
    """

    quality: float | None = None
    ratio: float | None = None
    psnr: float | None = None
    max_error: int | None = None

    def __post_init__(self) -> None:
        given = self.given
        if len(given) > 1:
            raise InvalidInputError(f"give one of quality, ratio, psnr or max_error, not {given}")
        q, r, p, e = self.quality, self.ratio, self.psnr, self.max_error
        if q is not None and not (_is_number(q) and 1 <= q <= 100):
            raise InvalidInputError(f"quality={q!r} is out of range, expected 1..100")
        if r is not None and not (_is_number(r) and r >= 1):
            raise InvalidInputError(f"ratio={r!r} must be a number >= 1")
        if p is not None and not (_is_number(p) and 0 < p < 200):
            raise InvalidInputError(f"psnr={p!r} must be a number of dB in (0, 200)")
        if e is not None and not (isinstance(e, (int, np.integer)) and not isinstance(e, bool) and e >= 0):
            raise InvalidInputError(f"max_error={e!r} must be an integer >= 0")

    @classmethod
    def of(cls, *, quality: float | None = None, ratio: float | None = None, psnr: float | None = None,
           max_error: int | None = None) -> RateTarget:  # fmt: skip
        """The validated target from keyword arguments (none given: a default quality, see :attr:`kind`)."""
        return cls(quality=quality, ratio=ratio, psnr=psnr, max_error=max_error)

    @property
    def given(self) -> list[str]:
        """Names of the targets that are set."""
        return [n for n in ("quality", "ratio", "psnr", "max_error") if getattr(self, n) is not None]

    @property
    def kind(self) -> str | None:
        """``"quality"``, ``"ratio"``, ``"psnr"``, ``"max_error"``, or ``None`` when nothing was given."""
        given = self.given
        return given[0] if given else None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class SearchResult:
    """Outcome of one search: the knob value, the bpp it gives, and whether the target was hit."""

    value: float
    bpp: float
    target_bpp: float
    hit: bool  #: within the relative tolerance
    evaluations: int  #: encodes this search needed (cache hits not counted)


class KnobSearch:
    """Cached search over one codec's knob.

    Parameters
    ----------
    bpp_of
        Bits per pixel the codec gives at a knob value (monotone in the knob).
    knob
        The knob's range, direction, scale and integrality.
    """

    def __init__(self, bpp_of: Callable[[float], float], knob: Knob):
        if not knob.low < knob.high:
            raise InvalidInputError(f"knob {knob.name}: low={knob.low} must be below high={knob.high}")
        if knob.log_scale and knob.low <= 0:
            raise InvalidInputError(f"knob {knob.name}: a log-scale knob needs low > 0")
        self._bpp_of = bpp_of
        self.knob = knob
        self.cache: dict[float, float] = {}
        self.evaluations = 0

    def bpp(self, value: float) -> float:
        """Bits per pixel at ``value`` (clamped / rounded to the knob), measured once."""
        v = self.knob.clamp(value)
        if v not in self.cache:
            bpp = float(self._bpp_of(v))
            if not (bpp > 0 and math.isfinite(bpp)):
                raise InvalidInputError(f"knob {self.knob.name}={v}: the codec reported bpp={bpp}")
            self.cache[v] = bpp
            self.evaluations += 1
        return self.cache[v]

    def find(self, target_bpp: float, *, rel_tol: float = 0.02, max_evals: int = 14) -> SearchResult:
        """The knob value whose bpp is closest to ``target_bpp`` (in log ratio).

        Stops when within ``rel_tol``, after ``max_evals`` new encodes, or when the bracket
        cannot shrink (integer knobs, plateaus). A target outside what the knob reaches gives
        the nearest end of the range with ``hit=False``.
        """
        if not target_bpp > 0:
            raise InvalidInputError(f"target_bpp={target_bpp!r} must be positive")
        start = self.evaluations
        goal = math.log(target_bpp)
        tol = math.log1p(rel_tol)

        def f(v: float) -> float:
            return math.log(self.bpp(v)) - goal

        def best() -> SearchResult:
            v = min(self.cache, key=lambda k: (abs(math.log(self.cache[k]) - goal), k))
            hit = abs(math.log(self.cache[v]) - goal) <= tol
            return SearchResult(v, self.cache[v], target_bpp, hit, self.evaluations - start)

        # u is the search coordinate (Knob.to_search): the knob value or its log, bpp growing with u
        lo_u, hi_u = sorted((self.knob.to_search(self.knob.low), self.knob.to_search(self.knob.high)))
        # tightest bracket from what is cached already
        for v in list(self.cache):
            u, fv = self.knob.to_search(v), f(v)
            if fv <= 0 and u > lo_u:
                lo_u = u
            elif fv >= 0 and u < hi_u:
                hi_u = u
        f_lo, f_hi = f(self.knob.from_search(lo_u)), f(self.knob.from_search(hi_u))
        if f_lo >= 0 or f_hi <= 0 or abs(f_lo) <= tol or abs(f_hi) <= tol:
            return best()  # target at or beyond an end of the range
        side = 0
        while self.evaluations - start < max_evals:
            # false position in u, Illinois-weighted; bisection when it stalls at an end
            u = hi_u - f_hi * (hi_u - lo_u) / (f_hi - f_lo)
            width = hi_u - lo_u
            if not (lo_u + 0.02 * width < u < hi_u - 0.02 * width):
                u = 0.5 * (lo_u + hi_u)
            v = self.knob.from_search(u)
            u = self.knob.to_search(v)
            if self.knob.integer and (v in self.cache or not lo_u < u < hi_u):
                mid = self.knob.from_search(0.5 * (lo_u + hi_u))
                if mid in self.cache or not lo_u < self.knob.to_search(mid) < hi_u:
                    break  # adjacent integers: nothing left between them
                v, u = mid, self.knob.to_search(mid)
            fv = f(v)
            if abs(fv) <= tol:
                break
            if fv < 0:
                lo_u, f_lo = u, fv
                if side == -1:
                    f_hi *= 0.5
                side = -1
            else:
                hi_u, f_hi = u, fv
                if side == 1:
                    f_lo *= 0.5
                side = 1
            if hi_u - lo_u < 1e-9 * max(1.0, abs(hi_u)):
                break
        return best()


def find_knob_for_rate(
    bpp_of: Callable[[float], float],
    knob: Knob,
    target_bpp: float,
    *,
    rel_tol: float = 0.02,
    max_evals: int = 14,
) -> SearchResult:
    """One-shot :class:`KnobSearch`: the knob value giving ``target_bpp``.

    >>> q = Knob("quality", "toy", 1, 100, integer=True)
    >>> find_knob_for_rate(lambda v: 0.05 * v, q, 2.0).value      # bpp = q / 20
    40.0
    """
    return KnobSearch(bpp_of, knob).find(target_bpp, rel_tol=rel_tol, max_evals=max_evals)


def calibration_indices(n_frames: int, count: int) -> list[int]:
    """``count`` evenly spaced frame indices out of ``n_frames`` (all of them if fewer).

    >>> calibration_indices(64, 4)
    [8, 24, 40, 56]
    """
    if n_frames <= 0:
        raise InvalidInputError("no frames")
    if count <= 0 or count >= n_frames:
        return list(range(n_frames))
    return [int((i + 0.5) * n_frames / count) for i in range(count)]


def find_knob_for_quality(good: Callable[[float], bool], knob: Knob, *, start: float | None = None,
                          max_evals: int = 14) -> float:  # fmt: skip
    """The knob value with the smallest stream for which ``good(value)`` holds (``good`` monotone:
    once true, true for every larger stream), by bisection in :meth:`Knob.to_search`.

    ``start`` is a value known or suspected to fail: when it does, the bracket starts there.
    When even the largest stream fails, the largest-stream end is returned (the best the codec
    can do); callers measure what they got.

    >>> q = Knob("quality", "toy", 1, 100, integer=True)
    >>> find_knob_for_quality(lambda v: v >= 62, q)
    62.0
    """
    cache: dict[float, bool] = {}

    def ok(v: float) -> bool:
        v = knob.clamp(v)
        if v not in cache:
            cache[v] = bool(good(v))
        return cache[v]

    to_v, to_u = knob.from_search, knob.to_search
    lo, hi = sorted((to_u(knob.low), to_u(knob.high)))  # u grows with stream size
    if start is not None:
        s = to_u(knob.clamp(start))
        if not ok(to_v(s)):
            lo = s
    if not ok(to_v(hi)):
        return to_v(hi)
    if ok(to_v(lo)):
        return to_v(lo)
    for _ in range(40):
        if knob.integer and abs(to_v(hi) - to_v(lo)) <= 1:
            break
        if not knob.integer and hi - lo <= 1e-3 * max(1.0, abs(hi)):
            break
        mid = 0.5 * (lo + hi)
        if ok(to_v(mid)):
            hi = mid
        else:
            lo = mid
        if len(cache) > max_evals and not knob.integer:
            break
    return to_v(hi)


def masked_psnr(original: NDArray[np.integer], restored: NDArray[np.integer], mask: NDArray[np.bool_] | None,
                peak: float) -> float:  # fmt: skip
    """:func:`medcodec.metrics.psnr` over the voxels in ``mask`` (all when ``None``); ``inf`` when none
    or when exact."""
    if mask is None:
        return _psnr(original, restored, peak=peak)
    if not mask.any():
        return math.inf
    return _psnr(original[mask], restored[mask], peak=peak)


def bisect_quality(pred: Callable[[float], bool], *, want_high: bool) -> float:
    """Monotone bisection over a continuous quality 1..100 (14 halvings): the codec's own search,
    whose sizes and errors come cheaply from the DCT domain (:func:`medcodec.codec.framecoder.resolve_quality`).

    ``want_high``: pred is true for low qualities (size small enough) and we want the
    highest quality where it holds; otherwise pred is true for high qualities (PSNR high
    enough) and we want the lowest.
    """
    lo, hi = 1.0, 100.0
    if want_high:
        if pred(hi):
            return hi
        if not pred(lo):
            return lo
    else:
        if pred(lo):
            return lo
        if not pred(hi):
            return hi
    for _ in range(14):
        mid = (lo + hi) / 2
        if pred(mid) == want_high:
            lo = mid
        else:
            hi = mid
    return lo if want_high else hi


def search_quality(value: Callable[[float], float], *, ok_below: bool, close: float, max_evals: int = 24) -> float:
    """Quality on the boundary of a target, by bracketed false position (Illinois variant).

    ``value(q)`` grows with the quality (log size over target size, or PSNR minus the
    target). With ``ok_below`` the target is met where ``value <= 0`` and the highest such
    quality is wanted (rate targets); otherwise it is met where ``value >= 0`` and the
    lowest is wanted (quality targets). The search stops when the met end of the bracket
    is within ``close`` of 0 or the bracket is narrower than 0.001; the quality returned
    always meets the target unless no quality in 1..100 does (then the nearest end).
    Typically 4-8 evaluations instead of a bisection's 16.
    """

    def ok(v: float) -> bool:
        return v <= 0 if ok_below else v >= 0

    lo, hi = 1.0, 100.0
    vlo, vhi = value(lo), value(hi)
    if ok(vhi) if ok_below else not ok(vhi):
        return hi
    if not ok(vlo) if ok_below else ok(vlo):
        return lo
    flo, fhi = vlo, vhi  # Illinois-weighted copies for the interpolation
    side = 0
    for _ in range(max_evals):
        met = vlo if ok_below else vhi
        if abs(met) <= close or hi - lo < 1e-3:
            break
        q = lo + (hi - lo) * (-flo) / (fhi - flo) if fhi != flo else (lo + hi) / 2
        margin = 0.02 * (hi - lo)
        q = min(max(q, lo + margin), hi - margin)
        vq = value(q)
        if (ok_below and ok(vq)) or (not ok_below and not ok(vq)):
            lo, vlo, flo = q, vq, vq
            if side == -1:
                fhi /= 2
            side = -1
        else:
            hi, vhi, fhi = q, vq, vq
            if side == 1:
                flo /= 2
            side = 1
    return lo if ok_below else hi
