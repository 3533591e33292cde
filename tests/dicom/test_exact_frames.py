"""Lossless JPEG and JPEG-LS pixel data decoded by the registry's frame decoders (libjpeg-turbo,
CharLS) instead of pydicom's plugins: the same values, faster; anything odd falls back to pydicom.

Files from pydicom's test set (real encoders' output: signed 16-bit, 8-bit, multi-frame,
near-lossless) and, with DCMTK, a CT slice of the shared data re-encoded as .70 and .57.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import pixel_array

from medcodec.dicom import dataset_frames, read_image
from medcodec.errors import DicomError
from medcodec.registry import TRANSFER_SYNTAXES
from medcodec.testing.tools import require_tool

image_module = sys.modules["medcodec.dicom.image"]

FILES = [
    "JPEG-LL.dcm",  # .70, signed 16-bit
    "JPGLosslessP14SV1_1s_1f_8b.dcm",  # .70, 8-bit
    "emri_small_jpeg_ls_lossless.dcm",  # .80, 10 frames
    "MR_small_jpeg_ls_lossless.dcm",  # .80, signed
    "JPEGLSNearLossless_16.dcm",  # .81
]


def _reference(path: str | Path) -> np.ndarray:
    """pydicom's own decode, masked and sign-extended as medcodec reads stored values."""
    ds = pydicom.dcmread(path)
    arr = np.asarray(pixel_array(ds)).astype(np.int64)
    if arr.ndim == 2:
        arr = arr[None]
    bits = int(ds.BitsStored)
    arr &= (1 << bits) - 1
    if int(ds.PixelRepresentation):
        arr = (arr ^ (1 << (bits - 1))) - (1 << (bits - 1))
    return arr


@pytest.mark.parametrize("name", FILES)
def test_frame_decoder_gives_pydicoms_values(name: str) -> None:
    path = get_testdata_file(name)
    ds = pydicom.dcmread(path)
    uid = str(ds.file_meta.TransferSyntaxUID)
    assert TRANSFER_SYNTAXES[uid].frame_decoder is not None
    frames = int(ds.get("NumberOfFrames") or 1)
    fast = image_module.exact_frames(ds.PixelData, uid, (frames, int(ds.Rows), int(ds.Columns)))
    assert fast is not None  # the frame decoder did the work (not the fallback)
    expected = _reference(path)
    assert np.array_equal(dataset_frames(ds), expected)
    assert np.array_equal(read_image(path).pixels, expected)


def test_lossy_jpeg_stays_with_pydicom() -> None:
    # IDCTs of conforming decoders may differ by 1: the values medcodec measures against come from
    # one decoder, pydicom's, whatever libraries are installed
    for uid in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.91"):
        assert TRANSFER_SYNTAXES[uid].frame_decoder is None
        assert image_module.exact_frames(b"", uid, (1, 8, 8)) is None


def test_what_the_frame_decoder_cannot_read_goes_to_pydicom_and_its_error() -> None:
    ds = pydicom.dcmread(get_testdata_file("JPEG-LL.dcm"))
    uid = str(ds.file_meta.TransferSyntaxUID)
    rows, cols = int(ds.Rows), int(ds.Columns)
    # a frame of another size than the header's: not used, pydicom decides (and complains)
    assert image_module.exact_frames(ds.PixelData, uid, (1, rows // 2, cols)) is None
    # fragments that are not JPEG at all: None here, pydicom's error reported by dataset_frames
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate([b"not a JPEG stream, just bytes" * 20])
    assert image_module.exact_frames(ds.PixelData, uid, (1, rows, cols)) is None
    with pytest.raises(DicomError, match="cannot decode"):
        dataset_frames(ds)


@pytest.mark.realdata
@pytest.mark.parametrize("option", ["+e1", "+el"])  # .70 (selection value 1) and .57 (DCMTK's default 6)
def test_shared_ct_slice_as_lossless_jpeg(shared_data: Path, tmp_path: Path, option: str) -> None:
    dcmcjpeg = require_tool("dcmcjpeg")
    source = sorted((shared_data / "ct_head_phantom_philips_ingenuity").glob("*.dcm"))[70]
    out = tmp_path / "ct.dcm"
    subprocess.run([dcmcjpeg, option, str(source), str(out)], check=True, capture_output=True)
    uid = str(pydicom.dcmread(out).file_meta.TransferSyntaxUID)
    assert TRANSFER_SYNTAXES[uid].frame_decoder == "libjpeg-turbo"
    shape = (1, int(pydicom.dcmread(out).Rows), int(pydicom.dcmread(out).Columns))
    assert image_module.exact_frames(pydicom.dcmread(out).PixelData, uid, shape) is not None
    decoded = read_image(out).pixels
    assert np.array_equal(decoded, read_image(source).pixels)  # lossless: the original values, bit for bit
    assert np.array_equal(decoded, _reference(out))
