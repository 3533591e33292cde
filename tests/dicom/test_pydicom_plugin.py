"""pydicom decodes JPEG Baseline / Extended with medcodec's plugin alone, and agrees with libjpeg."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import get_decoder, pixel_array

from medcodec.dicom import compress, register_pydicom_plugin
from medcodec.dicom.pydicom_plugin import PLUGIN_LABEL, SYNTAXES
from medcodec.errors import UnsupportedFeatureError

CHEST = "ct_chest_lungpetctdx_A0001_philips/0030.dcm"


@pytest.fixture
def plugin() -> Iterator[None]:
    """Registered for the test, removed after it (other tests use pydicom's own plugins as references)."""
    assert register_pydicom_plugin() == list(SYNTAXES)
    assert register_pydicom_plugin() == list(SYNTAXES)  # idempotent
    yield
    for uid in SYNTAXES:
        get_decoder(uid).remove_plugin(PLUGIN_LABEL)


def _file(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore::medcodec.errors.DepthReducedWarning")  # a 12-bit CT as 8-bit baseline
@pytest.mark.parametrize("uid", SYNTAXES)
def test_pydicom_decodes_our_jpeg_with_the_plugin(uid: str, plugin: None, shared_data: Path) -> None:
    data = _file(compress(pydicom.dcmread(shared_data / CHEST), uid, quality=85))
    ours = pixel_array(io.BytesIO(data), decoding_plugin=PLUGIN_LABEL)
    libjpeg = pixel_array(io.BytesIO(data), decoding_plugin="pylibjpeg")
    assert ours.shape == libjpeg.shape == (512, 512) and ours.dtype == libjpeg.dtype
    # two IDCTs (float here, integer in libjpeg): the same image within one stored unit
    assert np.abs(ours.astype(np.int32) - libjpeg).max() <= 1


@pytest.mark.realdata
def test_plugin_decodes_a_jpeg_extended_file_from_elsewhere(plugin: None, shared_data: Path) -> None:
    """A 12-bit JPEG Extended file written by another encoder (NEMA WG04 NM1, shared data)."""
    path = shared_data / "singles/nm_NM1_1024x256_12bit_jpeg_extended.dcm"
    ours = pixel_array(path, decoding_plugin=PLUGIN_LABEL)
    reference = pixel_array(path, decoding_plugin="pylibjpeg")
    assert np.abs(ours.astype(np.int32) - reference).max() <= 1


def test_plugin_refuses_colour() -> None:
    from medcodec.dicom import pydicom_plugin

    class Runner:
        samples_per_pixel = 3
        bits_allocated = 8

    with pytest.raises(UnsupportedFeatureError, match="grayscale"):
        pydicom_plugin._decode_frame(b"\xff\xd8", Runner())
    assert pydicom_plugin.is_available("1.2.840.10008.1.2.4.51") and not pydicom_plugin.is_available("1.2.840.10008.1.2.4.70")
