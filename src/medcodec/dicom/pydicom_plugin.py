"""A pydicom pixel-data decoder plugin: JPEG Baseline (.50) and Extended (.51) by medcodec's own decoder.

pydicom decodes JPEG through plugins (pylibjpeg-libjpeg, GDCM, Pillow). With this one registered
it can decode grayscale 8- and 12-bit JPEG with medcodec alone (no compiled JPEG library)::

    >>> from medcodec.dicom import register_pydicom_plugin
    >>> register_pydicom_plugin()
    ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51']

then ``ds.pixel_array`` uses it when no other plugin is installed, or always with
``pydicom.pixels.pixel_array(ds, decoding_plugin="medcodec")``. Registration goes through
pydicom's public ``Decoder.add_plugin`` and is explicit: importing medcodec changes nothing in
pydicom (the tests use pydicom's own plugins as independent decoders). The module follows
pydicom's plugin contract: ``DECODER_DEPENDENCIES``, ``is_available(uid)`` and a frame decoder.

What it decodes is what :func:`medcodec.codec.decode` reads (``docs/format.md``): sequential
Huffman SOF0/SOF1, one component; anything else (colour, progressive, lossless JPEG) raises,
and pydicom then tries its other plugins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..codec.jpeg import decode_jpeg
from ..errors import UnsupportedFeatureError

__all__ = ["PLUGIN_LABEL", "SYNTAXES", "DECODER_DEPENDENCIES", "is_available", "register_pydicom_plugin"]

#: The label pydicom knows the plugin by (``decoding_plugin="medcodec"``).
PLUGIN_LABEL = "medcodec"
#: Transfer syntaxes decoded: JPEG Baseline (Process 1) and JPEG Extended (Process 2 and 4).
SYNTAXES = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
#: pydicom's plugin contract: what each syntax needs (shown when the plugin is unavailable).
DECODER_DEPENDENCIES = {uid: ("numpy", "numba", "medcodec") for uid in SYNTAXES}


def is_available(uid: str) -> bool:
    """pydicom's plugin contract: this plugin can decode ``uid``."""
    return str(uid) in SYNTAXES


def _decode_frame(src: bytes, runner: Any) -> bytes:
    """One JPEG frame -> its samples as pydicom expects them: little-endian, Bits Allocated wide."""
    samples_per_pixel = int(runner.samples_per_pixel)
    if samples_per_pixel != 1:
        raise UnsupportedFeatureError(
            f"medcodec decodes grayscale JPEG only, not {samples_per_pixel} samples per pixel"
        )
    arr = decode_jpeg(src)
    width = 1 if int(runner.bits_allocated) <= 8 else 2
    dtype = np.dtype(f"<u{width}")
    return np.ascontiguousarray(arr.astype(dtype, copy=False)).tobytes()


def register_pydicom_plugin() -> list[str]:
    """Add the plugin to pydicom's JPEG Baseline and Extended decoders (idempotent).

    Not thread-safe (pydicom's ``add_plugin`` is not): call it once at start-up.

    Returns
    -------
    list[str]
        The transfer syntax UIDs the plugin is registered for.
    """
    from pydicom.pixels import get_decoder

    done = []
    for uid in SYNTAXES:
        decoder = get_decoder(uid)
        if not decoder.is_available or PLUGIN_LABEL not in decoder.available_plugins:
            try:
                decoder.add_plugin(PLUGIN_LABEL, (__name__, "_decode_frame"))
            except ValueError:  # already registered (pydicom refuses duplicate labels)
                pass
        done.append(uid)
    return done
