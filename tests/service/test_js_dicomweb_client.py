"""The JavaScript DICOMweb client that OHIF and Slim use (npm ``dicomweb-client``) against ``medcodec serve``.

The Python ``dicomweb-client`` is a port of it; this one runs in node (its own multipart parser,
its own Accept headers) the way a web viewer would call the server: QIDO-RS, series metadata,
pixel data by its BulkDataURI (multipart and single part), frames as stored and as JPEG
12-bit, an instance, a rendered PNG, and STOW-RS. ``make test``
installs it (``npm install --prefix tests/js``, versions pinned in ``tests/js/package.json``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid

from medcodec.testing.tools import required

pytestmark = pytest.mark.realdata

JS = Path(__file__).resolve().parent.parent / "js"


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "dicomweb-client").is_dir():
        message = "node or tests/js/node_modules missing (make test runs npm install --prefix tests/js)"
        if required("CI") or required("MEDCODEC_REQUIRE_TOOLS") or required("MEDCODEC_REQUIRE_DATA"):
            pytest.fail(message)  # a tool, as require_tool's: the same variables make it fail
        pytest.skip(message)
    return node


def test_ohif_dicomweb_client_reads_and_stores(shared_data, tmp_path, spawn_server):
    node = _node()
    from medcodec.delivery import open_store

    files = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[:4]
    with open_store(tmp_path / "store") as store:
        assert store.ingest(files, precompress=True).ok
    _, url, _ = spawn_server(tmp_path / "store")
    first = pydicom.dcmread(files[0])
    new = pydicom.dcmread(files[0])  # another study, to store
    new.StudyInstanceUID, new.SeriesInstanceUID = generate_uid(), generate_uid()
    new.SOPInstanceUID = new.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    new.save_as(tmp_path / "new.dcm", enforce_file_format=True)

    run = subprocess.run([node, str(JS / "dicomweb_client.js"), f"{url}/dicomweb", str(first.StudyInstanceUID),
                          str(tmp_path / "new.dcm")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["studies"] == [str(first.StudyInstanceUID)]
    assert got["instancesLimited"] == 2 and got["metadata"] == len(files)
    assert (got["rows"], got["columns"]) == (first.Rows, first.Columns)
    assert got["rawFrameBytes"] == first.Rows * first.Columns * 2  # as stored: 16-bit samples
    assert got["bulkPixelBytes"] == got["singlePixelBytes"] == got["rawFrameBytes"]  # pixel data's BulkDataURI
    assert got["jpegFrameStart"] == "ffd8" and got["jpegFrameBytes"] < got["rawFrameBytes"] / 4
    assert got["instancePreamble"] == "DICM" and got["renderedStart"] == "PNG" and got["stored"]
    found = httpx.get(f"{url}/dicomweb/studies/{new.StudyInstanceUID}/instances", timeout=30).json()
    assert [i["00080018"]["Value"][0] for i in found] == [str(new.SOPInstanceUID)]
