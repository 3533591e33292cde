"""DICOMweb with a real client (dicomweb-client) against ``medcodec serve`` in a subprocess."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from medcodec.testing.server import stow_body

pytestmark = pytest.mark.realdata

JPEG_12 = "1.2.840.10008.1.2.4.51"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
EXPLICIT = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def client(server):
    return DICOMwebClient(url=server.url + "/dicomweb")


def _uid(item: dict, tag: str) -> str:
    return item[tag]["Value"][0]


def test_qido_lists_studies_series_instances(client, server):
    studies = client.search_for_studies()
    uids = {_uid(s, "0020000D") for s in studies}
    assert {server.chest_study, server.head_study} <= uids
    series = client.search_for_series(server.head_study)
    assert [_uid(s, "0020000E") for s in series] == [server.head_series]
    instances = client.search_for_instances(server.head_study, server.head_series)
    assert len(instances) == len(server.head_files)
    page = client.search_for_instances(server.head_study, server.head_series, limit=5, offset=5)
    assert len(page) == 5 and {_uid(i, "00080018") for i in page} <= {_uid(i, "00080018") for i in instances}
    found = client.search_for_studies(search_filters={"PatientID": "PLASTIC"})
    assert {_uid(s, "0020000D") for s in found} == {server.head_study}
    assert client.search_for_studies(search_filters={"PatientID": "NOBODY-XYZ"}) == []


def test_qido_includefield_adds_attributes_from_the_headers(client, server):
    """includefield was ignored until 2026-12-01: a viewer asking for Slice Thickness or Body Part
    got the level's fixed set only."""
    first = pydicom.dcmread(server.head_files[0], stop_before_pixels=True)
    got = client.search_for_instances(server.head_study, server.head_series, limit=3,
                                      fields=["SliceThickness", "00185100"])  # fmt: skip
    assert len(got) == 3 and all("00180050" in i and "00185100" in i for i in got)
    assert got[0]["00180050"]["Value"] == [float(first.SliceThickness)]
    everything = client.search_for_instances(server.head_study, server.head_series, limit=1, fields=["all"])[0]
    assert "00181030" in everything and len(everything) > 2 * len(got[0]) and "7FE00010" not in everything
    assert all("BulkDataURI" not in v for v in everything.values())
    series = client.search_for_series(server.head_study, fields=["ProtocolName"])
    assert series[0]["00181030"]["Value"] == [first.ProtocolName]
    assert "00181030" not in client.search_for_series(server.head_study)[0]  # not asked: the default set
    r = server.get(f"/dicomweb/studies/{server.head_study}/instances?includefield=NoSuchKeyword&limit=2")
    assert r.status_code == 200 and len(r.json()) == 2  # ignored, said (PS3.18 §8.3.4.1)
    assert r.headers["warning"].startswith('299 medcodec "') and "NoSuchKeyword" in r.headers["warning"]


def test_qido_as_clients_send_it(client, server):
    """An audit against PS3.18 and Orthanc (2026-12-01): repeated keys (dicomweb-client's lists)
    were 400, unsupported keys 400 instead of ignored, names matched case-sensitively, XML asked
    for got JSON, a limit past 10,000 was 400."""
    both = {server.chest_study, server.head_study}
    r = server.get(f"/dicomweb/studies?StudyInstanceUID={server.chest_study}&StudyInstanceUID={server.head_study}")
    assert r.status_code == 200 and {_uid(s, "0020000D") for s in r.json()} == both
    found = client.search_for_studies(search_filters={"StudyInstanceUID": sorted(both)})
    assert {_uid(s, "0020000D") for s in found} == both
    r = server.get(f"/dicomweb/studies?StudyInstanceUID={server.chest_study}&0020000D={server.head_study}")
    assert {_uid(s, "0020000D") for s in r.json()} == both  # keyword and tag: one key, either value
    mods = server.get("/dicomweb/studies?ModalitiesInStudy=CT&ModalitiesInStudy=MR").json()
    assert {m for s in mods for m in s["00080061"]["Value"]} >= {"CT", "MR"}
    every = server.get("/dicomweb/studies").json()
    r = server.get("/dicomweb/studies?PatientComments=x&00191010=y")
    assert r.status_code == 200 and r.json() == every
    assert "PatientComments" in r.headers["warning"] and "00191010" in r.headers["warning"]
    assert "warning" not in server.get("/dicomweb/studies").headers
    r = server.get("/dicomweb/studies?a%0D%0AX-Injected:%201=2&%E2%80%AEkey%22=3")  # CR LF, RTL override, quote
    assert r.status_code == 200 and "x-injected" not in r.headers and "\r" not in r.headers["warning"]
    assert r.headers["warning"].count('"') == 2
    many = "&".join(f"StudyInstanceUID=1.2.{i}" for i in range(1500))  # a 500 (SQLite's expression depth)
    r = server.get(f"/dicomweb/studies?{many}&StudyInstanceUID={server.head_study}")
    assert r.status_code == 200 and [_uid(s, "0020000D") for s in r.json()] == [server.head_study]
    many = "&".join(f"PatientName=a{i}*" for i in range(150))
    r = server.get(f"/dicomweb/studies?{many}")
    assert r.status_code == 400 and "at most 100 values" in r.json()["detail"]
    head = pydicom.dcmread(server.head_files[0], stop_before_pixels=True)
    name = str(head.PatientName)
    for asked in (name.lower(), name.upper(), name.lower()[:2] + "*"):
        got = server.get(f"/dicomweb/studies?PatientName={asked}").json()
        assert server.head_study in {_uid(s, "0020000D") for s in got}, asked
    assert server.get("/dicomweb/studies", headers={"Accept": "application/dicom+xml"}).status_code == 406
    assert server.get("/dicomweb/studies", headers={"Accept": "application/json"}).status_code == 200
    assert server.get("/dicomweb/studies?limit=50000").status_code == 200

    # a Code String list is "any of", written with "," or "\\" as with the repeated key (until
    # 2026-12-05 matched literally: an empty answer, an outside audit)
    def studies(query: str) -> set[str]:
        return {_uid(s, "0020000D") for s in server.get(f"/dicomweb/studies?{query}").json()}

    ct, mr = studies("ModalitiesInStudy=CT"), studies("ModalitiesInStudy=MR")
    assert ct and mr and server.head_study in ct
    for query in ("ModalitiesInStudy=CT,MR", "ModalitiesInStudy=CT%5CMR", "ModalitiesInStudy=MR,%20CT",
                  "ModalitiesInStudy=CT&ModalitiesInStudy=MR", "Modality=CT,MR"):  # fmt: skip
        assert studies(query) == ct | mr, query
    assert studies("ModalitiesInStudy=CT,XX") == ct and studies("ModalitiesInStudy=CT,") == ct  # (was literal)


def test_studies_without_a_patient_id_are_patients_of_their_own(client, server):
    """Every study without a PatientID shared one patient row, so PatientName matched the first
    such study's name for all of them, and missed their own (QIDO audit, 2026-12-01)."""
    src = pydicom.dcmread(server.singles["ct_CT1_small_128x128_signed16.dcm"])
    studies = []
    for name in ("Nobody^First", "Citizen^Jan"):
        ds = pydicom.dcmread(server.singles["ct_CT1_small_128x128_signed16.dcm"])
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID, ds.PatientName = "", name
        assert "FailedSOPSequence" not in client.store_instances([ds])
        studies.append(ds.StudyInstanceUID)
    assert src.PatientID  # the file had one: these two are the edited copies
    for name, study in zip(("Nobody^First", "Citizen^Jan"), studies):
        got = {_uid(s, "0020000D") for s in server.get(f"/dicomweb/studies?PatientName={name}").json()}
        assert got == {study}, (name, got)
    got = {_uid(s, "0020000D") for s in server.get("/dicomweb/studies?PatientName=Citizen*").json()}
    assert got == {studies[1]}


def test_a_patient_s_second_name_is_answered_as_it_is_matched(client, server):
    """Two studies of one PatientID under two names (a name corrected later): the patient entity keeps
    the first, and QIDO-RS matched the keys on it but answered each study's own name, so a study came
    back whose name did not match the query (an outside audit, 2026-12-05). Now the answer shows
    what was matched; the second study's own header is unchanged in /metadata."""
    studies = []
    for name in ("Firstname^Ann^^", "Othername^Ann"):
        ds = pydicom.dcmread(server.singles["ct_CT1_small_128x128_signed16.dcm"])
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID, ds.PatientName, ds.PatientSex = "RENAMED-7", name, "F" if name.startswith("F") else "O"
        assert "FailedSOPSequence" not in client.store_instances([ds])
        studies.append(ds.StudyInstanceUID)
    found = server.get("/dicomweb/studies?PatientName=Firstname^Ann").json()
    assert {_uid(s, "0020000D") for s in found} == set(studies)
    for level in (found, server.get(f"/dicomweb/studies/{studies[1]}/series").json(),
                  server.get(f"/dicomweb/studies/{studies[1]}/instances").json()):  # fmt: skip
        for item in level:
            assert item["00100010"]["Value"] == [{"Alphabetic": "Firstname^Ann^^"}], item["00100010"]
            assert item["00100040"]["Value"] == ["F"]
    assert server.get("/dicomweb/studies?PatientName=Othername^Ann").json() == []
    assert server.get("/dicomweb/studies?PatientID=RENAMED-7&PatientSex=F").json() != []
    meta = server.get(f"/dicomweb/studies/{studies[1]}/metadata").json()
    assert meta[0]["00100010"]["Value"] == [{"Alphabetic": "Othername^Ann"}]


def test_qido_results_carry_a_retrieve_url_that_works(client, server):
    """Retrieve URL (0008,1190) at every level (PS3.18 Tables 10.6.3-3 to -5), under the port the
    client connected to (dicomweb-client sends Host without it)."""
    study = next(s for s in client.search_for_studies() if _uid(s, "0020000D") == server.chest_study)
    series = client.search_for_series(server.chest_study)[0]
    instance = client.search_for_instances(server.chest_study, server.chest_series, limit=1)[0]
    urls = [x["00081190"]["Value"][0] for x in (study, series, instance)]
    assert urls[0] == f"{server.url}/dicomweb/studies/{server.chest_study}"
    assert urls[1] == f"{urls[0]}/series/{server.chest_series}"
    assert urls[2] == f"{urls[1]}/instances/{_uid(instance, '00080018')}"
    assert all(x["00080056"]["Value"] == ["ONLINE"] for x in (study, series, instance))
    r = httpx.get(urls[2], headers={"Accept": "application/dicom; transfer-syntax=*"}, timeout=60)
    assert r.status_code == 200 and pydicom.dcmread(io.BytesIO(r.content)).SOPInstanceUID == _uid(instance, "00080018")
    r = httpx.get(urls[1] + "/metadata", timeout=60)
    assert r.status_code == 200 and len(r.json()) == len(server.chest_files)


def test_wado_instance_as_stored_and_as_jpeg12(client, server):
    path = server.chest_files[0]
    src = pydicom.dcmread(path)
    ds = client.retrieve_instance(server.chest_study, server.chest_series, src.SOPInstanceUID,
                                  media_types=(("application/dicom", "*"),))  # fmt: skip
    assert ds.SOPInstanceUID == src.SOPInstanceUID
    assert np.array_equal(ds.pixel_array, src.pixel_array)
    lossy = client.retrieve_instance(server.chest_study, server.chest_series, src.SOPInstanceUID,
                                     media_types=(("application/dicom", JPEG_12),))  # fmt: skip
    assert lossy.file_meta.TransferSyntaxUID == JPEG_12
    assert lossy.LossyImageCompression == "01"
    hu = lossy.pixel_array * float(lossy.RescaleSlope) + float(lossy.RescaleIntercept)
    ref = src.pixel_array * float(src.RescaleSlope) + float(src.RescaleIntercept)
    assert np.abs(hu - ref).mean() < 20


def test_wado_instance_single_part_when_asked(server):
    """``Accept: application/dicom`` (no multipart) gets the file itself for an instance (PS3.18
    §10.4.4); until 2026-12-01 it came wrapped in multipart/related whatever was asked."""
    src = pydicom.dcmread(server.chest_files[0], stop_before_pixels=True)
    inst = f"/dicomweb/studies/{server.chest_study}/series/{server.chest_series}/instances/{src.SOPInstanceUID}"
    r = server.get(inst, headers={"Accept": "application/dicom; transfer-syntax=*"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/dicom")
    assert r.content == server.chest_files[0].read_bytes()  # as stored, byte for byte
    r = server.get(inst, headers={"Accept": f"application/dicom; transfer-syntax={JPEG_12}"})
    assert r.headers["content-type"] == f"application/dicom; transfer-syntax={JPEG_12}"
    assert pydicom.dcmread(io.BytesIO(r.content)).file_meta.TransferSyntaxUID == JPEG_12
    # preference order: a multipart range first gets multipart
    r = server.get(inst, headers={"Accept": 'multipart/related; type="application/dicom", application/dicom;q=0.5'})
    assert r.headers["content-type"].startswith("multipart/related")
    # a series is never one part: multipart whatever the range says
    r = server.get(f"/dicomweb/studies/{server.chest_study}/series/{server.chest_series}",
                   headers={"Accept": "application/dicom; transfer-syntax=*"})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/related")


def test_wado_default_is_explicit_vr_little_endian(server):
    # PS3.18: application/dicom without a transfer-syntax parameter means Explicit VR LE; the
    # JPEG-lossless CT is decompressed for it
    import dicomweb_client  # noqa: F401  (same parsing as the client: pydicom)

    ct = pydicom.dcmread(server.singles["ct_CT1_small_128x128_signed16.dcm"])
    r = server.get(f"/dicomweb/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/instances/{ct.SOPInstanceUID}",
                   headers={"Accept": 'multipart/related; type="application/dicom"'})  # fmt: skip
    assert r.status_code == 200
    boundary = r.headers["content-type"].split("boundary=")[1]
    part = r.content.split(b"--" + boundary.encode())[1]
    head, _, body = part.partition(b"\r\n\r\n")
    assert b"transfer-syntax=" + EXPLICIT.encode() in head
    ds = pydicom.dcmread(io.BytesIO(body[:-2]))
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT and np.array_equal(ds.pixel_array, ct.pixel_array)


def test_wado_series_retrieve_and_metadata(client, server):
    datasets = client.retrieve_series(server.head_study, server.head_series,
                                      media_types=(("application/dicom", JPEG_12),))  # fmt: skip
    assert len(datasets) == len(server.head_files)
    assert all(d.file_meta.TransferSyntaxUID == JPEG_12 and d.LossyImageCompression == "01" for d in datasets)
    meta = client.retrieve_series_metadata(server.head_study, server.head_series)
    assert len(meta) == len(server.head_files)
    assert all(m["0020000E"]["Value"][0] == server.head_series for m in meta)
    # pixel data by URI, never inline (PS3.18 §10.4.3.3.2), under the port the client connected to
    assert all(set(m["7FE00010"]) == {"vr", "BulkDataURI"} for m in meta)
    assert all(m["7FE00010"]["BulkDataURI"].startswith(server.url + "/dicomweb/studies/") for m in meta)


def test_unknown_transfer_syntax_gives_406(server):
    src = pydicom.dcmread(server.chest_files[0], stop_before_pixels=True)
    url = f"/dicomweb/studies/{server.chest_study}/series/{server.chest_series}/instances/{src.SOPInstanceUID}"
    for ts in ("1.2.840.10008.1.2.4.100", "1.2.3.4.5"):  # MPEG2, nonsense
        r = server.get(url, headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={ts}'})
        assert r.status_code == 406, r.text
        assert r.json()["status"] == 406
    r = server.get(url, headers={"Accept": "text/html"})
    assert r.status_code == 406
    # a colour ultrasound asked as .51 (JPEG processes 2 and 4) gets 8-bit extended JPEG, was 406
    us = pydicom.dcmread(server.singles["us_US1_480x640_rgb_uncompressed.dcm"], stop_before_pixels=True)
    r = server.get(f"/dicomweb/studies/{us.StudyInstanceUID}/series/{us.SeriesInstanceUID}/instances/{us.SOPInstanceUID}",
                   headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_12}'})  # fmt: skip
    assert r.status_code == 200, r.text
    ds = pydicom.dcmread(io.BytesIO(_frame_part(r.content)[1]))
    assert ds.file_meta.TransferSyntaxUID == JPEG_12 and ds.BitsStored == 8 and ds.LossyImageCompression == "01"
    assert ds.pixel_array.shape == (480, 640, 3)
    # RLE is not among the syntaxes the diagnostic preset codes: 406 for that instance
    r = server.get(f"/dicomweb/studies/{us.StudyInstanceUID}/series/{us.SeriesInstanceUID}/instances/{us.SOPInstanceUID}"
                   "?preset=diagnostic",
                   headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.5'})  # fmt: skip
    assert r.status_code == 406


def test_wado_rs_preset_without_a_syntax_gives_that_presets_rendition(client, server):
    """``?preset=NAME`` with an Accept that names no transfer syntax (dicomweb-client's default,
    ``Accept: application/dicom``, none at all): each instance as that preset codes it, the part's
    ``transfer-syntax`` saying which (an outside audit, 2026-12-04: the original came back
    decompressed, the preset ignored). A series retrieve too; an explicit syntax still wins."""
    head = pydicom.dcmread(server.head_files[2])
    inst = f"/dicomweb/studies/{head.StudyInstanceUID}/series/{head.SeriesInstanceUID}/instances/{head.SOPInstanceUID}"
    original = server.get(inst, headers={"Accept": "application/dicom"})
    assert original.headers["content-type"] == f"application/dicom; transfer-syntax={EXPLICIT}"
    for accept in ("application/dicom", None, 'multipart/related; type="application/dicom"'):
        r = server.get(inst + "?preset=preview", headers={"Accept": accept} if accept else {})
        assert r.status_code == 200, r.text
        data = r.content if accept == "application/dicom" else _frame_part(r.content)[1]
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.file_meta.TransferSyntaxUID == JPEG_12 and ds.LossyImageCompression == "01"
        assert len(data) < len(original.content) / 3
    explicit = server.get(
        inst + "?preset=preview", headers={"Accept": f"application/dicom; transfer-syntax={EXPLICIT}"}
    )
    assert explicit.headers["content-type"] == f"application/dicom; transfer-syntax={EXPLICIT}"
    from medcodec.delivery.live import AS_PRESET  # the placeholder is no syntax a client can name

    assert (
        server.get(
            inst + "?preset=preview", headers={"Accept": f"application/dicom; transfer-syntax={AS_PRESET}"}
        ).status_code
        == 406
    )
    r = server.get(f"/dicomweb/studies/{head.StudyInstanceUID}/series/{head.SeriesInstanceUID}?preset=diagnostic",
                   headers={"Accept": 'multipart/related; type="application/dicom"'})  # fmt: skip
    assert r.status_code == 200
    parts = re.findall(rb"[Cc]ontent-[Tt]ype: application/dicom; transfer-syntax=([0-9.]+)", r.content)
    assert len(parts) == len(server.head_files) and set(parts) == {JPEG_12.encode()}


def _three_kinds(server) -> tuple[pydicom.Dataset, pydicom.Dataset, pydicom.Dataset]:
    """The signed 12-bit head CT, a signed 16-bit CT and a 10-frame enhanced MR stored as RLE."""
    return (pydicom.dcmread(server.head_files[3]), pydicom.dcmread(server.singles["ct_CT1_small_128x128_signed16.dcm"]),
            pydicom.dcmread(server.singles["mr_enhanced_multiframe_10f_64x64_rle.dcm"]))  # fmt: skip


@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5",
                                "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.4.70",
                                "1.2.840.10008.1.2.4.57"])  # fmt: skip
def test_wado_codes_lossless_syntaxes_on_request(client, server, ts):
    """A client asking for JPEG-LS, JPEG 2000, JPEG Lossless or RLE (no preset stores them) gets the
    instance coded now, bit-exact under the same SOP Instance UID and not labelled lossy: the signed
    head CT, a signed 16-bit CT and a 10-frame enhanced MR stored as RLE, decoded by pydicom's
    plugins; frames too, as the image type. JPEG 2000 .91 and HTJ2K .203, which may hold lossy or
    lossless codestreams, get the lossless one (406 until 2026-12-02). JPEG Lossless .70 / .57 were
    406 until 2026-12-02 too."""
    head, ct, mr = _three_kinds(server)
    known = ts != "1.2.840.10008.1.2.4.203"  # dicomweb-client 0.60 refuses HTJ2K .203: asked with httpx
    for src in (head, ct, mr):
        if known:
            got = client.retrieve_instance(src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID,
                                           media_types=(("application/dicom", ts),))  # fmt: skip
        else:
            r = server.get(f"/dicomweb/studies/{src.StudyInstanceUID}/series/{src.SeriesInstanceUID}/instances/"
                           f"{src.SOPInstanceUID}", headers={"Accept": f"application/dicom; transfer-syntax={ts}"})  # fmt: skip
            assert r.status_code == 200 and r.headers["content-type"] == f"application/dicom; transfer-syntax={ts}"
            got = pydicom.dcmread(io.BytesIO(r.content))
        assert got.file_meta.TransferSyntaxUID == ts
        assert got.SOPInstanceUID == src.SOPInstanceUID and got.get("LossyImageCompression", "00") == "00"
        hu = got.pixel_array * float(got.get("RescaleSlope", 1)) + float(got.get("RescaleIntercept", 0))
        ref = src.pixel_array * float(src.get("RescaleSlope", 1)) + float(src.get("RescaleIntercept", 0))
        assert np.array_equal(hu, ref)
    media = {"1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.90": "image/jp2",
             "1.2.840.10008.1.2.4.91": "image/jp2", "1.2.840.10008.1.2.4.203": "image/jphc",
             "1.2.840.10008.1.2.5": "image/x-dicom-rle", "1.2.840.10008.1.2.4.70": "image/jpeg",
             "1.2.840.10008.1.2.4.57": "image/jpeg"}[ts]  # fmt: skip
    if known:
        frames = client.retrieve_instance_frames(head.StudyInstanceUID, head.SeriesInstanceUID, head.SOPInstanceUID,
                                                 frame_numbers=[1], media_types=((media, ts),))  # fmt: skip
        assert len(frames) == 1 and len(frames[0]) < head.pixel_array.nbytes
    else:
        r = server.get(f"/dicomweb/studies/{head.StudyInstanceUID}/series/{head.SeriesInstanceUID}/instances/"
                       f"{head.SOPInstanceUID}/frames/1", headers={"Accept": f'multipart/related; type="{media}"; '
                                                                           f"transfer-syntax={ts}"})  # fmt: skip
        assert r.status_code == 200 and f"transfer-syntax={ts}".encode() in r.content[:400]
        assert len(r.content) < head.pixel_array.nbytes
    # asked together with a preset other than lossless, it is not offered
    url = f"/dicomweb/studies/{head.StudyInstanceUID}/series/{head.SeriesInstanceUID}/instances/{head.SOPInstanceUID}"
    r = server.get(url + "?preset=diagnostic",
                   headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={ts}'})  # fmt: skip
    assert r.status_code == 406


@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                                "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.4.70"])  # fmt: skip
def test_wado_codes_colour_losslessly_on_request(server, ts):
    """The RGB ultrasound asked for in a lossless syntax (406 until 2026-12-02): coded now,
    bit-exact RGB, same SOP Instance UID, not labelled lossy; RLE and HTJ2K RPCL, which colour is
    not coded in, still 406 with the reason."""
    us = pydicom.dcmread(server.singles["us_US1_480x640_rgb_uncompressed.dcm"])
    url = f"/dicomweb/studies/{us.StudyInstanceUID}/series/{us.SeriesInstanceUID}/instances/{us.SOPInstanceUID}"
    r = server.get(url, headers={"Accept": f"application/dicom; transfer-syntax={ts}"})
    assert r.status_code == 200, r.text
    got = pydicom.dcmread(io.BytesIO(r.content))
    assert got.file_meta.TransferSyntaxUID == ts and got.SOPInstanceUID == us.SOPInstanceUID
    assert got.get("LossyImageCompression", "00") == "00" and got.PlanarConfiguration == 0
    assert np.array_equal(got.pixel_array, us.pixel_array) and len(r.content) < len(us.PixelData) / 2
    for other in ("1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.202"):
        r = server.get(url, headers={"Accept": f"application/dicom; transfer-syntax={other}"})
        assert r.status_code == 406 and "colour" in r.json()["detail"]


def test_wado_near_lossless_on_request(client, server):
    """JPEG-LS near-lossless (.81), asked by its transfer syntax (dicomweb-client) or as the
    ``near-lossless`` preset: every value within the preset's bound, labelled lossy under a new
    SOP Instance UID (signed 12-bit head CT, signed 16-bit CT, 10-frame enhanced MR stored as RLE);
    a frame as image/jls; a live archive whose manifest states the bound."""
    from medcodec.delivery.presets import NEAR_LOSSLESS_ERROR

    ts = "1.2.840.10008.1.2.4.81"
    head, ct, mr = _three_kinds(server)
    for src in (head, ct, mr):
        got = client.retrieve_instance(src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID,
                                       media_types=(("application/dicom", ts),))  # fmt: skip
        assert got.file_meta.TransferSyntaxUID == ts and got.LossyImageCompression == "01"
        assert got.SOPInstanceUID != src.SOPInstanceUID
        slope = float(src.get("RescaleSlope", 1))
        hu = got.pixel_array * float(got.get("RescaleSlope", 1)) + float(got.get("RescaleIntercept", 0))
        ref = src.pixel_array * slope + float(src.get("RescaleIntercept", 0))
        assert np.abs(hu - ref).max() <= NEAR_LOSSLESS_ERROR * abs(slope) + 1e-6
    frames = client.retrieve_instance_frames(head.StudyInstanceUID, head.SeriesInstanceUID, head.SOPInstanceUID,
                                             frame_numbers=[1], media_types=(("image/jls", ts),))  # fmt: skip
    assert len(frames) == 1 and len(frames[0]) < head.pixel_array.nbytes
    r = server.get(f"/studies/{head.StudyInstanceUID}/series/{head.SeriesInstanceUID}/archive.zip"
                   "?preset=near-lossless&live=1")  # fmt: skip
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        import json

        manifest = json.loads(archive.read("manifest.json"))
        names = [n for n in archive.namelist() if n != "manifest.json"]
        assert len(names) == len(server.head_files) == len(manifest["files"])
        assert all(f["transfer_syntax_uid"] == ts and f["max_error_bound"] == NEAR_LOSSLESS_ERROR
                   for f in manifest["files"])  # fmt: skip
        first = pydicom.dcmread(io.BytesIO(archive.read(names[0])))
        assert first.file_meta.TransferSyntaxUID == ts
    # the viewer's frame of it (decoded by the server, sent as zlib-deflated samples)
    import zlib

    r = server.get(f"/viewer/api/studies/{head.StudyInstanceUID}/series/{head.SeriesInstanceUID}/instances/"
                   f"{head.SOPInstanceUID}/frames/1?preset=near-lossless")  # fmt: skip
    assert r.status_code == 200 and r.headers["x-encoding"] != "jpeg", r.text[:300]
    dtype = {"int16": "<i2", "uint16": "<u2", "uint8": "u1"}[r.headers["x-sample-type"]]
    shown = np.frombuffer(zlib.decompress(r.content), dtype).reshape(head.Rows, head.Columns).astype(np.float64)
    shown = shown * float(r.headers["x-rescale-slope"]) + float(r.headers["x-rescale-intercept"])
    ref = head.pixel_array * float(head.RescaleSlope) + float(head.RescaleIntercept)
    assert 0 < np.abs(shown - ref).max() <= NEAR_LOSSLESS_ERROR * float(head.RescaleSlope)


def test_wado_htj2k_rpcl_lossless_on_request(server):
    """HTJ2K with RPCL (.202), which dicomweb-client does not know: asked with httpx, bit-exact."""
    src = pydicom.dcmread(server.head_files[5])
    url = f"/dicomweb/studies/{src.StudyInstanceUID}/series/{src.SeriesInstanceUID}/instances/{src.SOPInstanceUID}"
    ts = "1.2.840.10008.1.2.4.202"
    r = server.get(url, headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={ts}'})
    assert r.status_code == 200, r.text
    boundary = r.headers["content-type"].split("boundary=")[1].encode()
    part = r.content.split(b"--" + boundary)[1]
    got = pydicom.dcmread(io.BytesIO(part.split(b"\r\n\r\n", 1)[1][: -len(b"\r\n")]))
    assert got.file_meta.TransferSyntaxUID == ts and np.array_equal(got.pixel_array, src.pixel_array)


def test_metadata_and_qido_gzipped_when_accepted(server):
    """A series' metadata (~6 kB of DICOM JSON an instance) comes gzipped to a client that accepts
    it, the same JSON; small answers and clients that do not accept gzip get it plain."""
    url = f"/dicomweb/studies/{server.head_study}/series/{server.head_series}/metadata"
    gz = server.get(url, headers={"Accept-Encoding": "gzip"})
    plain = server.get(url, headers={"Accept-Encoding": "identity"})
    assert gz.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert gz.json() == plain.json() and len(plain.json()) == len(server.head_files)
    assert int(gz.headers["content-length"]) * 5 < int(plain.headers["content-length"])
    refused = server.get(url, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    tiny = server.get("/dicomweb/studies?PatientID=NOBODY-XYZ", headers={"Accept-Encoding": "gzip"})
    assert tiny.json() == [] and "content-encoding" not in tiny.headers


def test_thumbnails_and_viewport(server):
    """Thumbnails of a study, a series, an instance and a frame (the middle image, 128x128 JPEG by
    default, PNG when asked) and ``viewport`` on rendered images (fitted, aspect ratio kept)."""
    from PIL import Image

    head = pydicom.dcmread(server.head_files[0], stop_before_pixels=True)
    mr = pydicom.dcmread(server.singles["mr_enhanced_multiframe_10f_64x64_rle.dcm"], stop_before_pixels=True)
    study = f"/dicomweb/studies/{head.StudyInstanceUID}"
    series = f"{study}/series/{head.SeriesInstanceUID}"
    inst = f"{series}/instances/{head.SOPInstanceUID}"
    for url in (study + "/thumbnail", series + "/thumbnail", inst + "/thumbnail", inst + "/frames/1/thumbnail"):
        r = server.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", (url, r.text)
        img = Image.open(io.BytesIO(r.content))
        assert img.size == (128, 128) and head.Rows == head.Columns
    png = server.get(series + "/thumbnail?viewport=64,32", headers={"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png" and Image.open(io.BytesIO(png.content)).size == (32, 32)
    mf = f"/dicomweb/studies/{mr.StudyInstanceUID}/series/{mr.SeriesInstanceUID}/instances/{mr.SOPInstanceUID}"
    big = server.get(mf + "/frames/3/rendered?viewport=256,128")
    assert Image.open(io.BytesIO(big.content)).size == (128, 128)  # 64x64 fitted into 256x128
    assert big.headers["content-type"] == "image/jpeg"  # the default of PS3.18 §8.7.7 (was PNG)
    assert server.get(mf + "/rendered?viewport=0,5").status_code == 400
    assert server.get(f"/dicomweb/studies/{mr.StudyInstanceUID}/series/1.2.3.999/thumbnail").status_code == 404


def test_frames_uncompressed_and_jpeg(client, server):
    mr = pydicom.dcmread(server.singles["mr_enhanced_multiframe_10f_64x64_rle.dcm"])
    args = (mr.StudyInstanceUID, mr.SeriesInstanceUID, mr.SOPInstanceUID)
    frames = client.retrieve_instance_frames(*args, frame_numbers=[2, 7])
    assert len(frames) == 2
    for got, k in zip(frames, (2, 7)):
        arr = np.frombuffer(got, dtype=mr.pixel_array.dtype.newbyteorder("<")).reshape(64, 64)
        assert np.array_equal(arr, mr.pixel_array[k - 1])
    src = pydicom.dcmread(server.chest_files[1])
    jpeg = client.retrieve_instance_frames(server.chest_study, server.chest_series, src.SOPInstanceUID,
                                           frame_numbers=[1], media_types=(("image/jpeg", JPEG_12),))  # fmt: skip
    assert jpeg[0][:2] == b"\xff\xd8" and b"\xff\xc1" in jpeg[0][:2000]  # SOF1: 12-bit extended
    r = server.get(f"/dicomweb/studies/{args[0]}/series/{args[1]}/instances/{args[2]}/frames/11")
    assert r.status_code == 404


def test_frames_single_part_no_repeats_and_json_only_answers_refuse_other_types(server):
    """An outside audit (2026-12-05): one frame asked as a single-part type came as a multipart body
    (a client in single-part mode read the MIME framing as pixels); a frame list could repeat one
    frame without limit (157 MB for 300 repeats, the answer built in memory); /metadata and the
    STOW-RS response answered JSON to a client that accepted DICOM XML only, where QIDO-RS said 406."""
    import imagecodecs

    mr = pydicom.dcmread(server.singles["mr_enhanced_multiframe_10f_64x64_rle.dcm"])
    inst = f"/dicomweb/studies/{mr.StudyInstanceUID}/series/{mr.SeriesInstanceUID}/instances/{mr.SOPInstanceUID}"
    r = server.get(inst + "/frames/3", headers={"Accept": "application/octet-stream"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream", r.headers
    assert r.content == mr.pixel_array[2].astype(mr.pixel_array.dtype.newbyteorder("<")).tobytes()
    r = server.get(inst + "/frames/2,7", headers={"Accept": "application/octet-stream"})
    assert r.status_code == 406 and "multipart/related only" in r.json()["detail"], r.text
    both = 'application/octet-stream, multipart/related; type="application/octet-stream"; q=0.5'
    r = server.get(inst + "/frames/2,7", headers={"Accept": both})
    assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/related")
    assert r.content.count(b"Content-Type: application/octet-stream") == 2
    for frames in ("1,1", "2,7,2", ",".join(["1"] * 300)):
        r = server.get(f"{inst}/frames/{frames}")
        assert r.status_code == 400 and "asked for twice" in r.json()["detail"], (frames, r.status_code)
    head = pydicom.dcmread(server.head_files[4])
    url = f"/dicomweb/studies/{head.StudyInstanceUID}/series/{head.SeriesInstanceUID}/instances/{head.SOPInstanceUID}"
    r = server.get(url + "/frames/1", headers={"Accept": "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.70"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.70"
    assert np.array_equal(imagecodecs.jpeg8_decode(r.content), head.pixel_array)
    xml = {"Accept": "application/dicom+xml"}
    for path in (url + "/metadata", f"/dicomweb/studies/{head.StudyInstanceUID}/metadata"):
        assert server.get(path, headers=xml).status_code == 406
        assert (
            server.get(path, headers={"Accept": 'multipart/related; type="application/dicom+xml"'}).status_code == 406
        )
        assert server.get(path).status_code == 200
    copy = pydicom.dcmread(server.singles["ct_CT1_small_128x128_signed16.dcm"])
    copy.StudyInstanceUID, copy.SeriesInstanceUID, copy.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    copy.file_meta.MediaStorageSOPInstanceUID = copy.SOPInstanceUID
    buffer = io.BytesIO()
    copy.save_as(buffer, enforce_file_format=True)
    body, ct = stow_body(buffer.getvalue())
    r = httpx.post(server.url + "/dicomweb/studies", content=body, headers={"Content-Type": ct, **xml}, timeout=60)
    assert r.status_code == 406, r.text
    assert server.get(f"/dicomweb/studies?StudyInstanceUID={copy.StudyInstanceUID}").json() == []  # nothing stored


def test_rendered_png_and_jpeg_with_window(client, server):
    from PIL import Image

    src = pydicom.dcmread(server.head_files[5])
    png = client.retrieve_instance_rendered(server.head_study, server.head_series, src.SOPInstanceUID,
                                            media_types=("image/png",), params={"window": "40,80"})  # fmt: skip
    img = np.asarray(Image.open(io.BytesIO(png)))
    assert img.shape == (512, 512) and img.dtype == np.uint8
    hu = src.pixel_array * float(src.RescaleSlope) + float(src.RescaleIntercept)
    assert np.all(img[hu < 0] == 0) and np.all(img[hu > 80] == 255)  # window 0..80 HU
    jpg = client.retrieve_instance_rendered(server.head_study, server.head_series, src.SOPInstanceUID,
                                            media_types=("image/jpeg",))  # fmt: skip
    assert jpg[:2] == b"\xff\xd8"
    r = server.get(f"/dicomweb/studies/{server.head_study}/series/{server.head_series}/instances/"
                   f"{src.SOPInstanceUID}/rendered?window=40,-5")  # fmt: skip
    assert r.status_code == 400


def test_rendered_source_region_and_request_values_out_of_range(server):
    """PS3.18 §8.3.5.1.3's ``viewport=vw,vh,sx,sy,sw,sh`` renders that region of the image (it was 400);
    out-of-range values are 400 (``quality=0`` was taken as 90, ``fuzzymatching=maybe`` as false) and an
    Accept of empty list elements is no Accept (RFC 9110 §5.6.1; it was 400). An outside audit, 2026-12-05."""
    from PIL import Image

    src = pydicom.dcmread(server.head_files[5], stop_before_pixels=True)
    inst = f"/dicomweb/studies/{server.head_study}/series/{server.head_series}/instances/{src.SOPInstanceUID}"
    png = {"Accept": "image/png"}
    whole = np.asarray(Image.open(io.BytesIO(server.get(inst + "/rendered?window=40,80", headers=png).content)))
    r = server.get(inst + "/rendered?window=40,80&viewport=200,120,100,64,200,120", headers=png)
    assert r.status_code == 200, r.text
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), whole[64:184, 100:300])
    r = server.get(inst + "/rendered?viewport=50,30,100,64,200,120", headers=png)
    assert Image.open(io.BytesIO(r.content)).size == (50, 30)  # the region fitted, aspect kept
    for bad in ("64,64,0,0,600,10", "64,64,-1,0,10,10", "64,64,0,0,-10,10", "64,64,0,0,10", "64,64,a,0,10,10"):
        r = server.get(inst + f"/rendered?viewport={bad}")
        assert r.status_code == 400 and "viewport" in r.json()["detail"], (bad, r.status_code)
    assert server.get(inst + "/rendered?quality=0").status_code == 400
    assert server.get(inst + "/rendered?quality=1").status_code == 200
    assert server.get("/dicomweb/studies?fuzzymatching=maybe").status_code == 400
    assert server.get("/dicomweb/studies?fuzzymatching=TRUE").status_code == 200
    assert server.get("/dicomweb/studies", headers={"Accept": ",, ,"}).status_code == 200


def test_rendered_enhanced_ct_uses_its_functional_groups_rescale(shared_data, tmp_path, spawn_server):
    """An enhanced CT keeps its rescale in the Shared Functional Groups (Pixel Value
    Transformation); ``/rendered`` read only the top level: the original rendered 1024 HU off and
    a diagnostic rendition, whose mapping moved the stored values, further (an outside audit,
    2026-12-02). Both now match a 40 / 400 window of the original's HU."""
    from PIL import Image

    from medcodec.delivery import open_store

    path = shared_data / "singles" / "ct_enhanced_multiframe_2f_512x512.dcm"
    with open_store(tmp_path / "store") as store:
        assert store.ingest([path], precompress=False).ok
    _, url, _ = spawn_server(tmp_path / "store")
    src = pydicom.dcmread(path)
    pvt = src.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    hu = src.pixel_array[1] * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
    expected = np.clip(((hu - 39.5) / 399 + 0.5) * 255, 0, 255)
    inst = (
        f"{url}/dicomweb/studies/{src.StudyInstanceUID}/series/{src.SeriesInstanceUID}/instances/{src.SOPInstanceUID}"
    )
    for query, tolerance in (("", 1.0), ("&preset=diagnostic", 6.0)):
        r = httpx.get(f"{inst}/frames/2/rendered?window=40,400{query}", headers={"Accept": "image/png"}, timeout=60)
        assert r.status_code == 200, r.text
        got = np.asarray(Image.open(io.BytesIO(r.content))).astype(np.float64)
        assert np.abs(got - expected).mean() < tolerance, (query, np.abs(got - expected).mean())


def _psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_rendered_colour_and_presets(client, server):
    """``/rendered`` of colour shows pydicom's RGB (a YBR_FULL file was converted twice until
    2026-12-01); ``?preset=`` renders that preset's rendition: diagnostic close to the original,
    preview further, the syntax rendered named in ``X-Transfer-Syntax``; an unknown preset is 404."""
    from PIL import Image
    from pydicom.data import get_testdata_file

    def rendered(path: str, preset: str | None = None) -> tuple[np.ndarray, httpx.Response]:
        r = server.get(path + "/rendered" + (f"?preset={preset}" if preset else ""), headers={"Accept": "image/png"})
        assert r.status_code == 200, r.text
        return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")), r

    ybr = pydicom.dcmread(get_testdata_file("SC_ybr_full_uncompressed.dcm"))
    ybr.StudyInstanceUID, ybr.SeriesInstanceUID, ybr.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ybr.file_meta.MediaStorageSOPInstanceUID = ybr.SOPInstanceUID
    assert "FailedSOPSequence" not in client.store_instances([ybr])
    got, r = rendered(f"/dicomweb/studies/{ybr.StudyInstanceUID}/series/{ybr.SeriesInstanceUID}/instances/"
                      f"{ybr.SOPInstanceUID}")  # fmt: skip
    assert r.headers["x-preset"] == "original" and np.array_equal(got, ybr.pixel_array)  # RGB, not converted twice

    us = pydicom.dcmread(server.singles["us_US1_480x640_rgb_uncompressed.dcm"])
    path = f"/dicomweb/studies/{us.StudyInstanceUID}/series/{us.SeriesInstanceUID}/instances/{us.SOPInstanceUID}"
    original, _ = rendered(path)
    assert np.array_equal(original, us.pixel_array)
    diagnostic, r = rendered(path, "diagnostic")
    assert r.headers["x-preset"] == "diagnostic" and r.headers["x-transfer-syntax"] == "1.2.840.10008.1.2.4.50"
    preview, _ = rendered(path, "preview")
    assert 30 < _psnr8(diagnostic, original) < 60 and _psnr8(preview, original) < _psnr8(diagnostic, original) - 3
    head = pydicom.dcmread(server.head_files[5])
    gray = f"/dicomweb/studies/{server.head_study}/series/{server.head_series}/instances/{head.SOPInstanceUID}"
    a, _ = rendered(gray + "/frames/1", None)
    b, r = rendered(gray + "/frames/1", "diagnostic")
    assert r.headers["x-transfer-syntax"] == JPEG_12 and 35 < _psnr8(a, b) < 99
    assert server.get(gray + "/rendered?preset=nonsense").status_code == 404
    thumb = server.get(gray + "/thumbnail?preset=preview")
    assert thumb.status_code == 200 and thumb.headers["x-preset"] == "preview"


def test_non_ascii_digits_are_400_on_every_route(server):
    """'²' passes ``str.isdigit`` but not ``int``: every integer parameter answered 500 with it (HTTP
    audit, 2026-12-01); now a 400 JSON error, as for any other malformed number."""
    mr = pydicom.dcmread(server.singles["mr_enhanced_multiframe_10f_64x64_rle.dcm"], stop_before_pixels=True)
    uids = (mr.StudyInstanceUID, mr.SeriesInstanceUID, mr.SOPInstanceUID)
    inst = "/dicomweb/studies/{}/series/{}/instances/{}".format(*uids)
    wado = "/wado?requestType=WADO&studyUID={}&seriesUID={}&objectUID={}".format(*uids)
    sup2, arabic_one = "%C2%B2", "%D9%A1"
    paths = [f"/dicomweb/studies?limit={sup2}", f"/dicomweb/studies?offset={sup2}", f"/dicomweb/series?limit=1{sup2}",
             f"{inst}/frames/{sup2}", f"{inst}/frames/1,{sup2}", f"{inst}/frames/{arabic_one}",
             f"{inst}/frames/{sup2}/rendered", f"{inst}/frames/{sup2}/thumbnail",
             f"{inst}/rendered?quality={sup2}", f"{inst}/rendered?viewport={sup2},5", f"{inst}/thumbnail?viewport=5,{sup2}",
             f"{wado}&frameNumber={sup2}", f"{wado}&rows={sup2}", f"{wado}&columns={sup2}", f"{wado}&imageQuality={sup2}",
             "/viewer/api/studies/{}/series/{}/instances/{}/frames/{}".format(*uids, sup2),
             f"/dicomweb/studies?limit={'9' * 5000}", f"{inst}/frames/{'9' * 5000}"]  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=60) as c:
        for path in paths:
            r = c.get(path)
            assert r.status_code == 400, (path[:120], r.status_code, r.text[:300])
            assert r.json()["error"] == "InvalidInputError" and "Traceback" not in r.text
        assert c.get(f"{inst}/frames/ 2").status_code == 200  # ASCII digits with blanks around still do


def test_qido_integer_keys_outside_the_is_range_and_nul_are_400(server):
    """An IS matching key past the SQL integer (SQLite OverflowError: 500) or the DICOM IS range, and
    a NUL character in any value (PostgreSQL refuses it in text), are refused before the query."""
    with httpx.Client(base_url=server.url, timeout=60) as c:
        for query in ("InstanceNumber=99999999999999999999", "SeriesNumber=99999999999999999999",
                      "InstanceNumber=2147483648", "SeriesNumber=-2147483649", "InstanceNumber=%C2%B2",
                      "InstanceNumber=1_0", "PatientName=%00", "StudyDate=%00", "StudyDate=2020%00-2021",
                      "PatientID=A%00B", "StudyDate=%C2%B2-"):  # fmt: skip
            for level in ("instances", "series", "studies"):
                r = c.get(f"/dicomweb/{level}?{query}")
                assert r.status_code == 400, (level, query, r.status_code, r.text[:300])
                assert r.json()["error"] == "InvalidInputError"
        assert c.get("/dicomweb/instances?InstanceNumber=2147483647").json() == []  # the largest IS: no match
        found = c.get(f"/dicomweb/studies/{server.chest_study}/instances?InstanceNumber=%2B1").json()
        assert found == c.get(f"/dicomweb/studies/{server.chest_study}/instances?InstanceNumber=1").json()


def test_accept_of_only_unacceptable_types_is_406(server):
    """``q=0`` means "not acceptable" (RFC 9110 §12.4.2): an Accept of only those is a 406, not a
    400 "malformed"."""
    src = pydicom.dcmread(server.chest_files[0], stop_before_pixels=True)
    inst = f"/dicomweb/studies/{server.chest_study}/series/{server.chest_series}/instances/{src.SOPInstanceUID}"
    for path, accept in ((inst, "application/dicom;q=0"), (inst, 'multipart/related; type="application/dicom";q=0'),
                         (f"/dicomweb/studies/{server.chest_study}", "application/dicom; q=0, text/html; q=0"),
                         (inst + "/rendered", "image/jpeg;q=0"), (inst + "/frames/1", "*/*;q=0")):  # fmt: skip
        r = server.get(path, headers={"Accept": accept})
        assert r.status_code == 406, (path, accept, r.status_code, r.text[:300])
        assert r.json()["error"] == "NotAcceptableError"
    r = server.get(inst, headers={"Accept": "application/dicom;q=0, */*;q=0.5"})  # something left: answered
    assert r.status_code == 200


def test_head_on_a_study_retrieve_encodes_nothing(server):
    """HEAD of a WADO-RS study or series retrieve answers the status and the multipart type without
    producing the instances (it transcoded all of them and threw them away: HTTP audit F6). The head
    CT's 40 slices to JPEG 2000 take a GET about a second; the HEAD must take a small part of that.
    A client has the HEAD's headers before the server is done with it, so the time is taken up to
    the answer of a second request on the same connection (the server reads it once the HEAD is done)."""
    j2k = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90'
    study = f"/dicomweb/studies/{server.head_study}"
    with httpx.Client(base_url=server.url, timeout=120, limits=httpx.Limits(max_connections=1)) as c:
        t0 = time.perf_counter()
        get = c.get(study, headers={"Accept": j2k})  # first: the HEAD is not the one paying for imports
        t_get = time.perf_counter() - t0
        t0 = time.perf_counter()
        head = c.head(study, headers={"Accept": j2k})
        assert c.get("/health").status_code == 200
        t_head = time.perf_counter() - t0
        assert head.status_code == get.status_code == 200, (head.status_code, get.text[:300])
        assert head.content == b"" and get.content.count(b"transfer-syntax=1.2.840.10008.1.2.4.90") == 40
        for r in (head, get):
            assert r.headers["content-type"].startswith('multipart/related; type="application/dicom"; boundary=')
            assert "content-length" not in r.headers  # a HEAD must not claim 0 bytes for a streamed body
        assert t_head < t_get / 5, f"HEAD took {t_head:.2f} s, GET {t_get:.2f} s"
        series = c.head(f"{study}/series/{server.head_series}", headers={"Accept": j2k})
        assert series.status_code == 200 and series.content == b""
        # what HEAD can know without encoding is still answered: 406, 404
        assert c.head(study, headers={"Accept": "text/html"}).status_code == 406
        assert c.head("/dicomweb/studies/1.2.3.4.5.6.7.8.9").status_code == 404


def test_stow_stores_and_finds(client, server):
    src = pydicom.dcmread(server.singles["ct_CT1_small_128x128_signed16.dcm"])
    src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    src.file_meta.MediaStorageSOPInstanceUID = src.SOPInstanceUID
    result = client.store_instances([src])
    assert result.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert "FailedSOPSequence" not in result
    found = client.search_for_instances(src.StudyInstanceUID)
    assert [_uid(i, "00080018") for i in found] == [src.SOPInstanceUID]
    back = client.retrieve_instance(src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID,
                                    media_types=(("application/dicom", "*"),))  # fmt: skip
    assert np.array_equal(back.pixel_array, src.pixel_array)
    # the same again: a duplicate, stored once, reported with a warning
    again = client.store_instances([src])
    assert again.ReferencedSOPSequence[0].WarningReason == 0xB000
    # other bytes under the same SOP Instance UID: a conflict, 409, nothing overwritten
    src.PatientName = "Someone^Else"
    with pytest.raises(Exception) as info:
        client.store_instances([src])
    assert "409" in str(info.value)
    back = client.retrieve_instance(src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID,
                                    media_types=(("application/dicom", "*"),))  # fmt: skip
    assert back.PatientName != "Someone^Else"


def test_stow_into_a_study_is_precomputed_again_in_the_background(client, server):
    # STOW-RS "ingests like medcodec ingest": the study it changed is pre-computed again, so its
    # archive comes back from storage (ETag, Range), with the new instance in it
    study, series = generate_uid(), generate_uid()
    sent = []
    for k, name in enumerate(["ct_CT1_small_128x128_signed16.dcm", "ct_CT1_small_128x128_signed16.dcm"]):
        src = pydicom.dcmread(server.singles[name])
        src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID = study, series, generate_uid()
        src.file_meta.MediaStorageSOPInstanceUID = src.SOPInstanceUID
        src.InstanceNumber = k + 1
        client.store_instances([src])
        sent.append(src.SOPInstanceUID)
        # asked at once: the request waits for the pre-computation in progress, not a live stream
        r = server.get(f"/studies/{study}/archive.zip?preset=diagnostic")
        assert r.status_code == 200 and r.headers["x-medcodec-archive"] == "precomputed" and "etag" in r.headers
        names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
        assert len(names) == k + 2 and all(any(sop in n for n in names) for sop in sent)  # + manifest.json
        part = server.get(f"/studies/{study}/archive.zip?preset=diagnostic", headers={"Range": "bytes=10-49"})
        assert part.status_code == 206 and part.content == r.content[10:50]
        assert server.get(f"/studies/{study}/archive.zip?preset=diagnostic",
                          headers={"If-None-Match": r.headers["etag"]}).status_code == 304  # fmt: skip
    health = server.get("/health").json()
    assert health["precompute_completed"] >= 2 and health["precompute_failed"] == 0


def test_stow_rejects_non_dicom_and_wrong_types(server):
    url = server.url + "/dicomweb/studies"
    before = len(httpx.get(url, timeout=30).json())
    boundary = "xyz123"
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + b"not a dicom file at all" * 10
            + f"\r\n--{boundary}--\r\n".encode())  # fmt: skip
    ct = f'multipart/related; type="application/dicom"; boundary={boundary}'
    r = httpx.post(url, content=body, headers={"Content-Type": ct}, timeout=30)
    assert r.status_code == 400 and r.json()["error"] == "NotDicomError"
    r = httpx.post(url, content=b"{}", headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 415
    r = httpx.post(url, content=b"--x\r\n", headers={"Content-Type": ct}, timeout=30)
    assert r.status_code == 400
    assert len(httpx.get(url, timeout=30).json()) == before  # nothing stored


def test_a_stow_part_without_sop_uids_fails_named_by_its_file_meta(server):
    """A DICOM part whose data set lacks its SOP Class / Instance UID (nibabel ships one) cannot be
    stored: 409, its failed item named by the file meta's UIDs (it was two empty values)."""
    ds = pydicom.dcmread(server.singles["ct_CT1_small_128x128_signed16.dcm"])
    sop_class, sop_instance = str(ds.SOPClassUID), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance
    del ds.SOPClassUID, ds.SOPInstanceUID
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    body, ct = stow_body(buf.getvalue())
    r = httpx.post(server.url + "/dicomweb/studies", content=body, headers={"Content-Type": ct}, timeout=60)
    assert r.status_code == 409, r.text
    (item,) = r.json()["00081198"]["Value"]
    assert item["00081150"]["Value"] == [sop_class] and item["00081155"]["Value"] == [sop_instance]
    assert item["00081197"]["Value"] == [0xC000]


def test_stow_judges_each_part_and_stores_the_rest(server):
    """Each part is judged on its own: one that cannot be stored (here other content under a
    stored SOP Instance UID) is a failed item with its reason and SOP Class, the others are stored
    (202). (A part whose study is another patient's is stored, with a warning in the log.)"""
    good = pydicom.dcmread(server.singles["ct_CT1_small_128x128_signed16.dcm"])
    good.StudyInstanceUID, good.SeriesInstanceUID, good.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    good.file_meta.MediaStorageSOPInstanceUID = good.SOPInstanceUID
    stranger = pydicom.dcmread(server.head_files[0])  # stored already: a changed copy conflicts
    stranger.PatientName = "Changed^Name"
    boundary = "b0undary"
    body = b""
    for ds in (stranger, good):
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + buf.getvalue() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    ct = f'multipart/related; type="application/dicom"; boundary={boundary}'
    r = httpx.post(server.url + "/dicomweb/studies", content=body, headers={"Content-Type": ct,
                   "Accept": "application/dicom+json"}, timeout=60)  # fmt: skip
    assert r.status_code == 202, r.text
    failed = r.json()["00081198"]["Value"]
    assert [f["00081155"]["Value"][0] for f in failed] == [stranger.SOPInstanceUID]
    assert failed[0]["00081197"]["Value"] == [0x0111]
    assert failed[0]["00000902"]["Value"] == ["SOP Instance UID stored already with other content"]  # the reason
    assert failed[0]["00081150"]["Value"] == [str(stranger.SOPClassUID)]
    done = r.json()["00081199"]["Value"]
    assert [d["00081155"]["Value"][0] for d in done] == [good.SOPInstanceUID]
    meta = httpx.get(f"{server.url}/dicomweb/studies/{server.head_study}/series/{server.head_series}/instances/"
                     f"{stranger.SOPInstanceUID}/metadata", timeout=30).json()  # fmt: skip
    assert meta[0]["00100010"]["Value"][0]["Alphabetic"] != "Changed^Name"


def test_a_series_asked_in_a_syntax_its_images_cannot_take_comes_as_stored(server):
    """12-bit CT asked for as baseline JPEG (.50, 8-bit only) was sent as the diagnostic preset's
    lossy .51, which the client had not asked for (audit against PS3.18, 2026-12-01). Each such
    part now comes as stored, lossless, its Content-Type saying so; one instance asked alone is 406."""
    url = f"/dicomweb/studies/{server.head_study}/series/{server.head_series}"
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    r = server.get(url, headers={"Accept": accept})
    assert r.status_code == 200
    syntaxes = [m.decode() for m in re.findall(rb"Content-Type: application/dicom; transfer-syntax=([0-9.]+)\r\n",
                                               r.content)]  # fmt: skip
    stored = pydicom.dcmread(server.head_files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert len(syntaxes) == len(server.head_files) and set(syntaxes) == {stored}, set(syntaxes)
    sop = pydicom.dcmread(server.head_files[0], stop_before_pixels=True).SOPInstanceUID
    assert server.get(f"{url}/instances/{sop}", headers={"Accept": accept}).status_code == 406


def test_an_instance_takes_the_next_syntax_the_client_lists(server):
    """An outside audit (2026-12-04): Accept ``.50, .90`` for a 12-bit image gave 406 although ``.90``
    alone was answered (the first syntax medcodec produces at all was taken, not the first this
    image can take); a series asked the same way came as stored. Now each instance gets the first
    listed syntax it can take; 406 only when it takes none, with the first one's reason."""
    url = f"/dicomweb/studies/{server.head_study}/series/{server.head_series}"
    sop = pydicom.dcmread(server.head_files[0], stop_before_pixels=True).SOPInstanceUID
    mp = 'multipart/related; type="application/dicom"'
    for accept, want in (
        (f"{mp}; transfer-syntax=1.2.840.10008.1.2.4.50, {mp}; transfer-syntax=1.2.840.10008.1.2.4.90", J2K_LOSSLESS),
        (f"{mp}; transfer-syntax=1.2.840.10008.1.2.4.50; q=0.9, {mp}; q=0.5", "1.2.840.10008.1.2.1"),
        ("application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50, application/dicom; "
         "transfer-syntax=1.2.840.10008.1.2.4.90", J2K_LOSSLESS),
    ):  # fmt: skip
        r = server.get(f"{url}/instances/{sop}", headers={"Accept": accept})
        assert r.status_code == 200, (accept, r.status_code, r.text[:300])
        ds = pydicom.dcmread(io.BytesIO(r.content if accept.startswith("application/") else _frame_part(r.content)[1]))
        assert ds.file_meta.TransferSyntaxUID == want
        assert np.array_equal(ds.pixel_array, pydicom.dcmread(server.head_files[0]).pixel_array)
    accept = f"{mp}; transfer-syntax=1.2.840.10008.1.2.4.50, {mp}; transfer-syntax=1.2.840.10008.1.2.4.90"
    r = server.get(url, headers={"Accept": accept})
    syntaxes = set(re.findall(rb"Content-Type: application/dicom; transfer-syntax=([0-9.]+)\r\n", r.content))
    assert r.status_code == 200 and syntaxes == {J2K_LOSSLESS.encode()}, syntaxes
    r = server.get(f"{url}/instances/{sop}", headers={"Accept": f"{mp}; transfer-syntax=1.2.840.10008.1.2.4.50"})
    assert r.status_code == 406 and "1.2.840.10008.1.2.4.50" in r.json()["detail"]


def test_a_series_asked_in_its_stored_syntax_comes_as_stored(server):
    """An outside re-check (2026-12-04): Implicit VR Little Endian, which medcodec does not produce but
    the chest series is stored in, was taken for one instance and a 406 for the series; listed first
    before .90, one instance came as stored and the series' parts as .90."""
    url = f"/dicomweb/studies/{server.chest_study}/series/{server.chest_series}"
    stored = str(pydicom.dcmread(server.chest_files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID)
    assert stored == "1.2.840.10008.1.2"
    mp = 'multipart/related; type="application/dicom"'
    for accept in (
        f"{mp}; transfer-syntax={stored}",
        f"{mp}; transfer-syntax={stored}, {mp}; transfer-syntax={J2K_LOSSLESS}",
    ):
        r = server.get(url, headers={"Accept": accept})
        syntaxes = set(re.findall(rb"Content-Type: application/dicom; transfer-syntax=([0-9.]+)\r\n", r.content))
        assert r.status_code == 200 and syntaxes == {stored.encode()}, (accept, r.status_code, syntaxes)


def test_application_wildcard_covers_application_dicom(server):
    """``Accept: application/*`` (RFC 9110 §12.5.1) was a 406 (an outside re-check, 2026-12-04): one
    instance now comes as the file itself in the default syntax, a series as multipart."""
    url = f"/dicomweb/studies/{server.chest_study}/series/{server.chest_series}"
    sop = pydicom.dcmread(server.chest_files[0], stop_before_pixels=True).SOPInstanceUID
    r = server.get(f"{url}/instances/{sop}", headers={"Accept": "application/*"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/dicom"), r.text[:200]
    assert pydicom.dcmread(io.BytesIO(r.content)).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    r = server.get(url, headers={"Accept": 'multipart/related; type="application/*"'})
    assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/related")


def _frame_part(body: bytes) -> tuple[str, bytes]:
    """The first part of a multipart/related answer: its Content-Type and its bytes."""
    head_end = body.find(b"\r\n\r\n")
    head = body[:head_end].decode("latin-1")
    lines = [line for line in head.split("\r\n") if line.lower().startswith("content-type")]
    content_type = lines[0].split(":", 1)[1].strip()
    rest = body[head_end + 4 :]
    return content_type, rest[: rest.find(b"\r\n--")]


def test_frames_default_to_the_lossless_syntax_of_each_image_type_and_take_the_older_names(server):
    """PS3.18 Table 8.7.3-5: ``image/jpeg`` without a transfer syntax means JPEG Lossless .70 (an
    outside audit with OHIF found medcodec answering the lossy baseline .50, or 406 for 12-bit
    data); ``image/dicom-rle`` is RLE's name (only ``image/x-dicom-rle`` was known: 406). The
    older names dicomweb-client sends (``image/x-jls``, ``image/x-dicom-rle``) and OHIF 3's
    ``image/dicom+jpeg`` are taken and answered under the name asked for."""
    import imagecodecs

    head = pydicom.dcmread(server.head_files[4])
    inst = f"/dicomweb/studies/{head.StudyInstanceUID}/series/{head.SeriesInstanceUID}/instances/{head.SOPInstanceUID}"
    for accept, media in (('multipart/related; type="image/jpeg"', "image/jpeg"),
                          ('multipart/related; type="image/dicom+jpeg"', "image/dicom+jpeg")):  # fmt: skip
        r = server.get(inst + "/frames/1", headers={"Accept": accept})
        assert r.status_code == 200, r.text
        content_type, frame = _frame_part(r.content)
        assert content_type == f"{media}; transfer-syntax=1.2.840.10008.1.2.4.70"
        assert np.array_equal(imagecodecs.jpeg8_decode(frame), head.pixel_array)  # lossless, not .50
    r = server.get(inst + "/frames/1?preset=diagnostic", headers={"Accept": 'multipart/related; type="image/jpeg"'})
    assert r.status_code == 200 and _frame_part(r.content)[0] == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.51"
    mr = pydicom.dcmread(server.singles["mr_enhanced_multiframe_10f_64x64_rle.dcm"])
    url = (
        f"/dicomweb/studies/{mr.StudyInstanceUID}/series/{mr.SeriesInstanceUID}/instances/{mr.SOPInstanceUID}/frames/3"
    )
    for media in ("image/dicom-rle", "image/x-dicom-rle"):
        r = server.get(url, headers={"Accept": f'multipart/related; type="{media}"'})
        assert r.status_code == 200, (media, r.text)
        assert _frame_part(r.content)[0] == f"{media}; transfer-syntax=1.2.840.10008.1.2.5"
    r = server.get(inst + "/frames/1", headers={"Accept": 'multipart/related; type="image/x-jls"'})
    content_type, frame = _frame_part(r.content)
    assert r.status_code == 200 and content_type == "image/x-jls; transfer-syntax=1.2.840.10008.1.2.4.80"
    assert np.array_equal(imagecodecs.jpegls_decode(frame), head.pixel_array)


def test_state_changes_wait_for_if_match_and_frames_take_the_next_acceptable_choice(shared_data, tmp_path,
                                                                                      spawn_server):  # fmt: skip
    """A second outside audit (2026-12-02): a STOW-RS with a failing If-Match stored the instance,
    then answered 412; frames asked ``image/jpeg; transfer-syntax=*`` came as RLE or octet-stream,
    and ``application/octet-stream; transfer-syntax=*`` as lossy JPEG; a 1-bit image asked for
    ``image/jpeg`` before ``application/octet-stream;q=0.5`` got 406, and its octet-stream frames
    were one byte a pixel (8x what its metadata says)."""
    from pydicom.data import get_testdata_file
    from pydicom.pixels import pack_bits

    from medcodec.delivery import open_store

    liver = Path(get_testdata_file("liver.dcm"))  # 3 frames of 1-bit segmentation
    rle = shared_data / "singles" / "mr_enhanced_multiframe_10f_64x64_rle.dcm"
    lossy = shared_data / "singles" / "us_576x768_ybr_jpeg_extended.dcm"
    with open_store(tmp_path / "store") as store:
        assert store.ingest([liver, rle, lossy], precompress=False).ok
    _, url, _ = spawn_server(tmp_path / "store")

    def frames_url(path: Path, n: int = 1) -> str:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return (f"{url}/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
                f"{ds.SOPInstanceUID}/frames/{n}")  # fmt: skip

    seg = pydicom.dcmread(liver)
    for n in (1, 2, 3):
        r = httpx.get(frames_url(liver, n), headers={"Accept": 'multipart/related; type="image/jpeg", '
                                                               'multipart/related; type="application/octet-stream"; q=0.5'},
                      timeout=60)  # fmt: skip
        assert r.status_code == 200, r.text
        content_type, frame = _frame_part(r.content)
        assert content_type.startswith("application/octet-stream") and len(frame) == 512 * 512 // 8
        assert frame == pack_bits(seg.pixel_array[n - 1].ravel())
    r = httpx.get(frames_url(rle, 2), headers={"Accept": 'multipart/related; type="image/jpeg"; transfer-syntax=*'},
                  timeout=60)  # fmt: skip
    assert r.status_code == 200 and _frame_part(r.content)[0] == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.70"
    r = httpx.get(frames_url(lossy), timeout=60,
                  headers={"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'})  # fmt: skip
    content_type, frame = _frame_part(r.content)
    assert r.status_code == 200 and content_type == "application/octet-stream" and len(frame) == 576 * 768 * 3

    mr = pydicom.dcmread(shared_data / "singles" / "ct_CT1_small_128x128_signed16.dcm")
    buffer = io.BytesIO()
    mr.save_as(buffer, enforce_file_format=True)
    boundary = "stowboundary0123"
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").encode() + buffer.getvalue() + \
        f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
    r = httpx.post(url + "/dicomweb/studies", content=body, headers={**headers, "If-Match": '"x"'}, timeout=60)
    assert r.status_code == 412 and "nothing was done" in r.json()["detail"]
    assert httpx.get(url + f"/dicomweb/studies?StudyInstanceUID={mr.StudyInstanceUID}", timeout=60).json() == []
    r = httpx.post(url + "/dicomweb/studies", content=body, headers={**headers, "If-Match": "*"}, timeout=60)
    assert r.status_code == 200
    assert len(httpx.get(url + f"/dicomweb/studies?StudyInstanceUID={mr.StudyInstanceUID}", timeout=60).json()) == 1


def test_rendered_frame_of_a_long_colour_clip_decodes_that_frame_only(client, server):
    """``/frames/N/rendered`` of pydicom's 120-frame colour ultrasound (baseline JPEG) decoded all
    120 frames for each request (5.9 s a frame here; the viewer's cine of it was unusable, an outside
    audit, 2026-12-05): now the frame asked for only, the same pixels."""
    import time

    from PIL import Image
    from pydicom.data import get_testdata_file
    from pydicom.pixels import pixel_array

    clip = pydicom.dcmread(get_testdata_file("color3d_jpeg_baseline.dcm"))
    clip.StudyInstanceUID, clip.SeriesInstanceUID, clip.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    clip.file_meta.MediaStorageSOPInstanceUID = clip.SOPInstanceUID
    assert "FailedSOPSequence" not in client.store_instances([clip])
    path = f"/dicomweb/studies/{clip.StudyInstanceUID}/series/{clip.SeriesInstanceUID}/instances/{clip.SOPInstanceUID}"
    for n in (1, 77, 120):
        t0 = time.monotonic()
        r = server.get(f"{path}/frames/{n}/rendered", headers={"Accept": "image/png"})
        took = time.monotonic() - t0
        assert r.status_code == 200, r.text
        got = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
        assert np.array_equal(got, pixel_array(clip, index=n - 1))
        assert took < 3.0, took  # all 120 frames took 5.9 s
