"""Quantization tables, quality scaling and (de)quantization (array -> array).

A quantization table is 64 integer steps. medcodec derives it from a *shape* (relative
weights, DC = 1) times a *scale* that depends on the quality and on how many bits the
data spans:

    step[i] = clamp(round(WEIGHTS[table][i] * 2**e(quality, range_bits)), 1, max_step)
    e(q, b) = (QUALITY_REF - q) / QUALITY_OCTAVE + b - 8                 q <= QUALITY_KNEE
    e(q, b) = min(that, e(QUALITY_KNEE, b) * (100 - q) / (100 - QUALITY_KNEE))    above it

so up to quality 95 every 12.5 quality points halve the steps, and the same quality means
the same error relative to the dynamic range for 8-bit and for 16-bit data; from 95 to 100
the steps fall faster, to a DC step of 1 at quality 100, the finest the formats hold (for a
12-bit CT, 5.3 at 95, 2.7 at 97, 1 at 100). Size and error move monotonically over the
whole 1-100 range (:func:`step_scale`).

``range_bits`` is the number of bits the data actually spans, padding left out
(:func:`medcodec.codec.levelshift.content_range_bits`): not the dtype and not blindly
``bits_stored``. An MR stored in 16 bits whose values span 13 would otherwise be quantized
8x too coarsely, which was the fault of the course report in ``shared/seeds/003``.

Calibration: at quality 75 (the default) the DC step is 1/256 of the span. For 12-bit CT
that is 16 HU, whose rounding noise is at most 4.6 HU RMS per coefficient: it stays
invisible in a brain window (W=80-100). Quality 100 is a DC step of 1. The first
calibration put quality 75 one octave coarser, and a head CT at the default showed
8x8 blocks in the brain window (docs/design-notes.md).

Tables (weights in natural order):

``"near-flat"`` (the ``.mdc`` default, :data:`MDC_DEFAULT_TABLE`, since 2026-12-04)
    ``1 + 0.03 (u + v)``: nearly flat, as minimises MSE for a given rate with an orthonormal
    transform. Chosen among tilts 0 (flat), 0.015, 0.03, 0.045, 0.06, 0.09 and DC weights
    0.85 / 1.15 on the shared training series with the default coder (format 2.11): 1.25 %
    smaller than ``"medical"`` at the same PSNR there, 0.98 % on 18 unseen CT / MR images
    (docs/design-notes.md, "The .mdc default table").
``"medical"`` (the ``.mdc`` default until 2026-12-04)
    Nearly flat with a gentle rise to high frequencies, ``1 + 0.09 (u + v)``: CT/MR noise is
    white-ish and diagnostic detail lives at mid frequencies.
``"flat"``
    All ones (the MSE-optimal choice at high rates).
``"annex-k"``
    T.81 Table K.1 luminance table / 16: the photographic table libjpeg uses.
``"ct"``, ``"mr"``, ``"radiograph"``
    Trained per modality for the standard JPEG encoder (:mod:`.tables_trained`), which picks
    one of them by modality when no table is given.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInputError
from . import tables_trained as _trained
from .zigzag import ZIGZAG

__all__ = [
    "TABLES",
    "MDC_DEFAULT_TABLE",
    "is_default_table",
    "QUALITY_REF",
    "QUALITY_OCTAVE",
    "QUALITY_KNEE",
    "quality_scale",
    "step_scale",
    "quant_table",
    "quantize",
    "dequantize",
    "round_levels",
    "error_bound",
    "steps_zigzag",
    "ROUNDING_ZZ",
]

#: T.81 Table K.1 (luminance), natural order.
ANNEX_K_LUMINANCE = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.float64,
)  # fmt: skip


def _tilted_weights(slope: float) -> np.ndarray:
    """``1 + slope (u + v)`` in natural order (u the column, v the row frequency)."""
    v, u = np.mgrid[0:8, 0:8]
    return (1.0 + slope * (u + v)).ravel()


TABLES: dict[str, np.ndarray] = {
    "near-flat": _tilted_weights(0.03),
    "medical": _tilted_weights(0.09),
    "flat": np.ones(64),
    "annex-k": ANNEX_K_LUMINANCE / 16.0,
    # trained per modality for standard JPEG (:mod:`.tables_trained`): "ct", "mr", "radiograph"
    **{name: np.array(w) for name, w in _trained.TRAINED.items()},
}
for _w in TABLES.values():
    _w.flags.writeable = False
#: The table an ``.mdc`` DCT stream is coded with when the caller names none (``medcodec.encode``,
#: the series writer, the CLI); standard JPEG picks its own by modality (:mod:`.tables_trained`).
MDC_DEFAULT_TABLE = "near-flat"


def is_default_table(table: object) -> bool:
    """Whether ``table`` (a name, 64 weights or None) asks for the ``.mdc`` default: None or its name.
    An array is never the default (and is not compared element by element)."""
    return table is None or (isinstance(table, str) and table == MDC_DEFAULT_TABLE)


QUALITY_REF = 75.0  # g(QUALITY_REF) = 1: the default quality's DC step is span / 256
QUALITY_OCTAVE = 12.5


def quality_scale(quality: float) -> float:
    """g(quality): the step multiplier for quality 1..100 (halves every 12.5 points); the steps
    themselves follow :func:`step_scale`, which departs from it above :data:`QUALITY_KNEE`."""
    if not 1 <= quality <= 100:
        raise InvalidInputError(f"quality={quality!r} is out of range, expected 1..100")
    return float(2.0 ** ((QUALITY_REF - quality) / QUALITY_OCTAVE))


#: Above this quality the steps no longer halve every 12.5 points but fall log-linearly to a DC
#: step of 1 at quality 100 (before 2026-12-02 quality 100 stopped at a DC step of 2**(b - 10):
#: 4 for 12-bit data, 72 dB on a 14-bit CT where libjpeg-turbo's quality 100 gives 83 dB). Above
#: every fixed quality of the delivery presets (92 at most), so their operating points stay.
QUALITY_KNEE = 95.0


def step_scale(quality: float, range_bits: int) -> float:
    """The DC step (before rounding) for ``quality`` 1..100 and data spanning ``range_bits``.

    ``quality_scale(quality) * 2**(range_bits - 8)`` up to :data:`QUALITY_KNEE`; above it the
    log2 of the step falls linearly to 0 (a step of 1) at quality 100, or keeps the law below
    where that is finer (data so narrow that the step is near 1 at the knee already).

    >>> step_scale(75, 12), step_scale(100, 12), step_scale(100, 16), step_scale(100, 8)
    (16.0, 1.0, 1.0, 0.25)
    """
    e = math.log2(quality_scale(quality)) + range_bits - 8
    if quality > QUALITY_KNEE:
        knee = (QUALITY_REF - QUALITY_KNEE) / QUALITY_OCTAVE + range_bits - 8
        e = min(e, max(knee, 0.0) * (100.0 - quality) / (100.0 - QUALITY_KNEE))
    return float(2.0**e)


def quant_table(
    quality: float,
    range_bits: int,
    *,
    table: str | np.ndarray = "medical",
    max_step: int = 65535,
) -> np.ndarray:
    """Quantization steps (uint16, natural order) for ``quality`` and data spanning ``range_bits``.

    ``table`` defaults to ``"medical"``, the shape these steps were defined with; the ``.mdc``
    encoders pass :data:`MDC_DEFAULT_TABLE` and standard JPEG its trained tables.

    >>> quant_table(100, 8, table="flat")[:4]
    array([1, 1, 1, 1], dtype=uint16)
    """
    if isinstance(table, str):
        try:
            weights = TABLES[table]
        except KeyError:
            raise InvalidInputError(f"table={table!r} is unknown, expected one of {sorted(TABLES)}") from None
    else:
        try:
            weights = np.asarray(table, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise InvalidInputError("a custom table must have 64 positive finite weights (numbers)") from None
        if weights.shape != (64,) or not np.all(np.isfinite(weights) & (weights > 0)):
            raise InvalidInputError("a custom table must have 64 positive finite weights")
    steps = np.rint(weights * step_scale(quality, range_bits))
    return np.clip(steps, 1, max_step).astype(np.uint16)


def quantize(coefficients: np.ndarray, steps: np.ndarray, *, ac_rounding: float = 0.5) -> np.ndarray:
    """Reference quantizer: (N, 64) natural-order coefficients -> int32 levels.

    DC is rounded to nearest; AC uses ``trunc(|c|/q + ac_rounding)`` (0.5 is plain
    rounding; smaller values widen the dead zone, i.e. threshold small coefficients).
    """
    x = np.asarray(coefficients, dtype=np.float64) / steps.astype(np.float64)
    rnd = np.full(64, ac_rounding)
    rnd[0] = 0.5
    return (np.sign(x) * np.floor(np.abs(x) + rnd)).astype(np.int32)


#: Rounding offset for AC levels: trunc(|x| + AC_ROUNDING). Below 0.5 it widens the dead
#: zone around zero (thresholds isolated small coefficients, which cost more bits than
#: they remove error); DC is always rounded to nearest. Chosen by measurement, see
#: docs/design-notes.md.
AC_ROUNDING = 0.5
#: The rounding offset of each zigzag position (what :func:`round_levels` and the fused
#: kernels of :mod:`._kernels` add before truncating).
ROUNDING_ZZ = np.full(64, AC_ROUNDING)
ROUNDING_ZZ[0] = 0.5
ROUNDING_ZZ.flags.writeable = False


def round_levels(scaled_zz: np.ndarray) -> np.ndarray:
    """Coefficients already divided by their steps (zigzag order) -> int32 levels."""
    return np.trunc(scaled_zz + np.copysign(ROUNDING_ZZ, scaled_zz)).astype(np.int32)


def dequantize(levels: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Levels (N, 64) natural order -> coefficients (float64)."""
    return levels.astype(np.float64) * steps.astype(np.float64)


def error_bound(steps: np.ndarray) -> float:
    """Guaranteed bound on the absolute pixel error for these steps (before clipping).

    Each level is within step/2 of the true coefficient (rounding offsets <= 0.5), and
    the orthonormal basis function (u, v) never exceeds a(u) a(v) in magnitude
    (a(0) = sqrt(1/8), a(k) = 1/2), so the reconstruction error is at most
    sum(step/2 * a(u) a(v)) plus 0.5 for rounding to integers. Clipping to the declared
    range can only reduce it. Typical errors are far smaller (see the PSNR tables in
    docs/format.md); this is the worst case.
    """
    a = np.full(8, 0.5)
    a[0] = np.sqrt(1 / 8)
    basis_max = np.outer(a, a).ravel()
    return float(np.sum(np.asarray(steps, dtype=np.float64) / 2 * basis_max) + 0.5)


def steps_zigzag(steps: np.ndarray) -> np.ndarray:
    """Natural-order steps -> zigzag order."""
    return np.asarray(steps)[ZIGZAG]
