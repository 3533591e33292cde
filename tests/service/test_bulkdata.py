"""WADO-RS metadata carries every attribute, bulk data as ``BulkDataURI`` (PS3.18 §10.4.3.3.2),
and each URI answers its value (§10.4.1.1.5), through the running server and dicomweb-client.

Until 2026-12-01 the metadata left out every binary element over 768 bytes (an ECG's waveform, an
MR's overlay, a scanner's private blocks) and gave the ones inside sequences (an icon image) the
URI ``""``; there was no bulk data resource at all. Files: real ones from the shared data and
pydicom / pydicom-data (an ECG, an MR with overlays and an icon), a big-endian MR, an RLE
multi-frame MR, and one made here: an Encapsulated PDF whose length is odd (its value is padded).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import HEAD, start_server, stop_server

pytestmark = pytest.mark.realdata

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n" + b"x" * 2000 + b"!"


def _pdf(path: Path) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "BULK1", "Bulk^Pdf", "DOC"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = PDF + b"\0"  # padded to even length (PS3.5 §7.1.1)
    ds.EncapsulatedDocumentLength = len(PDF)
    ds.save_as(path, enforce_file_format=True)
    return path


def _no_pixels(source: Path, path: Path) -> Path:
    """An MR image whose pixel data is missing (a truncated export): its metadata must not name any."""
    ds = pydicom.dcmread(source)
    del ds.PixelData
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def bulk(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    from medcodec.delivery import open_store

    root = tmp_path_factory.mktemp("bulk")
    files = [
        Path(get_testdata_file("waveform_ecg.dcm")),
        Path(get_testdata_file("MR-SIEMENS-DICOM-WithOverlays.dcm")),
        sorted((shared_data / HEAD).glob("*.dcm"))[0],
        shared_data / "transfer_syntaxes_mr" / "mr_384x384_explicit_be.dcm",
        shared_data / "singles" / "mr_enhanced_multiframe_10f_64x64_rle.dcm",
        _no_pixels(shared_data / "singles" / "mr_384x384_12bit_unsigned.dcm", root / "nopixels.dcm"),
        _pdf(root / "report.dcm"),
    ]
    with open_store(root / "store") as store:
        report = store.ingest(files, precompress=False)
    assert all(o.record is not None for o in report.outcomes), report.summary()
    proc, url, _log = start_server(root / "store")
    try:
        yield url, files, root / "store"
    finally:
        stop_server(proc)


def _binary_elements(ds: Dataset, path: tuple[str, ...] = ()) -> dict[str, pydicom.DataElement]:
    """Every binary element over 768 bytes at any depth, by its bulk data path."""
    out = {}
    for element in ds:
        tag = f"{element.tag:08X}"
        if element.VR == "SQ":
            for i, item in enumerate(element.value, 1):
                out.update(_binary_elements(item, (*path, tag, str(i))))
        elif isinstance(element.value, bytes) and len(element.value) > 768 and element.tag.group != 0x0002:
            out["/".join((*path, tag))] = element
    return out


def _expected(ds: Dataset, path: str, element: pydicom.DataElement) -> bytes:
    if path == "7FE00010" and (ds.file_meta.TransferSyntaxUID.is_compressed or not ds.original_encoding[1]):
        arr = ds.pixel_array
        return arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    value = bytes(element.value)
    if element.VR == "OW" and not ds.original_encoding[1]:
        value = np.frombuffer(value, ">u2").astype("<u2").tobytes()
    if path == "00420011":
        value = value[: ds.EncapsulatedDocumentLength]
    return value


def test_metadata_names_every_bulk_element_and_each_uri_gives_its_value(bulk) -> None:
    url, files, _ = bulk
    client = DICOMwebClient(url + "/dicomweb")  # it sends Host without the port: the URIs must carry it
    seen = 0
    for path in files:
        ds = pydicom.dcmread(path)
        meta = client.retrieve_instance_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        uris = dict(
            (uri.split("/bulkdata/", 1)[1], uri) for uri in re.findall(r'"BulkDataURI": "([^"]+)"', json.dumps(meta))
        )
        expected = _binary_elements(ds)
        assert set(uris) == set(expected), f"{path.name}: metadata {sorted(uris)}, file {sorted(expected)}"
        assert '"BulkDataURI": ""' not in json.dumps(meta)
        for bulk_path, uri in uris.items():
            assert uri.startswith(url + "/dicomweb/studies/"), uri
            parts = client.retrieve_bulkdata(uri)
            assert len(parts) == 1 and parts[0] == _expected(ds, bulk_path, expected[bulk_path]), (path.name, bulk_path)
            seen += 1
    assert seen >= 10  # private blocks, overlay, icon, waveforms, pixel data (native, big endian, RLE), PDF


def test_bulk_data_single_part_pdf_and_errors(bulk) -> None:
    url, files, _ = bulk
    pdf = pydicom.dcmread(files[-1])
    inst = (f"{url}/dicomweb/studies/{pdf.StudyInstanceUID}/series/{pdf.SeriesInstanceUID}"
            f"/instances/{pdf.SOPInstanceUID}")  # fmt: skip
    meta = httpx.get(inst + "/metadata", timeout=30).json()[0]
    assert meta["00420011"] == {"vr": "OB", "BulkDataURI": inst + "/bulkdata/00420011"}
    assert "7FE00010" not in meta  # no pixel data, no pixel data URI
    r = httpx.get(inst + "/bulkdata/00420011", headers={"Accept": "application/pdf"}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf" and r.content == PDF
    r = httpx.get(inst + "/bulkdata/00420011", headers={"Accept": "application/octet-stream"}, timeout=30)
    assert r.status_code == 200 and r.content == PDF
    r = httpx.get(inst + "/bulkdata/00420011", headers={"Accept": "*/*"}, timeout=30)  # a single-part client
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf" and r.content == PDF
    r = httpx.get(inst + "/bulkdata/00420011", headers={"Accept": 'multipart/related; type="application/pdf"'},
                  timeout=30)  # fmt: skip
    assert r.headers["content-type"].startswith('multipart/related; type="application/pdf"') and PDF in r.content
    assert f"Content-Location: {inst}/bulkdata/00420011".encode() in r.content
    for path, accept, status in [
        ("00420011", "image/jpeg", 406),
        ("00420011", 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.4.50', 406),
        ("7FE00010", "application/octet-stream", 404),  # no pixel data
        ("00100010", "application/octet-stream", 404),  # not binary
        ("00420011/1/00100010", "application/octet-stream", 404),
        ("..%2F..%2Fcatalog.sqlite", "application/octet-stream", 400),
        ("0042001", "application/octet-stream", 400),
    ]:
        r = httpx.get(f"{inst}/bulkdata/{path}", headers={"Accept": accept}, timeout=30)
        assert r.status_code == status, (path, accept, r.status_code, r.text[:200])
        assert "detail" in r.json() and "Traceback" not in r.text
    r = httpx.get(f"{url}/dicomweb/studies/1.2.3/series/1.2.4/instances/1.2.5/bulkdata/00420011", timeout=30)
    assert r.status_code == 404


def test_bulk_uris_follow_the_public_url_and_proxies(bulk, tmp_path: Path) -> None:
    url, files, store = bulk
    ds = pydicom.dcmread(files[0])  # the ECG
    waveform = bytes(ds.WaveformSequence[0].WaveformData)
    path = f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    port = url.rsplit(":", 1)[1]
    meta = httpx.get(url + path + "/metadata", headers={"Host": "127.0.0.1"}, timeout=30).json()[0]
    assert meta["54000100"]["Value"][0]["54001010"]["BulkDataURI"].startswith(f"http://127.0.0.1:{port}/dicomweb/")
    # a Host that is not the server's: a server without a token answers for loopback names only
    # (DNS rebinding, service/security.py); behind a proxy the public URL names it
    r = httpx.get(url + path + "/metadata", headers={"Host": "pacs.example.org", "X-Forwarded-Proto": "http"}, timeout=30)
    assert r.status_code == 421
    proc, url2, _log = start_server(store, extra=["--public-url", "https://pacs.example.org/imaging/"])
    try:
        meta = httpx.get(url2 + path + "/metadata", timeout=30).json()[0]
        uri = meta["54000100"]["Value"][0]["54001010"]["BulkDataURI"]
        # the proxy may keep the public name as Host: allowed there
        assert httpx.get(url2 + path + "/metadata", headers={"Host": "pacs.example.org"}, timeout=30).status_code == 200
        assert uri == f"https://pacs.example.org/imaging{path}/bulkdata/54000100/1/54001010"
        r = httpx.get(url2 + uri.removeprefix("https://pacs.example.org/imaging"), timeout=30)
        assert r.status_code == 200 and r.content == waveform
    finally:
        stop_server(proc)


def test_headers_stored_before_bulk_uris_serve_none_that_point_nowhere() -> None:
    """A store made before 2026-12-01 has ``"BulkDataURI": ""`` inside sequences: left out."""
    from medcodec.delivery.header import absolute_bulk_uris, bulk_path, header_json

    old = '{"00880200":{"Value":[{"7FE00010":{"BulkDataURI":"","vr":"OW"},"00280010":{"Value":[64],"vr":"US"}}],"vr":"SQ"}}'
    got = json.loads(absolute_bulk_uris(old, "http://h:1/dicomweb/studies/1/series/2/instances/3"))
    assert got == {"00880200": {"vr": "SQ", "Value": [{"00280010": {"Value": [64], "vr": "US"}}]}}
    # a Host with a quote cannot break the JSON
    new = header_json(pydicom.dcmread(get_testdata_file("waveform_ecg.dcm"), stop_before_pixels=True))
    text = absolute_bulk_uris(json.dumps(new, separators=(",", ":")), 'http://a"b/x')
    assert json.loads(text)["54000100"]["Value"][0]["54001010"]["BulkDataURI"] == 'http://a"b/x/bulkdata/54000100/1/54001010'
    assert bulk_path("54000100/2/54001010") == [(0x54000100, 2), (0x54001010, 0)]
    for bad in ("", "5400010", "54000100/0/54001010", "54000100/1", "../x", "54000100//54001010", "54001010\n"):
        with pytest.raises(ValueError):
            bulk_path(bad)
