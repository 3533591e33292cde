"""codestream_is_lossy on real files: pydicom's test set and ../shared/data (JPEG 2000, JPEG-LS),
against what their makers wrote, and the presets' use of it for a file whose header omits the flag."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from medcodec.delivery.presets import PRESETS
from medcodec.dicom.codestream import codestream_is_lossy


def _first_frame(ds: pydicom.Dataset) -> bytes:
    return next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))


PYDICOM_FILES = {  # name -> what its headers say (None: the 5-3 wavelet, exact unless layers were dropped)
    "JPEG2000.dcm": True,  # 9-7, flagged 01
    "MR_small_jp2klossless.dcm": None,
    "JPEGLSNearLossless_08.dcm": True,  # NEAR > 0, no flag in its header
    "JPEGLSNearLossless_16.dcm": True,
    "MR_small_jpeg_ls_lossless.dcm": False,
    "693_J2KI.dcm": None,  # lossy by its rate, 5-3 wavelet: the headers cannot tell
}


@pytest.mark.parametrize(("name", "expected"), sorted(PYDICOM_FILES.items()))
def test_pydicom_files(name: str, expected: bool | None) -> None:
    ds = pydicom.dcmread(get_testdata_file(name))
    assert codestream_is_lossy(str(ds.file_meta.TransferSyntaxUID), _first_frame(ds)) is expected


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ct_CT1_512x512_signed16_jpegls_near_lossless.dcm", True),
        ("cr_RG2_2140x1760_10bit_jpegls_lossless.dcm", False),
        ("mr_MR2_1024x1024_12bit_j2k_lossy.dcm", True),
        ("mr_MR2_1024x1024_12bit_j2k_lossless.dcm", None),
    ],
)
def test_shared_files(shared_data: Path, name: str, expected: bool | None) -> None:
    ds = pydicom.dcmread(shared_data / "singles" / name)
    assert codestream_is_lossy(str(ds.file_meta.TransferSyntaxUID), _first_frame(ds)) is expected


def test_other_syntaxes_and_damage_say_nothing() -> None:
    assert codestream_is_lossy("1.2.840.10008.1.2.4.50", b"\xff\xd8") is None
    for damaged in (b"", b"\xff\x4f\xff\x51\x00", b"\xff\x4f\xff\x51\x00\x29" + b"\x00" * 10):
        assert codestream_is_lossy("1.2.840.10008.1.2.4.91", damaged) is None
    for damaged in (b"", b"\xff\xd8\xff\xda", b"\xff\xd8\x00\x00"):
        assert codestream_is_lossy("1.2.840.10008.1.2.4.81", damaged) is None


def test_a_near_lossless_file_without_the_flag_is_treated_as_lossy() -> None:
    """pydicom's JPEG-LS near-lossless file has no (0028,2110): its NEAR says lossy, so the
    lossless preset passes it through labelled lossy instead of a 'lossless' copy of lossy pixels."""
    data = Path(get_testdata_file("JPEGLSNearLossless_16.dcm")).read_bytes()
    assert "LossyImageCompression" not in pydicom.dcmread(io.BytesIO(data))
    out = PRESETS["lossless"].encode_instance(data)
    assert out.entry.passthrough and out.entry.lossy and out.entry.reason.startswith("already lossy-compressed")
    assert out.data == data
