"""Image-quality, size and speed metrics, each with its definition stated.

Every figure medcodec reports about a codec comes from this module, so each number has one
definition:

* **PSNR** = ``10 log10(peak**2 / MSE)`` with ``peak = 2**bits_stored - 1`` by default. The peak
  is always passed explicitly (``bits_stored=`` or ``peak=``), never derived from the array dtype:
  a 12-bit CT in a ``uint16`` array has peak 4095, not 65535 (which would add 24.08 dB).
  :func:`psnr_minmax` is the other convention, ``peak = max - min`` of the reference, and is
  always labelled as such.
* **RMSE** and **maximum absolute error** in stored units, and in output units (HU for CT) by
  multiplying by ``|rescale_slope|``; the rescale is linear, so this is exact.
* **SSIM** (Wang et al. 2004) through :func:`skimage.metrics.structural_similarity` with an
  explicit ``data_range`` and the paper's settings (Gaussian window, sigma 1.5, population
  covariance); on a stack, the mean of the per-frame 2-D SSIMs. The window spans 11x11 pixels
  (:data:`SSIM_MIN_SIDE`): frames smaller than that have no SSIM by this definition, and the
  metrics report it as not available (``None``) rather than switch to another window.
* **Size**: the raw size is 1 byte per pixel for ``bits_stored <= 8`` and 2 bytes per pixel for
  9-16-bit data (how the pixels sit in memory and in uncompressed DICOM). Bits per pixel (bpp) =
  ``8 * compressed bytes / pixels``; compression ratio = raw bytes / compressed bytes.
* **Speed**: MB/s of raw data (1 MB = 10**6 bytes), see :mod:`medcodec.evaluate.timing`.
* **Windowed metrics**: radiologists read windowed images, so errors are also measured after the
  DICOM linear VOI window (PS3.3 C.11.2.1.2.1) maps output units to a display scale [0, 1]:
  PSNR with peak 1, the largest error in gray levels of an 8-bit display (x255), SSIM with
  data range 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidInputError
from .spec import PixelSpec, raw_bytes_per_pixel

__all__ = [
    "SSIM_SETTINGS",
    "SSIM_MIN_SIDE",
    "Window",
    "CT_WINDOWS",
    "raw_bytes_per_pixel",
    "raw_size",
    "bits_per_pixel",
    "compression_ratio",
    "bpp_for_ratio",
    "mb_per_s",
    "mse",
    "rmse",
    "max_abs_error",
    "psnr",
    "psnr_minmax",
    "ssim",
    "apply_window",
    "default_windows",
    "MetricsAccumulator",
    "compare",
    "TEXTURE_HU_RANGE",
    "TEXTURE_MIN_STD_HU",
    "TEXTURE_FLAT_RETENTION",
    "texture_block_stats",
    "texture_retention",
]

#: Keyword arguments given to :func:`skimage.metrics.structural_similarity` (Wang et al. 2004).
SSIM_SETTINGS: Mapping[str, Any] = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
#: Smallest frame side SSIM is defined for with :data:`SSIM_SETTINGS`: the Gaussian window spans
#: ``2 * int(3.5 * sigma + 0.5) + 1`` = 11 pixels (scikit-image truncates it at 3.5 sigma, the
#: paper's 11x11 window).
SSIM_MIN_SIDE: int = 2 * int(3.5 * float(SSIM_SETTINGS["sigma"]) + 0.5) + 1


@dataclass(frozen=True)
class Window:
    """A display window in output units (HU for CT): DICOM Window Center / Width."""

    name: str
    center: float
    width: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.center) and math.isfinite(self.width)) or self.width < 1:
            raise InvalidInputError(
                f"window {self.name!r}: center={self.center!r} width={self.width!r} is invalid, "
                "expected finite values and width >= 1 (PS3.3 C.11.2.1.2.1)"
            )


#: Windows used for CT unless told otherwise: the two a chest reader uses most.
CT_WINDOWS: tuple[Window, ...] = (
    Window("soft_tissue", 40.0, 400.0),
    Window("lung", -600.0, 1500.0),
)


# --------------------------------------------------------------------------- size and speed


def raw_size(n_pixels: int, bits_stored: int) -> int:
    """Uncompressed size in bytes of ``n_pixels`` pixels (:func:`medcodec.spec.raw_bytes_per_pixel`)."""
    return int(n_pixels) * raw_bytes_per_pixel(bits_stored)


def bits_per_pixel(n_bytes: int, n_pixels: int) -> float:
    """Compressed bits per pixel: ``8 * n_bytes / n_pixels``.

    >>> bits_per_pixel(32768, 512 * 512)
    1.0
    """
    if n_pixels <= 0:
        raise InvalidInputError(f"n_pixels={n_pixels} must be positive")
    return 8.0 * n_bytes / n_pixels


def compression_ratio(n_bytes: int, n_pixels: int, bits_stored: int) -> float:
    """Raw size over compressed size (raw = :func:`raw_size`); ``inf`` for an empty stream.

    >>> compression_ratio(32768, 512 * 512, 12)   # 1 bpp of 16-bit storage
    16.0
    """
    if n_bytes <= 0:
        return math.inf
    return raw_size(n_pixels, bits_stored) / n_bytes


def bpp_for_ratio(ratio: float, bits_stored: int) -> float:
    """The bits per pixel a compression ratio means for this bit depth (40:1 of 12-bit -> 0.4)."""
    if ratio <= 0:
        raise InvalidInputError(f"ratio={ratio!r} must be positive")
    return 8.0 * raw_bytes_per_pixel(bits_stored) / ratio


def mb_per_s(raw_bytes: int, seconds: float) -> float:
    """Throughput in MB/s of raw (uncompressed) data, 1 MB = 10**6 bytes."""
    if seconds <= 0:
        return math.inf
    return raw_bytes / seconds / 1e6


# --------------------------------------------------------------------------- error metrics


def _pair(reference: ArrayLike, test: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ref = np.asarray(reference)
    tst = np.asarray(test)
    if ref.shape != tst.shape:
        raise InvalidInputError(f"shape mismatch: reference {ref.shape} versus test {tst.shape}")
    if ref.size == 0:
        raise InvalidInputError("empty arrays have no error")
    return ref.astype(np.float64, copy=False), tst.astype(np.float64, copy=False)


def mse(reference: ArrayLike, test: ArrayLike) -> float:
    """Mean squared error, computed in float64 (no integer overflow)."""
    ref, tst = _pair(reference, test)
    diff = ref - tst
    return float(np.mean(diff * diff))


def rmse(reference: ArrayLike, test: ArrayLike) -> float:
    """Root mean squared error in the units of the arrays."""
    return math.sqrt(mse(reference, test))


def max_abs_error(reference: ArrayLike, test: ArrayLike) -> float:
    """Largest absolute difference (peak absolute error)."""
    ref, tst = _pair(reference, test)
    return float(np.max(np.abs(ref - tst)))


def _psnr_from_mse(m: float, peak: float) -> float:
    if m == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / m)


def psnr(
    reference: ArrayLike,
    test: ArrayLike,
    /,
    *,
    bits_stored: int | None = None,
    peak: float | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` when the arrays are equal.

    Exactly one of ``bits_stored`` (peak ``2**bits_stored - 1``, the default convention) or
    ``peak`` must be given: the peak is never taken from the dtype.

    Parameters
    ----------
    reference, test
        Arrays of the same shape (any numeric dtype).
    bits_stored
        Significant bits of the data; the peak is ``2**bits_stored - 1``.
    peak
        An explicit peak value instead.

    Raises
    ------
    InvalidInputError
        Neither or both of ``bits_stored`` and ``peak``; shapes differ; non-positive peak.

    >>> ref = np.array([[0, 4094]], dtype=np.uint16)
    >>> round(psnr(ref, ref + 1, bits_stored=12), 3)    # MSE 1, peak 4095: 20 log10(4095)
    72.245
    """
    if (bits_stored is None) == (peak is None):
        raise InvalidInputError("psnr: pass exactly one of bits_stored= or peak= (never derived from dtype)")
    if bits_stored is not None:
        if not 1 <= int(bits_stored) <= 32:
            raise InvalidInputError(f"bits_stored={bits_stored!r} is invalid, expected 1..32")
        peak = float((1 << int(bits_stored)) - 1)
    assert peak is not None
    if not peak > 0:
        raise InvalidInputError(f"peak={peak!r} must be positive")
    return _psnr_from_mse(mse(reference, test), float(peak))


def psnr_minmax(reference: ArrayLike, test: ArrayLike) -> float:
    """PSNR with ``peak = max(reference) - min(reference)`` (the *dynamic-range* convention).

    Lower than :func:`psnr` with ``2**bits_stored - 1`` when the data do not fill their range;
    always report it labelled as "peak = max - min".
    """
    ref = np.asarray(reference)
    span = float(np.max(ref)) - float(np.min(ref))
    if span <= 0:
        raise InvalidInputError("psnr_minmax: the reference is constant, max - min = 0")
    return _psnr_from_mse(mse(reference, test), span)


def ssim(reference: ArrayLike, test: ArrayLike, /, *, data_range: float) -> float:
    """Structural similarity (Wang et al. 2004) with an explicit ``data_range``.

    2-D arrays give one SSIM; a ``(frames, rows, cols)`` stack gives the mean of the per-frame
    2-D SSIMs. Settings: :data:`SSIM_SETTINGS`.

    Raises
    ------
    InvalidInputError
        Frames smaller than the :data:`SSIM_MIN_SIDE` x :data:`SSIM_MIN_SIDE` window (SSIM is not
        defined for them; :class:`MetricsAccumulator` reports ``None`` instead), shapes differ.
    """
    from skimage.metrics import structural_similarity

    ref, tst = _pair(reference, test)
    if not data_range > 0:
        raise InvalidInputError(f"data_range={data_range!r} must be positive")
    if ref.ndim == 2:
        ref, tst = ref[None], tst[None]
    if ref.ndim != 3:
        raise InvalidInputError(f"ssim: expected a 2-D frame or a 3-D stack, got shape {ref.shape}")
    if min(ref.shape[1:]) < SSIM_MIN_SIDE:
        raise InvalidInputError(
            f"ssim: frames of {ref.shape[1]}x{ref.shape[2]} are smaller than the {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} "
            "Gaussian window (sigma 1.5, Wang et al. 2004): SSIM is not defined for them"
        )
    values = [
        float(structural_similarity(r, t, data_range=float(data_range), **SSIM_SETTINGS))  # type: ignore[no-untyped-call]
        for r, t in zip(ref, tst)
    ]
    return float(np.mean(values))


# --------------------------------------------------------------------------- windows


def apply_window(values: ArrayLike, *, center: float, width: float) -> NDArray[np.float64]:
    """Map output units to a display scale [0, 1] with the DICOM linear VOI function.

    PS3.3 C.11.2.1.2.1: below ``c - 0.5 - (w - 1) / 2`` -> 0, above ``c - 0.5 + (w - 1) / 2`` -> 1,
    else ``(x - (c - 0.5)) / (w - 1) + 0.5``.

    >>> apply_window(np.array([-1000.0, 40.0, 1000.0]), center=40, width=400).round(4).tolist()
    [0.0, 0.5013, 1.0]
    """
    if width < 1:
        raise InvalidInputError(f"window width={width!r} must be >= 1 (PS3.3 C.11.2.1.2.1)")
    x = np.asarray(values, dtype=np.float64)
    if width == 1:
        return (x > center - 0.5).astype(np.float64)
    y = (x - (center - 0.5)) / (width - 1) + 0.5
    return np.clip(y, 0.0, 1.0)


def default_windows(spec: PixelSpec, modality: str | None = None) -> tuple[Window, ...]:
    """Windows to measure by default: :data:`CT_WINDOWS` for CT (or HU data), else the image's
    own default window when it has one, else none."""
    if (modality or "").upper() == "CT" or spec.rescale_type.upper() == "HU":
        return CT_WINDOWS
    if spec.window_center is not None and spec.window_width is not None and spec.window_width >= 1:
        return (Window("default", float(spec.window_center), float(spec.window_width)),)
    return ()


# --------------------------------------------------------------------------- accumulation


class MetricsAccumulator:
    """Metrics of a decoded stack against its original, added frame by frame (bounded memory).

    PSNR of the stack comes from the total squared error over all pixels (not a mean of per-frame
    PSNRs); the worst frame's PSNR is reported as ``psnr_min_frame_db``. SSIM is the mean of the
    per-frame SSIMs; ``None`` (not available) when a frame is smaller than the SSIM window
    (:data:`SSIM_MIN_SIDE`), never an error: the other metrics are still measured.

    Parameters
    ----------
    spec
        Meaning of the stored values: ``bits_stored`` gives the PSNR peak, the rescale gives HU.
    windows
        Display windows for the windowed metrics.
    with_ssim
        Compute SSIM (the slowest metric).
    """

    def __init__(self, spec: PixelSpec, *, windows: Iterable[Window] = (), with_ssim: bool = True):
        self.spec = spec
        self.windows = tuple(windows)
        self.with_ssim = with_ssim
        self._peak = float(spec.peak)
        self._n = 0
        self._sse = 0.0
        self._max_err = 0.0
        self._frame_psnrs: list[float] = []
        self._ssims: list[float] = []
        self._ssim_undefined = False  # a frame smaller than the SSIM window was added
        self._ref_min = math.inf
        self._ref_max = -math.inf
        self._win_sse = {w.name: 0.0 for w in self.windows}
        self._win_max = {w.name: 0.0 for w in self.windows}
        self._win_ssims: dict[str, list[float]] = {w.name: [] for w in self.windows}

    def add(self, reference: ArrayLike, test: ArrayLike) -> None:
        """Add one 2-D frame (or a stack, frame by frame)."""
        ref, tst = _pair(reference, test)
        if ref.ndim == 3:
            for r, t in zip(ref, tst):
                self.add(r, t)
            return
        if ref.ndim != 2:
            raise InvalidInputError(f"expected 2-D frames, got shape {ref.shape}")
        diff = ref - tst
        sse = float(np.sum(diff * diff))
        self._n += diff.size
        self._sse += sse
        self._max_err = max(self._max_err, float(np.max(np.abs(diff))))
        self._frame_psnrs.append(_psnr_from_mse(sse / diff.size, self._peak))
        self._ref_min = min(self._ref_min, float(ref.min()))
        self._ref_max = max(self._ref_max, float(ref.max()))
        with_ssim = self.with_ssim and min(ref.shape) >= SSIM_MIN_SIDE
        self._ssim_undefined |= self.with_ssim and not with_ssim
        if with_ssim:
            self._ssims.append(ssim(ref, tst, data_range=self._peak))
        if self.windows:
            ref_u = self.spec.to_output_units(ref)
            tst_u = self.spec.to_output_units(tst)
            for w in self.windows:
                a = apply_window(ref_u, center=w.center, width=w.width)
                b = apply_window(tst_u, center=w.center, width=w.width)
                d = a - b
                self._win_sse[w.name] += float(np.sum(d * d))
                self._win_max[w.name] = max(self._win_max[w.name], float(np.max(np.abs(d))))
                if with_ssim:
                    self._win_ssims[w.name].append(ssim(a, b, data_range=1.0))

    def result(self) -> dict[str, Any]:
        """All metrics as a flat-ish dict (``windows`` is a dict of dicts). PSNR ``inf`` = lossless."""
        if self._n == 0:
            raise InvalidInputError("no frames were added")
        m = self._sse / self._n
        slope = abs(self.spec.rescale_slope)
        span = self._ref_max - self._ref_min
        out: dict[str, Any] = {
            "psnr_db": _psnr_from_mse(m, self._peak),
            "psnr_peak": self._peak,
            "psnr_minmax_db": _psnr_from_mse(m, span) if span > 0 else None,
            "psnr_minmax_peak": span,
            "psnr_min_frame_db": min(self._frame_psnrs),
            "mse": m,
            "rmse": math.sqrt(m),
            "max_abs_error": self._max_err,
            "rmse_hu": math.sqrt(m) * slope,
            "max_abs_error_hu": self._max_err * slope,
            "ssim": float(np.mean(self._ssims)) if self._ssims and not self._ssim_undefined else None,
            "lossless": self._sse == 0,
        }
        windows: dict[str, Any] = {}
        for w in self.windows:
            wm = self._win_sse[w.name] / self._n
            windows[w.name] = {
                "center": w.center,
                "width": w.width,
                "psnr_db": _psnr_from_mse(wm, 1.0),
                "max_abs_error_levels": self._win_max[w.name] * 255.0,
                "ssim": float(np.mean(self._win_ssims[w.name]))
                if self._win_ssims[w.name] and not self._ssim_undefined
                else None,
            }
        out["windows"] = windows
        return out


def compare(
    reference: ArrayLike,
    test: ArrayLike,
    spec: PixelSpec,
    *,
    windows: Iterable[Window] = (),
    with_ssim: bool = True,
) -> dict[str, Any]:
    """Every quality metric of ``test`` against ``reference`` (2-D frame or 3-D stack).

    >>> spec = PixelSpec(bits_stored=12, rescale_intercept=-1024.0)
    >>> ref = np.full((8, 8), 1000, dtype=np.uint16)
    >>> m = compare(ref, ref + 2, spec, with_ssim=False)
    >>> m["rmse"], m["max_abs_error_hu"], round(m["psnr_db"], 2)
    (2.0, 2.0, 66.22)
    """
    acc = MetricsAccumulator(spec, windows=windows, with_ssim=with_ssim)
    acc.add(reference, test)
    return acc.result()


# --------------------------------------------------------------------------------------
# Texture retention (issue 11)
# --------------------------------------------------------------------------------------

#: Soft tissue for the texture metric: every voxel of the block within this HU range ...
TEXTURE_HU_RANGE = (-150.0, 250.0)
#: ... and a block standard deviation of at least this many HU (noise or structure to keep).
TEXTURE_MIN_STD_HU = 8.0
#: A block is *flattened* when its decoded standard deviation is below this share of the original's.
TEXTURE_FLAT_RETENTION = 0.35


def texture_block_stats(
    reference: ArrayLike,
    test: ArrayLike,
    *,
    rescale_slope: float = 1.0,
    rescale_intercept: float = 0.0,
    hu_range: tuple[float, float] = TEXTURE_HU_RANGE,
    min_std: float = TEXTURE_MIN_STD_HU,
) -> NDArray[np.float64]:
    """Texture retention of every soft-tissue block of a frame (or a stack, frames concatenated).

    Soft-tissue blocks are the aligned 8x8 blocks (the JPEG grid, partial edge blocks left out)
    whose values, in output units (``stored * slope + intercept``: HU for CT), all lie within
    ``hu_range`` and whose standard deviation is at least ``min_std``. The retention of such a
    block is ``std(decoded block) / std(original block)`` (population standard deviations):
    1 keeps the texture's amplitude, values near 0 mean the block was decoded flat.

    Returns
    -------
    numpy.ndarray
        float64 retentions, one per soft-tissue block (empty when there is none).
    """
    ref, tst = _pair(reference, test)
    if ref.ndim == 2:
        ref, tst = ref[None], tst[None]
    if ref.ndim != 3:
        raise InvalidInputError(f"expected a 2-D frame or a 3-D stack, got shape {ref.shape}")
    f, r, c = ref.shape
    by, bx = r // 8, c // 8
    if by == 0 or bx == 0:
        return np.zeros(0)

    def blocks(a: NDArray[np.float64]) -> NDArray[np.float64]:
        a = a[:, : by * 8, : bx * 8] * rescale_slope + rescale_intercept
        return a.reshape(f, by, 8, bx, 8).transpose(0, 1, 3, 2, 4).reshape(-1, 64)

    rb, tb = blocks(ref), blocks(tst)
    rstd = rb.std(axis=1)
    soft = (rb.min(axis=1) >= hu_range[0]) & (rb.max(axis=1) <= hu_range[1]) & (rstd >= min_std)
    return tb[soft].std(axis=1) / rstd[soft]


def texture_retention(
    reference: ArrayLike,
    test: ArrayLike,
    *,
    rescale_slope: float = 1.0,
    rescale_intercept: float = 0.0,
    hu_range: tuple[float, float] = TEXTURE_HU_RANGE,
    min_std: float = TEXTURE_MIN_STD_HU,
) -> dict[str, Any]:
    """Does a codec keep the noise texture of soft tissue, or decode it as flat 8x8 patches?

    PSNR rewards erasing noise, and a rate-distortion quantizer that zeroes every AC
    coefficient of a noisy block gains PSNR while the reader sees a waxy mosaic. This
    measures it, per soft-tissue block (:func:`texture_block_stats`): a block is
    *flattened* when its retention is below :data:`TEXTURE_FLAT_RETENTION` (0.35).

    Parameters
    ----------
    reference, test
        Stored values, 2-D frame or 3-D stack.
    rescale_slope, rescale_intercept
        Map stored values to output units (HU for CT), in which ``hu_range`` and ``min_std`` are given.
    hu_range, min_std
        The soft-tissue definition: all values of the block within ``hu_range`` (default
        -150..250 HU) and block standard deviation >= ``min_std`` (default 8 HU).

    Returns
    -------
    dict
        ``blocks`` (number of soft-tissue blocks), ``flattened_fraction`` (0..1),
        ``median_retention``, ``mean_retention`` and ``p10_retention`` (10th percentile);
        the last four are ``None`` when there is no soft-tissue block.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = (1064 + 20 * rng.standard_normal((64, 64))).astype(np.int32)
    >>> flat = np.repeat(np.repeat(ref.reshape(8, 8, 8, 8).mean(axis=(1, 3)), 8, 0), 8, 1)
    >>> t = texture_retention(ref, flat, rescale_intercept=-1024)
    >>> t["blocks"], t["flattened_fraction"]
    (64, 1.0)
    >>> texture_retention(ref, ref, rescale_intercept=-1024)["median_retention"]
    1.0
    """
    ret = texture_block_stats(
        reference, test, rescale_slope=rescale_slope, rescale_intercept=rescale_intercept, hu_range=hu_range,
        min_std=min_std,
    )  # fmt: skip
    if ret.size == 0:
        return {"blocks": 0, "flattened_fraction": None, "median_retention": None, "mean_retention": None,
                "p10_retention": None}  # fmt: skip
    return {
        "blocks": int(ret.size),
        "flattened_fraction": float(np.mean(ret < TEXTURE_FLAT_RETENTION)),
        "median_retention": float(np.median(ret)),
        "mean_retention": float(np.mean(ret)),
        "p10_retention": float(np.percentile(ret, 10)),
    }
