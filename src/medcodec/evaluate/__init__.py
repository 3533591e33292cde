"""Evaluation: medcodec side by side with JPEG 2000, HTJ2K, JPEG-LS, JPEG XL, JPEG and zlib.

Modules, in the order data flows through them:

* :mod:`~medcodec.evaluate.inputs`: read one series (the only DICOM access).
* :mod:`~medcodec.evaluate.peers`: one :class:`CodecAdapter` per codec, medcodec included.
* :mod:`~medcodec.evaluate.ratecontrol`: reach a target bpp through any monotone knob.
* :mod:`~medcodec.evaluate.timing`: every speed measurement.
* :mod:`~medcodec.evaluate.metrics`: PSNR (peak ``2**bits_stored - 1``), RMSE, max error, SSIM,
  windowed metrics, sizes and ratios, with their definitions.
* :mod:`~medcodec.evaluate.bjontegaard`: BD-rate and BD-PSNR (cubic VCEG-M33 and PCHIP).
* :mod:`~medcodec.evaluate.runner`: the sweep, matched-rate and BD tables.
* :mod:`~medcodec.evaluate.report`: JSON, CSV and the self-contained HTML report.

Heavy libraries (matplotlib, scikit-image, scipy, tqdm) are imported only when used.
"""

from __future__ import annotations

from .bjontegaard import bd_psnr, bd_rate
from .inputs import LoadedSeries, load_series
from .metrics import (
    CT_WINDOWS,
    MetricsAccumulator,
    Window,
    apply_window,
    bits_per_pixel,
    compare,
    compression_ratio,
    max_abs_error,
    mb_per_s,
    mse,
    psnr,
    psnr_minmax,
    raw_bytes_per_pixel,
    raw_size,
    rmse,
    ssim,
)
from .peers import ADAPTERS, CodecAdapter, Knob, all_adapters, from_unsigned, get_adapter, to_unsigned
from .ratecontrol import KnobSearch, SearchResult, find_knob_for_rate
from .report import write_report
from .runner import DEFAULT_RATES, EvaluationResult, evaluate_point, run_evaluation

__all__ = [
    "ADAPTERS",
    "CT_WINDOWS",
    "DEFAULT_RATES",
    "CodecAdapter",
    "EvaluationResult",
    "Knob",
    "KnobSearch",
    "LoadedSeries",
    "MetricsAccumulator",
    "SearchResult",
    "Window",
    "all_adapters",
    "apply_window",
    "bd_psnr",
    "bd_rate",
    "bits_per_pixel",
    "compare",
    "compression_ratio",
    "evaluate_point",
    "find_knob_for_rate",
    "from_unsigned",
    "get_adapter",
    "load_series",
    "max_abs_error",
    "mb_per_s",
    "mse",
    "psnr",
    "psnr_minmax",
    "raw_bytes_per_pixel",
    "raw_size",
    "rmse",
    "run_evaluation",
    "ssim",
    "to_unsigned",
    "write_report",
]
