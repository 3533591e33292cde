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

:func:`bd_delta` is what reports use: the cubic, unless its fit is not monotonic over the
interval both curves cover (it overshoots between distant points: a BD-rate of -100 % from a
curve that jumps by 9 dB between two rates) or its BD-rate is beyond a factor
:data:`SANE_RATE_FACTOR` in rate; then PCHIP, which cannot overshoot. Its notes say which method
was used and why, and when the curves overlap over less than :data:`SMALL_OVERLAP` of either's
range (the delta then describes only that part of the curves).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ..warnfilter import filtered

__all__ = ["bd_rate", "bd_psnr", "bd_delta", "BdDelta", "METHODS", "SANE_RATE_FACTOR", "SMALL_OVERLAP"]

METHODS = ("cubic", "pchip")
#: A cubic BD-rate beyond this factor in rate (below -90 % or above +900 %) is taken as a fit
#: artefact and replaced by PCHIP's (as is one whose fit is not monotonic over the overlap).
SANE_RATE_FACTOR = 10.0
#: The notes warn when the overlap is less than this share of either curve's range.
SMALL_OVERLAP = 0.5


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


def _cubic_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares cubic through (x, y) in a centred, scaled variable ``u = (x - m) / s`` (same
    curve, well conditioned): ``(coefficients, m, s)``."""
    m, s = float(np.mean(x)), float(np.ptp(x)) / 2 or 1.0
    with filtered("error", np.exceptions.RankWarning):
        try:
            return np.polyfit((x - m) / s, y, 3), m, s
        except np.exceptions.RankWarning:
            raise InvalidInputError("cubic: the points do not determine a cubic (too few distinct values)") from None


def _cubic_increasing(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> bool:
    """Whether the least-squares cubic through (x, y) rises everywhere on [lo, hi]: its derivative
    (a quadratic) is positive at both ends and, when it lies inside, at its extremum."""
    coef, m, s = _cubic_fit(x, y)
    d = np.polyder(coef)
    ulo, uhi = (lo - m) / s, (hi - m) / s
    at = [ulo, uhi]
    if d[0] != 0 and ulo < -d[1] / (2 * d[0]) < uhi:
        at.append(-d[1] / (2 * d[0]))
    return bool(np.all(np.polyval(d, at) > 0))


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    """Integral over [lo, hi] of the curve through (x, y), interpolated by ``method``."""
    if method == "cubic":
        # the integral over x is s times the integral over u = (x - m) / s
        coef, m, s = _cubic_fit(x, y)
        poly = np.polyint(coef)
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


@dataclass(frozen=True)
class BdDelta:
    """A Bjøntegaard delta as a report states it: ``value`` (BD-rate in %, BD-PSNR in dB), the
    ``method`` that gave it (``"cubic"`` or ``"pchip"``) and ``notes`` on why and how far to
    trust it (empty when the cubic behaved and the curves overlap well)."""

    value: float
    method: str
    notes: tuple[str, ...] = ()


def bd_delta(
    rate_anchor: Sequence[float],
    psnr_anchor: Sequence[float],
    rate_test: Sequence[float],
    psnr_test: Sequence[float],
    *,
    kind: str = "rate",
) -> BdDelta:
    """BD-rate (``kind="rate"``) or BD-PSNR (``"psnr"``) by the cubic of VCEG-M33 when it is
    sound, else by PCHIP, with notes saying which and why.

    PCHIP is used when a curve's cubic fit is not increasing over the overlap (log rate must rise
    with PSNR and PSNR with log rate; a fit that turns back overshoots and its integral means
    nothing) or, for BD-rate, when the cubic result is beyond a factor :data:`SANE_RATE_FACTOR`
    in rate. A note also says when the overlap is less than :data:`SMALL_OVERLAP` of either
    curve's range.

    Raises
    ------
    InvalidInputError
        As :func:`bd_rate` (fewer than 4 points, curves that do not overlap ...), or a ``kind``
        other than ``"rate"`` and ``"psnr"``.

    >>> r = [0.25, 0.4, 0.5, 0.8, 1.0, 1.05]; p = [69.9, 73.1, 74.9, 79.6, 82.6, 83.1]
    >>> d = bd_delta(r, p, [0.25, 0.41, 0.47, 0.68], [79.5, 88.5, 88.6, 89.4])
    >>> round(bd_rate(r, p, [0.25, 0.41, 0.47, 0.68], [79.5, 88.5, 88.6, 89.4]), 1)  # the cubic blows up
    -100.0
    >>> d.method, round(d.value, 1)
    ('pchip', -72.1)
    >>> d.notes[0]
    'PCHIP: the cubic fit of the test curve is not monotonic over the overlap (cubic gave -100.0 %)'
    >>> d.notes[1].split(" (")[0]
    "small overlap: the curves share 3.60 dB of PSNR, 27 % of the anchor curve's and 36 % of the test curve's range"
    """
    if kind not in ("rate", "psnr"):
        raise InvalidInputError(f"kind={kind!r} is not 'rate' or 'psnr'")
    la, pa = _prepare(rate_anchor, psnr_anchor, "anchor")
    lt, pt = _prepare(rate_test, psnr_test, "test")
    # the abscissa the curves are integrated over: PSNR for BD-rate, log rate for BD-PSNR
    (xa, ya), (xt, yt) = ((pa, la), (pt, lt)) if kind == "rate" else ((la, pa), (lt, pt))
    unit = "%" if kind == "rate" else "dB"
    compute = bd_rate if kind == "rate" else bd_psnr
    lo, hi = _overlap(xa, xt, f"bd_{kind} ({'PSNR' if kind == 'rate' else 'rate'} interval)")
    notes: list[str] = []
    span = f"{hi - lo:.2f} dB of PSNR" if kind == "rate" else f"a factor {math.exp(hi - lo):.2f} in rate"
    shares = [f"{share * 100:.0f} % of the {name} curve's" for name, x in (("anchor", xa), ("test", xt))
              if (share := (hi - lo) / float(np.ptp(x))) < SMALL_OVERLAP]  # fmt: skip
    if shares:
        notes.append(f"small overlap: the curves share {span}, {' and '.join(shares)} range (the delta describes "
                     "only that part)")  # fmt: skip
    args = (rate_anchor, psnr_anchor, rate_test, psnr_test)
    why = ""
    try:
        cubic = compute(*args, method="cubic")
    except InvalidInputError as exc:  # no cubic through these points
        why = f"no cubic fit ({exc})"
    else:
        bent = [name for name, x, y in (("anchor", xa, ya), ("test", xt, yt)) if not _cubic_increasing(x, y, lo, hi)]
        if bent:
            which = "s of both curves are" if len(bent) == 2 else f" of the {bent[0]} curve is"
            why = f"the cubic fit{which} not monotonic over the overlap (cubic gave {cubic:+.1f} {unit})"
        elif kind == "rate" and not 1 / SANE_RATE_FACTOR - 1 < cubic / 100 < SANE_RATE_FACTOR - 1:
            why = f"the cubic result {cubic:+.1f} % is beyond a factor {SANE_RATE_FACTOR:g} in rate"
        else:
            return BdDelta(cubic, "cubic", tuple(notes))
    value = compute(*args, method="pchip")
    return BdDelta(value, "pchip", (f"PCHIP: {why}", *notes))
