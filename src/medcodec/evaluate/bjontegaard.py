"""Bjøntegaard delta rate and delta PSNR between two rate-distortion curves.

Two interpolations are offered:

``method="cubic"``
    G. Bjøntegaard, "Calculation of average PSNR differences between RD-curves", ITU-T SG16 Q.6
    VCEG-M33, Austin, April 2001: a least-squares cubic polynomial through the points
    (log rate against PSNR for BD-rate; PSNR against log rate for BD-PSNR), integrated
    exactly over the interval where both curves have data.
``method="pchip"``
    Piecewise cubic Hermite interpolation, as in the JCT-VC common-test-conditions spreadsheet
    (F. Bossen, JCTVC-L1100) that replaced the single cubic because it can overshoot; the
    interpolant is integrated exactly.

BD-rate is the average rate difference of ``test`` against ``anchor`` at equal PSNR, in percent
(negative: ``test`` needs fewer bits). BD-PSNR is the average PSNR difference at equal rate, in
dB (positive: ``test`` is better). The rate unit does not matter (bpp, kbit/s ...), as long as
both curves use the same one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidInputError

__all__ = ["bd_rate", "bd_psnr", "METHODS"]

METHODS = ("cubic", "pchip")


def _prepare(rate: Sequence[float], psnr: Sequence[float], what: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64)
    p = np.asarray(psnr, dtype=np.float64)
    if r.ndim != 1 or r.shape != p.shape:
        raise InvalidInputError(f"{what}: rates and PSNRs must be 1-D sequences of equal length")
    if r.size < 4:
        raise InvalidInputError(f"{what}: {r.size} rate-distortion points, at least 4 are needed (VCEG-M33)")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(p))):
        raise InvalidInputError(f"{what}: rates and PSNRs must be finite (drop lossless points)")
    if np.any(r <= 0):
        raise InvalidInputError(f"{what}: rates must be positive (log rate is used)")
    order = np.argsort(r)
    return np.log(r[order]), p[order]


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    """Integral over [lo, hi] of the curve through (x, y), interpolated by ``method``."""
    if method == "cubic":
        # fit in a centred, scaled variable u = (x - m) / s (same curve, well conditioned):
        # the integral over x is s times the integral over u
        m, s = float(np.mean(x)), float(np.ptp(x)) / 2 or 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.RankWarning)
            try:
                poly = np.polyint(np.polyfit((x - m) / s, y, 3))
            except np.exceptions.RankWarning:
                raise InvalidInputError(
                    "cubic: the points do not determine a cubic (too few distinct values)"
                ) from None
        return s * float(np.polyval(poly, (hi - m) / s) - np.polyval(poly, (lo - m) / s))
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        order = np.argsort(x)
        xs, ys = x[order], y[order]
        if np.any(np.diff(xs) <= 0):
            raise InvalidInputError(
                "pchip: the curve is not strictly monotonic (two points share a value); "
                "PCHIP needs strictly increasing abscissae"
            )
        return float(PchipInterpolator(xs, ys, extrapolate=False).integrate(lo, hi))
    raise InvalidInputError(f"method={method!r} is not one of {METHODS}")


def _overlap(a: np.ndarray, b: np.ndarray, what: str) -> tuple[float, float]:
    lo = max(float(a.min()), float(b.min()))
    hi = min(float(a.max()), float(b.max()))
    if not hi > lo:
        raise InvalidInputError(f"{what}: the two curves do not overlap, no Bjøntegaard delta exists")
    return lo, hi


def bd_rate(
    rate_anchor: Sequence[float],
    psnr_anchor: Sequence[float],
    rate_test: Sequence[float],
    psnr_test: Sequence[float],
    *,
    method: str = "cubic",
) -> float:
    """Bjøntegaard delta rate of ``test`` against ``anchor``, in percent.

    Log rate is interpolated as a function of PSNR (``method`` ``"cubic"`` per VCEG-M33 or
    ``"pchip"`` per JCTVC-L1100) and the difference averaged over the PSNR interval both curves
    cover: ``BD-rate = (exp(mean(ln R_test - ln R_anchor)) - 1) * 100``.

    Raises
    ------
    InvalidInputError
        Fewer than 4 points, non-positive or non-finite values, curves that do not overlap.

    >>> r = [100.0, 200.0, 400.0, 800.0]; p = [30.0, 33.0, 36.0, 39.0]
    >>> round(bd_rate(r, p, [2 * x for x in r], p), 6)     # twice the rate at every PSNR
    100.0
    """
    la, pa = _prepare(rate_anchor, psnr_anchor, "anchor")
    lt, pt = _prepare(rate_test, psnr_test, "test")
    lo, hi = _overlap(pa, pt, "bd_rate (PSNR interval)")
    ia = _integral(pa, la, lo, hi, method)
    it = _integral(pt, lt, lo, hi, method)
    return (math.exp((it - ia) / (hi - lo)) - 1.0) * 100.0


def bd_psnr(
    rate_anchor: Sequence[float],
    psnr_anchor: Sequence[float],
    rate_test: Sequence[float],
    psnr_test: Sequence[float],
    *,
    method: str = "cubic",
) -> float:
    """Bjøntegaard delta PSNR of ``test`` against ``anchor``, in dB.

    PSNR is interpolated as a function of log rate and the difference averaged over the log-rate
    interval both curves cover.

    >>> r = [100.0, 200.0, 400.0, 800.0]; p = [30.0, 33.0, 36.0, 39.0]
    >>> round(bd_psnr(r, p, r, [x + 0.5 for x in p]), 6)
    0.5
    """
    la, pa = _prepare(rate_anchor, psnr_anchor, "anchor")
    lt, pt = _prepare(rate_test, psnr_test, "test")
    lo, hi = _overlap(la, lt, "bd_psnr (rate interval)")
    ia = _integral(la, pa, lo, hi, method)
    it = _integral(lt, pt, lo, hi, method)
    return (it - ia) / (hi - lo)
