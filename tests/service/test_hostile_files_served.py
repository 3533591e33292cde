"""A stored object whose header declares gigabytes of pixels (an outside audit, 2026-12-03: a
190 kB JPEG-LS file of 500 frames of 2048 x 2048 took the server past 4 GB): served as stored,
passed through by the presets, and every answer that would decode it whole is a 406, never a
decode, so the server's memory stays where it was."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGLSLossless, generate_uid

from medcodec.delivery import open_store
from medcodec.testing.server import start_server, stop_server


def _bomb() -> bytes:
    import imagecodecs

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Rows = ds.Columns = 2048
    ds.NumberOfFrames = 300
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = encapsulate([imagecodecs.jpegls_encode(np.zeros((2048, 2048), np.uint16))] * 300)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.realdata
def test_a_pixel_bomb_is_served_as_stored_and_never_decoded(tmp_path: Path) -> None:
    data = _bomb()
    path = tmp_path / "store"
    with open_store(path, create=True) as store:
        outcome = store.ingest_bytes(data, source="bomb")
    proc, url, _ = start_server(path)
    try:
        inst = f"{url}/dicomweb/studies/{outcome.study_uid}/series/{outcome.series_uid}/instances/{outcome.sop_uid}"
        r = httpx.get(inst, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
                      timeout=60)  # fmt: skip
        assert r.status_code == 200 and data in r.content  # as stored, byte for byte
        r = httpx.get(inst, headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=60)
        assert r.status_code == 406 and "MEDCODEC_MAX_DECODED_MB" in r.json()["detail"]
        r = httpx.get(inst + "/frames/1", headers={"Accept": "multipart/related; type=application/octet-stream"},
                      timeout=60)  # fmt: skip
        assert r.status_code == 406
        r = httpx.get(inst + "/rendered", headers={"Accept": "image/png"}, timeout=60)
        assert r.status_code == 406 and "transfer-syntax=*" in r.json()["detail"]
        for live in ("", "&live=1"):
            r = httpx.get(f"{url}/studies/{outcome.study_uid}/archive.zip?preset=diagnostic{live}", timeout=120)
            assert r.status_code == 200
            with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
                names = [n for n in zf.namelist() if n != "manifest.json"]
                assert len(names) == 1 and zf.read(names[0]) == data  # passed through unchanged
        assert _peak_rss_mb(proc.pid) < 1024  # 300 frames of 2048 x 2048 would be 2.4 GB decoded
    finally:
        stop_server(proc)
