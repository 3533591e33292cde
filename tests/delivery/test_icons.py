"""An Icon Image Sequence whose pixel data are compressed like the image's, through delivery.

An icon's pixel data are encoded in the data set's transfer syntax. An outside audit (2026-12-02,
a nibabel test file stored as JPEG 2000 with a JPEG 2000 icon) found two paths that kept the
icon's JPEG 2000 fragments: the Explicit VR Little Endian answer of WADO-RS, WADO-URI and
C-GET / C-MOVE (a file DCMTK and dciodvfy refuse: undefined length in a native syntax), and the
bulk data of the icon's pixel data (encapsulated bytes sent as octet-stream). Real store, real
files, DCMTK as the independent reader.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from delivery_data import store  # noqa: F401 (fixture)

from medcodec.delivery.live import instance_bulk_data, instance_bytes
from medcodec.testing.tools import require_tool

pytestmark = pytest.mark.realdata

EXPLICIT = "1.2.840.10008.1.2.1"


def _stored(store, icon_mr, tmp_path: Path):
    data, thumb = icon_mr
    path = tmp_path / "icon.dcm"
    path.write_bytes(data)
    assert store.ingest([path], precompress=False).ok
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    (record,) = store.instances(str(ds.StudyInstanceUID))
    return record, thumb


@pytest.mark.parametrize(("ts", "tool"), [(EXPLICIT, "dcmconv"), ("1.2.840.10008.1.2.4.51", "dcmdjpeg"),
                                          ("1.2.840.10008.1.2.4.81", "dcmdjpls")])  # fmt: skip
def test_the_icon_is_native_in_every_syntax_delivered(store, icon_mr, tmp_path: Path, ts: str, tool: str) -> None:
    record, thumb = _stored(store, icon_mr, tmp_path)
    data, got = instance_bytes(store, record, ts)
    assert got == ts
    item = pydicom.dcmread(io.BytesIO(data)).IconImageSequence[0]
    assert not item["PixelData"].is_undefined_length
    assert np.array_equal(np.frombuffer(item.PixelData, np.uint8).reshape(thumb.shape), thumb)
    out = tmp_path / "out.dcm"
    out.write_bytes(data)
    args = [require_tool(tool), *(["+te"] if tool == "dcmconv" else []), str(out), str(tmp_path / "again.dcm")]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr


def test_the_icon_bulk_data_is_its_decoded_pixels(store, icon_mr, tmp_path: Path) -> None:
    record, thumb = _stored(store, icon_mr, tmp_path)
    value, media = instance_bulk_data(store, record, "00880200/1/7FE00010")
    assert media == "application/octet-stream"
    assert value == thumb.tobytes()  # 4096 native bytes, not the JPEG 2000 fragments
