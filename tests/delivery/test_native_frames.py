"""Frames asked as ``application/octet-stream`` are the stored pixels, laid out as the metadata says.

WADO-RS metadata describes an instance as stored (Photometric Interpretation, Planar
Configuration). Until 2026-12-02 native frames went through pydicom's ``pixel_array``, which
converts YCbCr to RGB and interleaves colour planes: a viewer reading a YBR_FULL frame got RGB
values to convert as YCbCr, a YBR_FULL_422 frame was 1.5x the size its metadata gives, and a
frame stored by plane came interleaved. Real pixels (pydicom's YCbCr secondary captures, the
shared RGB ultrasound), a real store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from delivery_data import ingested_record, store  # noqa: F401 (fixture)
from pydicom.data import get_testdata_file

from medcodec.delivery.live import instance_bulk_data, instance_frames

pytestmark = pytest.mark.realdata

EXPLICIT = "1.2.840.10008.1.2.1"


@pytest.mark.parametrize("name", ["SC_ybr_full_uncompressed.dcm", "SC_ybr_full_422_uncompressed.dcm"])
def test_ycbcr_frames_are_the_stored_ycbcr_samples(store, name: str) -> None:
    path = Path(get_testdata_file(name))
    ds = pydicom.dcmread(path)
    record = ingested_record(store, path)
    (frame,), got = instance_frames(store, record, [1], EXPLICIT)
    assert got == EXPLICIT
    per_pixel = 2 if ds.PhotometricInterpretation == "YBR_FULL_422" else 3
    assert len(frame) == ds.Rows * ds.Columns * per_pixel
    assert frame == ds.PixelData[: len(frame)]  # not pydicom's RGB
    value, media = instance_bulk_data(store, record, "7FE00010")
    assert media == "application/octet-stream" and value.startswith(frame)


def test_a_frame_stored_by_plane_stays_by_plane(store, shared_data: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(shared_data / "singles" / "us_US1_480x640_rgb_uncompressed.dcm")
    rgb = ds.pixel_array
    ds.PlanarConfiguration = 1
    ds.PixelData = np.ascontiguousarray(rgb.transpose(2, 0, 1)).tobytes()
    path = tmp_path / "planar.dcm"
    ds.save_as(path, enforce_file_format=True)
    record = ingested_record(store, path)
    (frame,), _ = instance_frames(store, record, [1], EXPLICIT)
    assert frame == ds.PixelData
    assert np.array_equal(np.frombuffer(frame, np.uint8).reshape(3, 480, 640).transpose(1, 2, 0), rgb)


def test_big_endian_frames_are_little_endian_in_the_stored_colour_space(store) -> None:
    path = Path(get_testdata_file("SC_rgb_expb_16bit_2frame.dcm"))
    ds = pydicom.dcmread(path)
    record = ingested_record(store, path)
    frames, _ = instance_frames(store, record, [1, 2], EXPLICIT)
    for frame, expected in zip(frames, ds.pixel_array, strict=True):
        assert frame == expected.astype("<u2").tobytes()


def test_rle_colour_by_plane_comes_by_plane_as_its_metadata_says(store, shared_data: Path, tmp_path: Path) -> None:
    """GDCM's RLE encoder writes colour with Planar Configuration 1; the metadata keeps it, so the
    decoded frames come by plane (DCMTK's ``dcmdrle`` keeps them so too). They came interleaved
    until 2026-12-06 (an outside audit): a viewer building the frame from the metadata scrambled
    the colours."""
    from pydicom.uid import RLELossless

    ds = pydicom.dcmread(shared_data / "singles" / "us_US1_480x640_rgb_uncompressed.dcm")
    rgb = ds.pixel_array
    ds.compress(RLELossless)  # pydicom's RLE: colour segments are planes whatever the header says
    ds.PlanarConfiguration = 1  # as GDCM labels it
    path = tmp_path / "rle_planar.dcm"
    ds.save_as(path, enforce_file_format=True)
    record = ingested_record(store, path)
    (frame,), _ = instance_frames(store, record, [1], EXPLICIT)
    assert np.array_equal(np.frombuffer(frame, np.uint8).reshape(3, 480, 640).transpose(1, 2, 0), rgb)
