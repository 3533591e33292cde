"""Reach a target bit rate with any codec whose size moves monotonically with one knob.

Codecs expose different knobs (a 1-100 quality, a target PSNR, a quantisation step, a distance);
:class:`KnobSearch` finds the knob value whose stream is closest to a target bits-per-pixel, by
safeguarded false position (Illinois) on ``log(bpp)`` over the knob (or its log), falling back
to bisection, so a smooth knob needs 3-6 encodes and a rough one no more than bisection would.
Every size measured is cached, so sweeping several targets on one codec reuses the brackets.

Sizes are measured on a few calibration frames (see :func:`calibration_indices`); the caller
then codes every frame with the value found and reports the bpp actually reached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InvalidInputError
from .peers import Knob

__all__ = ["KnobSearch", "SearchResult", "find_knob_for_rate", "calibration_indices"]


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

    >>> from medcodec.evaluate.peers import Knob
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
