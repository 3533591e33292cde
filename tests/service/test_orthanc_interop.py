"""Orthanc (a real PACS, Debian ``orthanc`` + ``orthanc-dicomweb``) as a client of ``medcodec serve``.

The other service tests use Python clients (dicomweb-client, httpx, pynetdicom). Here an
independent C++ implementation talks to the server the way a site's PACS would:

* DICOMweb: Orthanc's DICOMweb client lists our studies (QIDO-RS) and pulls one (WADO-RS, its own
  multipart parser): as stored (the original bytes) and as JPEG 12-bit (.51, asked for in the
  Accept header), which Orthanc then decodes with its own decoder (DCMTK); and it pushes a study
  it holds (STOW-RS, its own multipart writer);
* DIMSE: Orthanc's C-ECHO, C-FIND and C-MOVE against our Query/Retrieve SCP (we send the instances
  to Orthanc's own Storage SCP) and C-STORE into ours, a conflicting instance refused with a
  C-STORE "Cannot understand" status (0xC111, with an Error Comment).

Orthanc runs on loopback with a temporary configuration and database; the tests need the Debian
packages, which ``make test`` installs like the other system tools.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_frames

from medcodec.codec import jpeg

pytestmark = pytest.mark.realdata

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
JPEG12 = "1.2.840.10008.1.2.4.51"


class Orthanc:
    """A private Orthanc on loopback: REST on ``url``, its Storage SCP as AE ``ORTHANC`` on ``dicom_port``."""

    def __init__(self, workdir: Path, medcodec_url: str, medcodec_dimse: int, http_port: int, dicom_port: int):
        self.http_port, self.dicom_port = http_port, dicom_port
        self.url = f"http://127.0.0.1:{self.http_port}"
        (workdir / "db").mkdir(parents=True)
        config = {
            "Name": "interop", "StorageDirectory": str(workdir / "db"), "IndexDirectory": str(workdir / "db"),
            "HttpPort": self.http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "DicomServerEnabled": True, "DicomAet": "ORTHANC", "DicomPort": dicom_port,
            "DicomModalities": {"medcodec": ["MEDCODEC", "127.0.0.1", medcodec_dimse]},
            "Plugins": [PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": {"medcodec": [medcodec_url + "/dicomweb/"]}},
        }  # fmt: skip
        (workdir / "orthanc.json").write_text(json.dumps(config))
        self.log = workdir / "orthanc.log"
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen([ORTHANC, str(workdir / "orthanc.json")], stdout=fh, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.url, timeout=120)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited:\n{self.log.read_text()[-2000:]}")
            try:
                if self.http.get("/system").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.close()
        raise RuntimeError(f"Orthanc did not start:\n{self.log.read_text()[-2000:]}")

    def post(self, path: str, body: object) -> httpx.Response:
        return self.http.post(path, content=json.dumps(body))

    def instance_ids(self) -> list[str]:
        return list(self.http.get("/instances").json())

    def instance(self, orthanc_id: str) -> tuple[bytes, pydicom.Dataset]:
        raw = self.http.get(f"/instances/{orthanc_id}/file").content
        return raw, pydicom.dcmread(io.BytesIO(raw))

    def clear(self) -> None:
        for study in self.http.get("/studies").json():
            self.http.delete(f"/studies/{study}")
        assert not self.instance_ids()

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def peers(shared_data, tmp_path, spawn_server):
    """(medcodec url, Orthanc, chest CT files): 6 chest CT slices ingested and pre-computed, our server
    with a DIMSE SCP that knows Orthanc as a C-MOVE destination, Orthanc that knows us both ways."""
    if not (Path(ORTHANC).exists() and Path(PLUGIN).exists()):
        pytest.fail("Orthanc and its DICOMweb plugin are not installed (make sysdeps: Debian orthanc, orthanc-dicomweb)")
    from medcodec.delivery import open_store

    files = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[:6]
    with open_store(tmp_path / "store") as store:
        assert store.ingest(files, precompress=True).ok
    dimse, orthanc_http, orthanc_dicom = (spawn_server.free_port() for _ in range(3))
    peer = f"ORTHANC=127.0.0.1:{orthanc_dicom}"
    _, url, _ = spawn_server(tmp_path / "store", extra=["--dimse-port", str(dimse), "--dimse-peer", peer])
    orthanc = Orthanc(tmp_path / "orthanc", url, dimse, orthanc_http, orthanc_dicom)
    try:
        yield url, orthanc, files
    finally:
        orthanc.close()


def _study_of(files: list[Path]) -> str:
    return str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


def test_orthanc_pulls_over_dicomweb_as_stored_and_as_jpeg(peers):
    _url, orthanc, files = peers
    study = _study_of(files)
    found = orthanc.post("/dicom-web/servers/medcodec/qido", {"Uri": "/studies"}).json()
    assert [s["0020000D"]["Value"] for s in found] == [study]  # Orthanc's own rendering of our DICOM JSON

    r = orthanc.post("/dicom-web/servers/medcodec/retrieve", {"Resources": [{"Study": study}], "Synchronous": True})
    assert r.status_code == 200, r.text
    originals = {p.read_bytes() for p in files}
    assert {orthanc.instance(i)[0] for i in orthanc.instance_ids()} == originals  # byte for byte

    orthanc.clear()
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={JPEG12}'
    r = orthanc.post("/dicom-web/servers/medcodec/retrieve",
                     {"Resources": [{"Study": study}], "Synchronous": True, "HttpHeaders": {"Accept": accept}})  # fmt: skip
    assert r.status_code == 200, r.text
    ids = orthanc.instance_ids()
    assert len(ids) == len(files)
    by_uid = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p) for p in files}
    for orthanc_id in ids:
        _raw, ds = orthanc.instance(orthanc_id)
        assert ds.file_meta.TransferSyntaxUID == JPEG12 and ds.LossyImageCompression == "01"
        source = by_uid[str(ds.SourceImageSequence[0].ReferencedSOPInstanceUID)]
        stream = next(generate_frames(ds.PixelData, number_of_frames=1))
        ours = jpeg.decode_jpeg(stream).astype(np.int64)
        png = orthanc.http.get(f"/instances/{orthanc_id}/frames/0/image-uint16")  # Orthanc's decoder (DCMTK)
        assert png.status_code == 200, png.text
        theirs = np.asarray(Image.open(io.BytesIO(png.content))).astype(np.int64)
        assert int(np.abs(theirs - ours).max()) <= 1
        err = int(np.abs(ours - source.pixel_array.astype(np.int64)).max())
        assert 0 < err < 400  # lossy, at the diagnostic point (not a blank or a wrong image)


def test_orthanc_stores_into_us_over_stow_rs(peers):
    """Orthanc's STOW-RS client (its own multipart writer) pushes a study it holds: ingested, found."""
    url, orthanc, _files = peers
    mr = pydicom.dcmread(pydicom.data.get_testdata_file("emri_small.dcm"))  # a 10-frame MR, another study
    buf = io.BytesIO()
    mr.save_as(buf, enforce_file_format=True)
    study_id = orthanc.http.post("/instances", content=buf.getvalue()).json()["ParentStudy"]
    r = orthanc.post("/dicom-web/servers/medcodec/stow", {"Resources": [study_id], "Synchronous": True})
    assert r.status_code == 200 and r.json()["InstancesCount"] == "1", r.text
    found = httpx.get(f"{url}/dicomweb/studies/{mr.StudyInstanceUID}/instances", timeout=30).json()
    assert [i["00080018"]["Value"][0] for i in found] == [str(mr.SOPInstanceUID)]
    back = httpx.get(f"{url}/dicomweb/studies/{mr.StudyInstanceUID}/series/{mr.SeriesInstanceUID}/instances/"
                     f"{mr.SOPInstanceUID}", headers={"Accept": 'multipart/related; type="application/dicom"; '
                                                       "transfer-syntax=*"}, timeout=30)  # fmt: skip
    assert back.status_code == 200
    assert mr.PixelData in back.content  # the pixels arrived as sent


def test_orthanc_queries_retrieves_and_stores_over_dimse(peers):
    url, orthanc, files = peers
    study = _study_of(files)
    assert orthanc.post("/modalities/medcodec/echo", {}).status_code == 200

    query = orthanc.post("/modalities/medcodec/query", {"Level": "Study", "Query": {"StudyInstanceUID": study}})
    assert query.status_code == 200, query.text
    qid = query.json()["ID"]
    answers = orthanc.http.get(f"/queries/{qid}/answers?expand").json()
    assert [a["0020,000d"]["Value"] for a in answers] == [study]

    r = orthanc.post(f"/queries/{qid}/retrieve", {"TargetAet": "ORTHANC", "Synchronous": True})  # C-MOVE to Orthanc
    assert r.status_code == 200, r.text
    # over DIMSE the dataset travels, not the file: Orthanc writes its own file meta; the pixels are the same
    received = {str(ds.SOPInstanceUID): ds.PixelData for ds in (orthanc.instance(i)[1] for i in orthanc.instance_ids())}
    assert received == {str(ds.SOPInstanceUID): ds.PixelData for ds in map(pydicom.dcmread, files)}

    # C-STORE from Orthanc: a new instance is ingested; the same UID with other content is refused
    new = pydicom.dcmread(files[0])
    new.SOPInstanceUID = new.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    buf = io.BytesIO()
    new.save_as(buf, enforce_file_format=True)
    oid = orthanc.http.post("/instances", content=buf.getvalue()).json()["ID"]
    r = orthanc.post("/modalities/medcodec/store", {"Resources": [oid], "Synchronous": True})
    assert r.status_code == 200, r.text
    got = httpx.get(f"{url}/dicomweb/studies/{study}/instances", timeout=30).json()
    assert str(new.SOPInstanceUID) in {i["00080018"]["Value"][0] for i in got}

    changed = pydicom.dcmread(files[1])
    changed.PatientName = "Not^The^Same"
    orthanc.clear()
    buf = io.BytesIO()
    changed.save_as(buf, enforce_file_format=True)
    oid = orthanc.http.post("/instances", content=buf.getvalue()).json()["ID"]
    r = orthanc.post("/modalities/medcodec/store", {"Resources": [oid], "Synchronous": True})
    assert r.status_code >= 400 and "0xc111" in r.text.lower(), r.text  # C-STORE "Cannot understand" (Cxxx)
    meta = httpx.get(f"{url}/dicomweb/studies/{study}/metadata", timeout=30).json()
    assert {m["00100010"]["Value"][0]["Alphabetic"] for m in meta} != {"Not^The^Same"}  # nothing overwritten
