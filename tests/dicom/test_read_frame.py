"""``read_frame``: one frame of a multi-frame image decoded alone, equal to ``read_image``'s, for the
viewer's frame API (it decoded every frame of an object for each frame it sent)."""

from __future__ import annotations

import io
import time

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGLSLossless

from medcodec.dicom import read_image
from medcodec.dicom.image import read_frame
from medcodec.errors import InvalidInputError

MULTI_FRAME = [
    "emri_small.dcm",  # native, 10 frames
    "emri_small_big_endian.dcm",
    "emri_small_RLE.dcm",
    "emri_small_jpeg_ls_lossless.dcm",
    "emri_small_jpeg_2k_lossless.dcm",
]


@pytest.mark.parametrize("name", MULTI_FRAME)
def test_each_frame_equals_read_image_s(name: str) -> None:
    path = get_testdata_file(name)
    whole = read_image(path).pixels
    for k in (0, len(whole) // 2, len(whole) - 1):
        frame = read_frame(path, k)
        assert frame.dtype == whole.dtype and np.array_equal(frame, whole[k]), (name, k)
    with pytest.raises(InvalidInputError, match="frame index 10 is not one"):
        read_frame(path, len(whole))


def test_a_frame_of_a_deflated_multi_frame_image() -> None:
    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert np.array_equal(read_frame(buf.getvalue(), 7), read_image(buf.getvalue()).pixels[7])


def test_one_frame_of_a_long_object_costs_one_frame() -> None:
    """240 frames of 256 x 256 in JPEG-LS (a long enhanced MR's size): one frame alone at least 10x
    faster than all of them."""
    import imagecodecs

    rng = np.random.default_rng(3)
    base = (np.arange(256)[None, :] * 8 + np.arange(256)[:, None] * 4).astype(np.uint16)
    frames = [imagecodecs.jpegls_encode(base + rng.integers(0, 30, base.shape).astype(np.uint16)) for _ in range(240)]
    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    ds.Rows = ds.Columns = 256
    ds.NumberOfFrames = 240
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    t0 = time.perf_counter()
    one = read_frame(data, 120)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    every = read_image(data).pixels
    t_all = time.perf_counter() - t0
    assert np.array_equal(one, every[120])
    assert t_one * 10 < t_all, (t_one, t_all)
