"""8-bit images asked for as JPEG Extended ``.51`` (WADO-RS, C-GET / C-MOVE).

``.51`` covers JPEG processes 2 and 4: 8-bit and 12-bit samples. The lossy presets code 8-bit
images as baseline ``.50``, and until 2026-12-02 a client asking for ``.51`` (Orthanc answers it
for any image) got 406 for every 8-bit one: ultrasound, secondary captures, 8-bit MR. Now the
baseline frames are relabelled SOF1 (the same segment bytes; ``dcmcjpeg +ee`` writes 8-bit
``.51`` so), and DCMTK, GDCM and pydicom decode them to the pixels of the ``.50`` answer.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from delivery_data import ingested_record, store  # noqa: F401 (fixture)
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from medcodec.delivery.header import baseline_as_extended
from medcodec.dicom.codestream import jpeg_frame_marker_offset
from medcodec.errors import InvalidInputError
from medcodec.testing.tools import require_tool

pytestmark = pytest.mark.realdata

BASELINE = "1.2.840.10008.1.2.4.50"
EXTENDED = "1.2.840.10008.1.2.4.51"


def _sof_markers(data: bytes) -> list[int]:
    ds = pydicom.dcmread(io.BytesIO(data))
    frames = generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames") or 1))
    return [frame[jpeg_frame_marker_offset(frame) + 1] for frame in frames]


@pytest.mark.parametrize(
    "source",
    ["us_768x1024_8bit_jpeg_lossless.dcm", "us_US1_480x640_rgb_uncompressed.dcm", "SC_rgb_jpeg_dcmtk.dcm"],
)
def test_an_8bit_image_asked_as_51_is_its_baseline_frames_as_sof1(store, shared_data: Path, tmp_path: Path,
                                                                    source: str) -> None:  # fmt: skip
    from medcodec.delivery.live import instance_bytes

    path = Path(get_testdata_file(source)) if source.startswith("SC_") else shared_data / "singles" / source
    record = ingested_record(store, path)
    baseline, got = instance_bytes(store, record, BASELINE, "diagnostic")
    assert got == BASELINE and _sof_markers(baseline) == [0xC0]
    extended, got = instance_bytes(store, record, EXTENDED, "diagnostic")
    assert got == EXTENDED and _sof_markers(extended) == [0xC1]
    ds = pydicom.dcmread(io.BytesIO(extended))
    before = pydicom.dcmread(io.BytesIO(baseline))
    changed = np.frombuffer(ds.PixelData, np.uint8) != np.frombuffer(before.PixelData, np.uint8)
    assert changed.sum() == 1  # the SOF marker's second byte, nothing else
    del ds.PixelData, before.PixelData
    assert ds == before  # the data set otherwise as it was
    assert ds.file_meta.TransferSyntaxUID == EXTENDED and ds.LossyImageCompression == "01"
    ds = pydicom.dcmread(io.BytesIO(extended))
    expected = pydicom.dcmread(io.BytesIO(baseline)).pixel_array
    assert np.array_equal(ds.pixel_array, expected)
    for tool, args in (("dcmdjpeg", []), ("gdcmconv", ["--raw"])):  # each decoder as on the baseline frames
        decoded = []
        for name, data in (("baseline", baseline), ("extended", extended)):
            source, out = tmp_path / f"{name}.dcm", tmp_path / f"{name}-{tool}.dcm"
            source.write_bytes(data)
            run = subprocess.run([require_tool(tool), *args, str(source), str(out)], capture_output=True, text=True,
                                 timeout=60, check=False)  # fmt: skip
            assert run.returncode == 0, (tool, name, run.stderr)
            decoded.append(pydicom.dcmread(out).pixel_array)
        assert np.array_equal(*decoded), tool

def test_baseline_as_extended_refuses_what_is_not_jpeg(shared_data: Path) -> None:
    native = (shared_data / "singles" / "us_US1_480x640_rgb_uncompressed.dcm").read_bytes()
    with pytest.raises(InvalidInputError, match="no encapsulated pixel data"):
        baseline_as_extended(native)
    j2k = (shared_data / "singles" / "us_US1_480x640_ybr_rct_j2k_lossless.dcm").read_bytes()
    with pytest.raises(InvalidInputError, match="no JPEG frame"):
        baseline_as_extended(j2k)


def test_the_frame_marker_walk_skips_segments_holding_the_marker_bytes() -> None:
    # a DQT whose table holds FF C0 must not be taken for the frame header
    dqt = b"\xff\xdb\x00\x43\x00" + b"\xff\xc0" + bytes(62)
    sof = b"\xff\xc1\x00\x0b\x08\x00\x01\x00\x01\x01\x01\x11\x00"
    data = b"\xff\xd8" + dqt + sof + b"\xff\xda"
    assert jpeg_frame_marker_offset(data) == 2 + len(dqt)
    assert jpeg_frame_marker_offset(b"\xff\xd8\xff\xda\x00\x02") is None
    assert jpeg_frame_marker_offset(b"not a jpeg") is None


def test_a_stored_baseline_file_that_cannot_be_relabelled_is_406_or_goes_as_stored(store, tmp_path: Path) -> None:
    """A stored .50 whose frame does not start as a JPEG codestream: asked as .51, a 406 for the
    instance (was an InvalidInputError, a 400), as stored in a study retrieve."""
    from medcodec.delivery.live import instance_bytes
    from medcodec.errors import NotAcceptableError

    data = bytearray(Path(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")).read_bytes())
    at = data.find(b"\xff\xd8\xff")
    data[at : at + 2] = b"\x00\x00"  # the frame's SOI gone
    path = tmp_path / "broken.dcm"
    path.write_bytes(bytes(data))
    record = ingested_record(store, path)
    with pytest.raises(NotAcceptableError, match="cannot be sent as 1.2.840.10008.1.2.4.51"):
        instance_bytes(store, record, EXTENDED, None, True)
    assert instance_bytes(store, record, EXTENDED, None, False) == (bytes(data), BASELINE)


def test_compress_writes_8bit_extended_as_sof1_like_the_server(tmp_path: Path) -> None:
    """``compress(ds, .51)`` of 8-bit samples wrote baseline SOF0 frames under the extended syntax,
    while the server sent SOF1 for the same request: one rule now, SOF1, and DCMTK and GDCM decode
    it to the pixels of the ``.50`` file."""
    from medcodec.dicom.compress import compress

    def eight_bit() -> pydicom.Dataset:
        ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
        a = np.clip(ds.pixel_array, 0, None).astype(np.uint16) >> 4
        ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = a.tobytes(), 8, 7, 0
        return ds

    files = {}
    for ts in (BASELINE, EXTENDED):
        ds = compress(eight_bit(), ts, quality=90)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        files[ts] = buf.getvalue()
        (tmp_path / f"{ts}.dcm").write_bytes(files[ts])
    assert _sof_markers(files[BASELINE]) == [0xC0] and _sof_markers(files[EXTENDED]) == [0xC1]
    want = pydicom.dcmread(io.BytesIO(files[BASELINE])).pixel_array
    assert np.array_equal(pydicom.dcmread(io.BytesIO(files[EXTENDED])).pixel_array, want)
    for tool, args in (("dcmdjpeg", []), ("gdcmconv", ["--raw"])):
        out = tmp_path / f"{tool}.dcm"
        subprocess.run([require_tool(tool), *args, str(tmp_path / f"{EXTENDED}.dcm"), str(out)], check=True,
                       capture_output=True)  # fmt: skip
        assert np.abs(pydicom.dcmread(out).pixel_array.astype(int) - want).max() <= 1, tool
