"""Frames as a person looks at them: VOI window, MONOCHROME1 inverted, 8 bits for display.

Stored values are first rescaled to output units (HU for CT, PS3.3 C.11.1.1.2), then mapped by
the DICOM linear VOI window function (PS3.3 C.11.2.1.2.1, :func:`medcodec.metrics.apply_window`)
to [0, 1], inverted for MONOCHROME1 (higher value = darker, PS3.3 C.7.6.3.1.2), and written as
8-bit grey (:func:`window_to_8bit` also applies LINEAR_EXACT and SIGMOID windows, for WADO's
``/rendered``). The window is, in order of preference: the one asked for (``"C,W"`` or a preset
name from :data:`WINDOW_PRESETS`), the header's default window, else the 0.5-99.5 percentile
range of all the frames rendered together (one window for the whole series: a window per frame
would make slices flicker brighter and darker).

Not for measuring: a raw export keeps every stored value (``decode --to png --png-raw``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .errors import InvalidInputError
from .metrics import Window, apply_window
from .spec import PixelSpec

__all__ = [
    "WINDOW_PRESETS",
    "WINDOW_FUNCTIONS",
    "Window",
    "parse_window",
    "choose_window",
    "render_8bit",
    "window_to_8bit",
]

#: Common CT windows (center, width in HU), as radiology references list them
#: (e.g. Radiopaedia, "Windowing (CT)"). ``brain`` is the one a head CT is read in.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "soft_tissue": (40.0, 400.0),
    "mediastinum": (50.0, 350.0),
    "liver": (60.0, 160.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "temporal_bone": (600.0, 2800.0),
}


def parse_window(text: str) -> Window:
    """``"40,80"`` or a preset name (``"brain"``, ``"soft-tissue"``...) -> :class:`Window`.

    >>> parse_window("brain"), parse_window("-600,1500").center
    (Window(name='brain', center=40.0, width=80.0), -600.0)
    """
    key = text.strip().lower().replace("-", "_")
    if key in WINDOW_PRESETS:
        return Window(key, *WINDOW_PRESETS[key])
    try:
        center, width = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidInputError(
            f"window={text!r}: expected CENTER,WIDTH (e.g. 40,400) or one of {', '.join(WINDOW_PRESETS)}"
        ) from None
    return Window(f"{center:g},{width:g}", center, width)


def choose_window(frames: Sequence[NDArray[np.integer]] | NDArray[np.integer], spec: PixelSpec,
                  window: Window | None = None) -> Window:  # fmt: skip
    """The window to render with: ``window`` if given, else the header's (``spec``), else the
    0.5-99.5 percentile range of ``frames`` in output units (named ``"auto"``)."""
    if window is not None:
        return window
    if spec.window_center is not None and spec.window_width is not None and spec.window_width >= 1:
        return Window("header", float(spec.window_center), float(spec.window_width))
    values = spec.to_output_units(np.asarray(frames))
    lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    width = max(hi - lo, 1.0)
    return Window("auto", lo + width / 2 + 0.5, width + 1)  # spans lo..hi under C.11.2.1.2.1


def render_8bit(frame: NDArray[np.integer], spec: PixelSpec, window: Window) -> NDArray[np.uint8]:
    """One frame for display: rescale, VOI window, MONOCHROME1 inverted, 0..255.

    >>> spec = PixelSpec(bits_stored=16, signed=True, rescale_intercept=0.0)
    >>> render_8bit(np.array([[-1000, 40, 1000]], np.int16), spec, parse_window("40,400")).tolist()
    [[0, 128, 255]]
    """
    y = apply_window(spec.to_output_units(np.asarray(frame)), center=window.center, width=window.width)
    if spec.photometric_interpretation == "MONOCHROME1":
        y = 1.0 - y
    return np.rint(y * 255.0).astype(np.uint8)


#: The VOI LUT functions of WADO's ``?window=`` (PS3.18 §8.3.5.1.4) and of a file's (0028,1056).
WINDOW_FUNCTIONS = ("linear", "linear-exact", "sigmoid")


def window_to_8bit(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """Output values through a VOI window to 0..255 (float): PS3.3 C.11.2.1.2.1 ``linear`` (the
    default), C.11.2.1.3.2 ``linear-exact``, C.11.2.1.3.1 ``sigmoid``; clipped by the caller.

    >>> window_to_8bit(np.array([-1000.0, 40.0, 1000.0]), 40.0, 400.0, "linear").round(1).tolist()
    [-536.8, 127.8, 741.4]
    >>> window_to_8bit(np.array([40.0]), 40.0, 400.0, "sigmoid").tolist()
    [127.5]
    """
    if function == "sigmoid":
        return 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "linear-exact":
        return ((values - center) / width + 0.5) * 255.0
    return ((values - (center - 0.5)) / (width - 1 if width > 1 else 1) + 0.5) * 255.0
