"""Query/Retrieve over DIMSE against ``medcodec serve --dimse-port`` (a uvicorn subprocess), with
real clients: DCMTK's findscu / getscu / movescu and storescp as the C-MOVE destination, and
pynetdicom's SCU where a proposal DCMTK cannot make is needed (JPEG lossy only)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pydicom
import pytest

from medcodec.testing.tools import require_tool

pytestmark = pytest.mark.realdata

CHEST = "ct_chest_lungpetctdx_A0001_philips"
US = "us_US1_480x640_rgb_uncompressed.dcm"
JPEG_12 = "1.2.840.10008.1.2.4.51"
EXPLICIT = "1.2.840.10008.1.2.1"


@pytest.fixture
def qr(shared_data: Path, tmp_path: Path, spawn_server: Any) -> SimpleNamespace:
    """A store with 6 chest CT slices and a colour ultrasound, served with DIMSE and a C-MOVE peer."""
    from medcodec.delivery import open_store

    chest = sorted((shared_data / CHEST).glob("*.dcm"))[:6]
    us = shared_data / "singles" / US
    with open_store(tmp_path / "store") as store:
        assert store.ingest([*chest, us], precompress=False).ok
    dimse, dest = spawn_server.free_port(), spawn_server.free_port()
    _, url, log = spawn_server(tmp_path / "store", extra=["--dimse-port", str(dimse), "--ae-title", "MEDQR",
                                                          "--dimse-peer", f"DEST=127.0.0.1:{dest}"])  # fmt: skip
    ct = pydicom.dcmread(chest[0], stop_before_pixels=True)
    return SimpleNamespace(port=dimse, dest_port=dest, url=url, log=log, chest=chest, us=us, ct=ct)


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, errors="replace")


def _responses(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(folder.glob("rsp*.dcm"))]


def test_c_find_at_every_level_with_dcmtk(qr: SimpleNamespace, tmp_path: Path) -> None:
    findscu = require_tool("findscu")
    base = [findscu, "-aec", "MEDQR", "-X"]

    def find(model: str, *keys: str) -> list[pydicom.Dataset]:
        out = tmp_path / f"find-{time.monotonic_ns()}"
        out.mkdir()
        r = _run([*base, model, "-od", str(out), *(a for k in keys for a in ("-k", k)), "127.0.0.1", str(qr.port)])
        assert r.returncode == 0, r.stderr
        return _responses(out)

    studies = find("-S", "QueryRetrieveLevel=STUDY", "PatientName=*", "StudyInstanceUID", "StudyDate",
                   "ModalitiesInStudy", "NumberOfStudyRelatedInstances")  # fmt: skip
    by_uid = {str(d.StudyInstanceUID): d for d in studies}
    assert str(qr.ct.StudyInstanceUID) in by_uid and len(studies) == 2
    ct = by_uid[str(qr.ct.StudyInstanceUID)]
    assert ct.StudyDate == qr.ct.StudyDate and int(ct.NumberOfStudyRelatedInstances) == 6
    assert ct.RetrieveAETitle == "MEDQR" and ct.QueryRetrieveLevel == "STUDY"
    assert "PatientID" not in ct  # only what was asked for comes back
    series = find("-S", "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={qr.ct.StudyInstanceUID}",
                  "SeriesInstanceUID", "Modality", "SeriesNumber")  # fmt: skip
    assert [(s.SeriesInstanceUID, s.Modality) for s in series] == [(qr.ct.SeriesInstanceUID, "CT")]
    images = find("-S", "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={qr.ct.StudyInstanceUID}",
                  f"SeriesInstanceUID={qr.ct.SeriesInstanceUID}", "SOPInstanceUID", "InstanceNumber",
                  "SliceThickness")  # fmt: skip
    wanted = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in qr.chest}
    assert {str(i.SOPInstanceUID) for i in images} == wanted
    # a return key beyond the level's own attributes is answered from the stored header (empty before)
    assert all(i.SliceThickness not in ("", None) and float(i.SliceThickness) == float(qr.ct.SliceThickness)
               for i in images)  # fmt: skip
    none = find("-S", "QueryRetrieveLevel=STUDY", "PatientName=NOBODY*", "StudyInstanceUID")
    assert none == []
    # a sequence asked for is answered with the stored items (empty until 2026-12-05, where QIDO-RS's
    # includefield gave them: an outside check of the conformance statement), as pynetdicom asks it
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    ae = AE(ae_title="WS")
    ae.add_requested_context(FIND)
    assoc = ae.associate("127.0.0.1", qr.port, ae_title="MEDQR")
    query = pydicom.Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.SOPInstanceUID = str(pydicom.dcmread(qr.chest[0], stop_before_pixels=True).SOPInstanceUID)
    query.ReferencedImageSequence = []
    query.CTExposureSequence = []
    try:
        (answer,) = [ds for status, ds in assoc.send_c_find(query, FIND) if status.Status in (0xFF00, 0xFF01)]
    finally:
        assoc.release()
    stored = pydicom.dcmread(qr.chest[0], stop_before_pixels=True)
    assert [i.ReferencedSOPInstanceUID for i in answer.ReferencedImageSequence] == [
        i.ReferencedSOPInstanceUID for i in stored.ReferencedImageSequence
    ] != []
    assert len(answer.CTExposureSequence) == len(stored.CTExposureSequence) >= 1
    patients = find("-P", "QueryRetrieveLevel=PATIENT", "PatientID", "PatientName", "NumberOfPatientRelatedStudies",
                    "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances")  # fmt: skip
    assert str(qr.ct.PatientID) in {str(p.PatientID) for p in patients} and len(patients) == 2
    ct_patient = next(p for p in patients if str(p.PatientID) == str(qr.ct.PatientID))  # empty until 2026-12-02
    ct_studies = find("-P", "QueryRetrieveLevel=STUDY", f"PatientID={qr.ct.PatientID}", "StudyInstanceUID",
                      "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")  # fmt: skip
    assert int(ct_patient.NumberOfPatientRelatedStudies) == len(ct_studies) >= 1
    assert int(ct_patient.NumberOfPatientRelatedSeries) == sum(int(x.NumberOfStudyRelatedSeries) for x in ct_studies)
    assert int(ct_patient.NumberOfPatientRelatedInstances) == sum(
        int(x.NumberOfStudyRelatedInstances) for x in ct_studies
    ) >= 6
    # the Study Root model has no PATIENT level (PS3.4 C.6.2): refused, not answered as Patient Root
    out = tmp_path / "study-root-patient"
    out.mkdir()
    r = _run([*base, "-v", "-S", "-od", str(out), "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID",
              "127.0.0.1", str(qr.port)])  # fmt: skip
    assert "DataSetDoesNotMatchSOPClass" in r.stderr + r.stdout  # 0xA900 and _responses(out) == [], r.stderr[-2000:]
    out = tmp_path / "bad"
    out.mkdir()
    r = _run([*base, "-v", "-S", "-od", str(out), "-k", "QueryRetrieveLevel=FRAME", "127.0.0.1", str(qr.port)])
    assert "Final Find Response (Failed: UnableToProcess)" in r.stderr + r.stdout and _responses(out) == []


def test_c_get_as_stored_and_as_diagnostic_jpeg(qr: SimpleNamespace, tmp_path: Path) -> None:
    """DCMTK's getscu proposes uncompressed first: the original values come back. A requestor that
    accepts only JPEG lossy gets the diagnostic rendition (lossy flag set, close to the original);
    the colour image it cannot take as 12-bit JPEG is a failed sub-operation, listed."""
    getscu = require_tool("getscu")
    out = tmp_path / "get"
    out.mkdir()
    r = _run([getscu, "-S", "-aec", "MEDQR", "-od", str(out), "-k", "QueryRetrieveLevel=SERIES",
              "-k", f"StudyInstanceUID={qr.ct.StudyInstanceUID}", "-k", f"SeriesInstanceUID={qr.ct.SeriesInstanceUID}",
              "127.0.0.1", str(qr.port)])  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = {str(d.SOPInstanceUID): d for d in (pydicom.dcmread(p) for p in out.iterdir())}
    assert len(got) == 6
    for path in qr.chest:
        src = pydicom.dcmread(path)
        back = got[str(src.SOPInstanceUID)]
        assert np.array_equal(back.pixel_array, src.pixel_array) and back.PatientName == src.PatientName

    from pydicom.multival import MultiValue
    from pynetdicom import AE, build_role, evt
    from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelGet, UltrasoundImageStorage

    received: list[pydicom.Dataset] = []

    def on_store(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append(ds)
        return 0x0000

    ae = AE(ae_title="JPEGONLY")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage, [JPEG_12])
    # a syntax the colour ultrasound cannot take (JPEG-LS near-lossless codes grayscale only; it was
    # .51 until 8-bit images were answered as .51 too, 2026-12-02): its sub-operation fails, said so
    ae.add_requested_context(UltrasoundImageStorage, ["1.2.840.10008.1.2.4.81"])
    roles = [build_role(CTImageStorage, scp_role=True), build_role(UltrasoundImageStorage, scp_role=True)]
    assoc = ae.associate("127.0.0.1", qr.port, ae_title="MEDQR", ext_neg=roles,
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    assert assoc.is_established
    try:
        query = pydicom.Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = str(qr.ct.StudyInstanceUID)
        statuses = [status for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet)]
        assert statuses[-1].Status == 0x0000 and int(statuses[-1].NumberOfCompletedSuboperations) == 6
        us = pydicom.dcmread(qr.us, stop_before_pixels=True)
        query.StudyInstanceUID = str(us.StudyInstanceUID)
        final, listed = list(assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet))[-1]
        assert final.Status in (0xA702, 0xB000) and int(final.NumberOfFailedSuboperations) == 1, final
        assert str(us.SOPInstanceUID) in str(listed.FailedSOPInstanceUIDList)  # PS3.4 C.4.3.1.3.2
        two = pydicom.Dataset()  # a UID list (backslash-separated on the wire: a MultiValue in pydicom)
        two.QueryRetrieveLevel = "IMAGE"
        two.StudyInstanceUID, two.SeriesInstanceUID = str(qr.ct.StudyInstanceUID), str(qr.ct.SeriesInstanceUID)
        two.SOPInstanceUID = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in qr.chest[:2]]
        # IMAGE level names the instances: no lossy rendition stands in for them (PS3.4 C.4.2.3.1 Note 1;
        # until 2026-12-05 the two came as renditions with new UIDs): both fail, listed
        final, listed = list(assoc.send_c_get(two, StudyRootQueryRetrieveInformationModelGet))[-1]
        assert final.Status == 0xA702 and int(final.NumberOfFailedSuboperations) == 2, final
        failed = listed.FailedSOPInstanceUIDList
        assert set(two.SOPInstanceUID) <= set(failed if isinstance(failed, (list, MultiValue)) else [str(failed)])
        assert len(received) == 6
        query.StudyInstanceUID = "1.*"  # a retrieve takes unique keys: refused, nothing sent
        final = [status for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet)][-1]
        assert final.Status == 0xC000
    finally:
        assoc.release()
    assert len(received) == 6
    for ds in received:
        assert ds.file_meta.TransferSyntaxUID == JPEG_12 and ds.LossyImageCompression == "01"
        src = pydicom.dcmread(next(p for p in qr.chest if pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID
                                   in [s.ReferencedSOPInstanceUID for s in ds.SourceImageSequence]))  # fmt: skip
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        hu0 = src.pixel_array * float(src.RescaleSlope) + float(src.RescaleIntercept)
        assert 0 < np.abs(hu - hu0).max() < 400  # lossy, at the diagnostic point


def _wait_port(port: int, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def test_c_move_to_a_known_peer_negotiates_jpeg_and_refuses_strangers(qr: SimpleNamespace, tmp_path: Path) -> None:
    """storescp preferring JPEG lossy 12-bit (``+xx``) as the destination gets the diagnostic
    rendition; an AE title that is not a ``--dimse-peer`` is refused (0xA801) and nothing is sent."""
    movescu = require_tool("movescu")
    with _destination(qr, tmp_path, "+xx") as inbox:
        r = _run([movescu, "-S", "-aec", "MEDQR", "-aem", "DEST", "-k", "QueryRetrieveLevel=STUDY",
                  "-k", f"StudyInstanceUID={qr.ct.StudyInstanceUID}", "127.0.0.1", str(qr.port)])  # fmt: skip
        assert r.returncode == 0, r.stderr
        files = list(inbox.iterdir())
        assert len(files) == 6
        for path in files:
            ds = pydicom.dcmread(path)
            assert ds.file_meta.TransferSyntaxUID == JPEG_12 and ds.LossyImageCompression == "01"
            assert ds.pixel_array.shape == (512, 512)
        r = _run([movescu, "-S", "-aec", "MEDQR", "-aem", "STRANGER", "-k", "QueryRetrieveLevel=STUDY",
                  "-k", f"StudyInstanceUID={qr.ct.StudyInstanceUID}", "127.0.0.1", str(qr.port)])  # fmt: skip
        assert r.returncode != 0 and "movedestinationunknown" in (r.stderr + r.stdout).lower(), r.stderr
        r = _run([movescu, "-S", "-aec", "MEDQR", "-aem", "DEST", "-k", "QueryRetrieveLevel=SERIES",
                  "-k", f"StudyInstanceUID={qr.ct.StudyInstanceUID}", "127.0.0.1", str(qr.port)])  # fmt: skip
        assert "UnableToProcess" in r.stderr + r.stdout, r.stderr  # a SERIES move without its Series UID
        assert len(list(inbox.iterdir())) == 6


@contextlib.contextmanager
def _destination(qr: SimpleNamespace, tmp_path: Path, *options: str) -> Iterator[Path]:
    """DCMTK's storescp as the C-MOVE peer ``DEST`` (``options``: its syntax preferences) on the port
    the server knows; yields the folder it writes what it receives into, stopped after."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    dest = subprocess.Popen([require_tool("storescp"), *options, "-aet", "DEST", "-od", str(inbox), str(qr.dest_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_port(qr.dest_port)
        yield inbox
    finally:
        dest.terminate()
        dest.wait(10)


def test_off_loopback_only_peers_may_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """The access rule of :mod:`medcodec.service.dimse_qr`: everyone on a loopback SCP; off loopback
    only a ``--dimse-peer`` AE title calling from its own address."""
    from medcodec.service.dimse_qr import _QR

    def caller(ae: str, address: str) -> SimpleNamespace:
        return SimpleNamespace(requestor=SimpleNamespace(ae_title=ae, address=address))

    local = _QR(None, ae_title="X", peers={}, open_to_all=True)
    assert local.allowed(caller("ANYONE", "127.0.0.1"))
    shared = _QR(None, ae_title="X", peers={"WS1": ("127.0.0.5", 104)}, open_to_all=False)
    assert shared.allowed(caller("WS1", "127.0.0.5"))
    assert not shared.allowed(caller("WS1", "127.0.0.6"))  # the right name from the wrong machine
    assert not shared.allowed(caller("WS2", "127.0.0.5"))


def test_serve_refuses_a_malformed_peer(tmp_path: Path) -> None:
    import sys

    r = _run([sys.executable, "-m", "medcodec.cli.main", "serve", "--store", str(tmp_path / "s"),
              "--dimse-port", "11999", "--dimse-peer", "NOPORT=127.0.0.1"])  # fmt: skip
    assert r.returncode == 2 and "AE=HOST:PORT" in r.stderr and "Traceback" not in r.stderr
    from medcodec.errors import InvalidInputError
    from medcodec.service.settings import Settings

    for peer in (("A" * 17, "h", 104), ("WS", "h", 0), ("BAD\\AE", "h", 104), ("WS", "", 104)):
        with pytest.raises(InvalidInputError):
            Settings(store="x", dimse_port=11112, dimse_peers=(peer,))
    assert Settings(store="x", dimse_peers=(("WS", "10.0.0.5", 104),)).dimse_peers[0][2] == 104


def test_retrieves_name_their_patients_and_instances_and_never_hang(qr: SimpleNamespace, tmp_path: Path) -> None:
    """An outside audit (2026-12-05): a SERIES C-MOVE without its Study Instance UID killed the
    association's thread (movescu waited forever); PATIENT level merged studies without a Patient ID,
    and two issuers' patients of one ID, into one patient (and a C-GET of one delivered both); an
    IMAGE-level C-MOVE to a destination preferring JPEG delivered a lossy copy with new UIDs."""
    from pydicom.uid import generate_uid
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage

    findscu, movescu = require_tool("findscu"), require_tool("movescu")
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", qr.port, ae_title="MEDQR")
    assert assoc.is_established
    made = {}
    try:
        for pid, issuer, name in (("", "", "Nobody^One"), ("", "", "Nobody^Two"), ("DUP1", "HOSP_A", "Alpha^Anna"),
                                  ("DUP1", "HOSP_B", "Beta^Bernd")):  # fmt: skip
            ds = pydicom.dcmread(qr.chest[0])
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientID, ds.IssuerOfPatientID, ds.PatientName = pid, issuer, name
            assert assoc.send_c_store(ds).Status == 0
            made[name] = str(ds.StudyInstanceUID)
    finally:
        assoc.release()
    out = tmp_path / "patients"
    out.mkdir()
    r = _run([findscu, "-aec", "MEDQR", "-X", "-P", "-od", str(out), "-k", "QueryRetrieveLevel=PATIENT", "-k",
              "PatientID", "-k", "IssuerOfPatientID", "-k", "PatientName", "-k", "NumberOfPatientRelatedStudies",
              "127.0.0.1", str(qr.port)])  # fmt: skip
    assert r.returncode == 0, r.stderr
    names = sorted(str(p.PatientName) for p in _responses(out))
    assert {"Nobody^One", "Nobody^Two", "Alpha^Anna", "Beta^Bernd"} <= set(names), names
    assert all(int(p.NumberOfPatientRelatedStudies) == 1 for p in _responses(out) if str(p.PatientID) == "DUP1")
    # a C-GET at PATIENT level with the issuer: that patient's study only
    from pynetdicom import build_role
    from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelGet

    getter = AE(ae_title="GETTER")
    getter.add_requested_context(PatientRootQueryRetrieveInformationModelGet)
    getter.add_requested_context(CTImageStorage, [EXPLICIT])
    got: list[str] = []

    def on_store(event: Any) -> int:
        got.append(str(event.dataset.StudyInstanceUID))
        return 0

    from pynetdicom import evt

    assoc = getter.associate("127.0.0.1", qr.port, ae_title="MEDQR", ext_neg=[build_role(CTImageStorage, scp_role=True)],
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    try:
        query = pydicom.Dataset()
        query.QueryRetrieveLevel, query.PatientID, query.IssuerOfPatientID = "PATIENT", "DUP1", "HOSP_A"
        statuses = [s.Status for s, _ in assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet)]
    finally:
        assoc.release()
    assert statuses[-1] == 0 and got == [made["Alpha^Anna"]], (statuses, got)
    # the same retrieve under Study Root, as Orthanc 1.10 sends every C-MOVE (each failed 0xA900
    # until an outside audit, 2026-12-05): taken as Patient Root takes it
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

    getter.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    assoc = getter.associate("127.0.0.1", qr.port, ae_title="MEDQR", ext_neg=[build_role(CTImageStorage, scp_role=True)],
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    try:
        got.clear()
        statuses = [s.Status for s, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet)]
    finally:
        assoc.release()
    assert statuses[-1] == 0 and got == [made["Alpha^Anna"]], (statuses, got)
    # below PATIENT level the patient keys of a Patient Root request name the study's patient too
    assoc = getter.associate("127.0.0.1", qr.port, ae_title="MEDQR", ext_neg=[build_role(CTImageStorage, scp_role=True)],
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    try:
        got.clear()
        query = pydicom.Dataset()
        query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", made["Alpha^Anna"]
        query.PatientID, query.IssuerOfPatientID = "DUP1", "HOSP_B"  # Beta's issuer: not this study's patient
        final = [s for s, _ in assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet)][-1]
        assert final.Status == 0 and got == [], (final, got)
        query.IssuerOfPatientID = "HOSP_A"
        final = [s for s, _ in assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet)][-1]
        assert final.Status == 0 and got == [made["Alpha^Anna"]], (final, got)
    finally:
        assoc.release()
    out = tmp_path / "issuer-studies"
    out.mkdir()
    r = _run([findscu, "-aec", "MEDQR", "-X", "-P", "-od", str(out), "-k", "QueryRetrieveLevel=STUDY", "-k",
              "PatientID=DUP1", "-k", "IssuerOfPatientID=HOSP_B", "-k", "StudyInstanceUID", "127.0.0.1", str(qr.port)])  # fmt: skip
    assert r.returncode == 0 and [str(d.StudyInstanceUID) for d in _responses(out)] == [made["Beta^Bernd"]], r.stderr
    with _destination(qr, tmp_path, "+xx") as inbox:
        t0 = time.monotonic()
        r = _run([movescu, "-S", "-aec", "MEDQR", "-aem", "DEST", "-k", "QueryRetrieveLevel=SERIES",
                  "-k", f"SeriesInstanceUID={qr.ct.SeriesInstanceUID}", "127.0.0.1", str(qr.port)], timeout=60)  # fmt: skip
        assert "UnableToProcess" in r.stderr + r.stdout and time.monotonic() - t0 < 30, r.stderr
        assert list(inbox.iterdir()) == []
        r = _run([movescu, "-S", "-aec", "MEDQR", "-aem", "DEST", "-k", "QueryRetrieveLevel=IMAGE",
                  "-k", f"StudyInstanceUID={qr.ct.StudyInstanceUID}", "-k", f"SeriesInstanceUID={qr.ct.SeriesInstanceUID}",
                  "-k", f"SOPInstanceUID={qr.ct.SOPInstanceUID}", "127.0.0.1", str(qr.port)])  # fmt: skip
        assert r.returncode == 0, r.stderr
        (path,) = list(inbox.iterdir())
        ds = pydicom.dcmread(path)
        original = pydicom.dcmread(qr.chest[0])
        assert ds.SOPInstanceUID == qr.ct.SOPInstanceUID and ds.get("LossyImageCompression", "00") != "01"
        assert np.array_equal(ds.pixel_array, original.pixel_array)  # the instance itself, not a rendition


def test_a_move_stops_when_its_destination_goes(qr: SimpleNamespace) -> None:
    """A destination that aborts the association mid-way (a PACS restarted, a stopped process timed
    out): pynetdicom's C-MOVE SCP went on through every instance left, each read and transcoded for
    nothing and answered pending (an outside audit's 140-instance C-MOVE, 2026-12-05). Now the move
    stops at once: 0xA702 with an Error Comment, the instances not stored listed as failed."""
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import CTImageStorage

    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(str(event.request.AffectedSOPInstanceUID))
        if len(received) == 2:  # the second instance: the destination goes away before answering
            event.assoc.abort()
        return 0

    dest = AE(ae_title="DEST")
    dest.add_supported_context(CTImageStorage, [EXPLICIT, "1.2.840.10008.1.2"])
    scp = dest.start_server(("127.0.0.1", qr.dest_port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        (answers,) = _move_study(qr, ["DEST"])
    finally:
        scp.shutdown()
    final, failures = answers[-1]
    assert len(received) == 2 and final.Status == 0xA702, (received, final)
    assert str(final.ErrorComment) == "DEST association ended, 4 not sent", final  # whole: within 64 characters
    assert final.NumberOfCompletedSuboperations == 1 and final.NumberOfFailedSuboperations == 5, final
    assert "NumberOfRemainingSuboperations" not in final, final  # PS3.4 C.4.2.1.6: not in a failure
    listed = list(failures.FailedSOPInstanceUIDList)
    assert len(listed) == 5 and received[0] not in listed and received[1] in listed, listed
    assert len(answers) == 3, [int(s.Status) for s, _ in answers]  # pending for the two sent, then final
    _wait_for(lambda: "stopped after 2 of 6" in qr.log.read_text(), qr.log)
    assert "Traceback" not in qr.log.read_text()


@pytest.mark.parametrize("kept", [True, False])
def test_a_response_the_reactor_takes_goes_back_to_the_sender(shared_data: Path, kept: bool) -> None:
    """pynetdicom 3.0's reactor can read a C-STORE response meant for the ``send_c_store`` waiting for
    it (a race in its pause handshake) and drop it: a C-MOVE stalled 30 s and failed 55 of 64 instances
    once in an outside audit's soak (2026-12-05). Here the race is made certain (the reactor is never
    paused, the sender slow to read): with :func:`keep_responses` every instance is answered; without
    it (``kept=False``, the control) the responses are lost."""
    import threading

    from pynetdicom import AE, evt
    from pynetdicom.sop_class import CTImageStorage

    from medcodec.service.dimse_qr import keep_responses
    from medcodec.testing.server import free_port

    class NeverPaused(threading.Event):
        """The reactor's checkpoint, never closed: the window of the race held open."""

        def clear(self) -> None:
            pass

        def wait(self, timeout: float | None = None) -> bool:
            time.sleep(0.002)  # "paused" long enough for the sender to see it, then on to read the queue
            return True

    port = free_port()  # pynetdicom on both sides: no medcodec server needed
    dest = AE(ae_title="DEST")
    dest.add_supported_context(CTImageStorage)
    scp = dest.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, lambda e: 0)])
    try:
        sender = AE(ae_title="SENDER")
        sender.dimse_timeout = 2
        sender.add_requested_context(CTImageStorage)
        assoc = sender.associate("127.0.0.1", port, ae_title="DEST")
        assert assoc.is_established
        checkpoint = NeverPaused()
        checkpoint.set()
        assoc._reactor_checkpoint = checkpoint
        get_msg = assoc.dimse.get_msg

        def slow_reader(block: bool = False) -> Any:
            if block:
                time.sleep(0.02)  # the reactor reads first
            return get_msg(block)

        assoc.dimse.get_msg = slow_reader
        if kept:
            keep_responses(assoc)
        ds = pydicom.dcmread(sorted((shared_data / CHEST).glob("*.dcm"))[0])
        statuses = []
        try:
            for _ in range(3):
                status = assoc.send_c_store(ds)
                statuses.append(int(status.Status) if "Status" in status else None)
                if not assoc.is_established:
                    break
        finally:
            assoc.release() if assoc.is_established else assoc.abort()
    finally:
        scp.shutdown()
    if kept:
        assert statuses == [0, 0, 0], statuses
    else:
        # a response lost: timed out, aborted (on a loaded machine the sender may win a round first: [0, None])
        assert statuses[-1] is None and len(statuses) < 3, statuses


def test_connections_that_end_before_an_association_free_their_slot(qr: SimpleNamespace) -> None:
    """pynetdicom waited the whole ACSE timeout (30 s) for the A-ASSOCIATE-RQ of a connection its peer
    had closed, or whose request its DUL could not read, and each wait held one of the SCP's 32
    association slots: 32 such connections (a port scan, a TCP health check) refused every sender
    for 30 s (an outside audit, 2026-12-05). Now the slot is free when the connection ends."""
    import struct

    from pynetdicom import AE

    def item(kind: int, data: bytes) -> bytes:
        return struct.pack(">BBH", kind, 0, len(data)) + data

    def association_request(calling: bytes) -> bytes:  # PS3.8 9.3.2, a Verification context
        context = item(0x20, bytes([1, 0, 0, 0]) + item(0x30, b"1.2.840.10008.1.1") + item(0x40, b"1.2.840.10008.1.2"))
        user = item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4"))
        body = (struct.pack(">HH", 1, 0) + b"MEDQR".ljust(16) + calling.ljust(16)[:16] + bytes(32)
                + item(0x10, b"1.2.840.10008.3.1.1.1") + context + user)  # fmt: skip
        return struct.pack(">BBI", 1, 0, len(body)) + body

    for payload in (b"", b"GET / HTTP/1.1\r\n\r\n", association_request(b" " * 16)):
        for _ in range(40):
            t0 = time.monotonic()
            with socket.create_connection(("127.0.0.1", qr.port), timeout=5) as conn:
                # a burst is queued by the kernel (socketserver's backlog of 5 made one connection in
                # seven wait a second for its SYN to be sent again: an outside re-check)
                assert time.monotonic() - t0 < 0.5
                conn.sendall(payload)
        time.sleep(0.5)
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", qr.port, ae_title="MEDQR")
        try:
            assert assoc.is_established, (payload[:20], qr.log.read_text()[-2000:])
            assert assoc.send_c_echo().Status == 0
        finally:
            assoc.release()
    assert "Traceback" not in qr.log.read_text(), qr.log.read_text()[-3000:]


def test_a_c_store_of_no_storage_class_is_refused_and_the_association_kept(qr: SimpleNamespace) -> None:
    """DCMTK's dcmsend read a file's UIDs as UN and sent Affected SOP Class UID '31' on a CT context:
    pynetdicom found no service for it and aborted the association, so the rest of the sender's
    folder never went (an outside audit, 2026-12-05). Now that one C-STORE is refused 0x0122 with a
    comment, the next one on the same association is stored, and the association's line counts it."""
    from io import BytesIO

    from pynetdicom import AE
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.sop_class import CTImageStorage

    ae = AE(ae_title="SENDER")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", qr.port, ae_title="MEDQR")
    assert assoc.is_established
    try:
        ds = pydicom.dcmread(qr.chest[1])
        (context,) = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == CTImageStorage]
        request = C_STORE()
        request.MessageID, request.AffectedSOPClassUID = 7, "31"
        request.AffectedSOPInstanceUID, request.Priority = str(ds.SOPInstanceUID), 2
        from pynetdicom.dsutils import encode

        request.DataSet = BytesIO(encode(ds, context.transfer_syntax[0].is_implicit_VR, True))
        assoc._reactor_checkpoint.clear()
        while not assoc._is_paused:
            time.sleep(0.001)
        assoc.dimse.send_msg(request, context.context_id)
        _, response = assoc.dimse.get_msg(block=True)
        assoc._reactor_checkpoint.set()
        assert response is not None and response.Status == 0x0122, response
        assert "not a storage SOP class" in str(response.ErrorComment)
        assert assoc.is_established and assoc.send_c_store(ds).Status == 0  # the association goes on
    finally:
        assoc.release()
    assert "Traceback" not in qr.log.read_text()


def test_a_known_destination_that_is_down_is_not_called_unknown(qr: SimpleNamespace) -> None:
    """pynetdicom answers 0xA801 "Move Destination unknown" when it cannot associate with the
    destination: for a configured peer that is down, operators went looking at the AE configuration
    (an outside audit, 2026-12-05). A known peer that cannot be reached is 0xA702 with a comment; an
    unknown AE title stays 0xA801."""

    finals = [answers[-1][0] for answers in _move_study(qr, ["DEST", "STRANGER", "DEST"])]  # nothing on DEST's port
    assert [int(f.Status) for f in finals] == [0xA702, 0xA801, 0xA702], finals
    assert f"DEST at 127.0.0.1:{qr.dest_port} could not be reached" in str(finals[0].ErrorComment), finals[0]
    # the refused connection: medcodec's WARNING naming the peer, pynetdicom's transport lines not as errors
    _wait_for(lambda: "the destination DEST at" in qr.log.read_text(), qr.log)
    assert "ERROR pynetdicom.transport" not in qr.log.read_text(), qr.log.read_text()[-2000:]


def _move_study(qr: SimpleNamespace, destinations: list[str]) -> list[list[tuple[Any, Any]]]:
    """The (status, identifier) answers of a C-MOVE of the chest study to each of ``destinations``, in
    turn on one association (pynetdicom's SCU)."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

    mover = AE(ae_title="MOVER")
    mover.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = mover.associate("127.0.0.1", qr.port, ae_title="MEDQR")
    assert assoc.is_established
    try:
        query = Dataset()
        query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", str(qr.ct.StudyInstanceUID)
        return [[(s, i) for s, i in assoc.send_c_move(query, to, StudyRootQueryRetrieveInformationModelMove) if s]
                for to in destinations]  # fmt: skip
    finally:
        assoc.release()


def _wait_for(condition: Any, log: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)


def test_hostile_and_unusual_queries_and_retrieves(qr: SimpleNamespace) -> None:
    """An outside audit, 2026-12-05: a Study Instance UID listed three times in a C-GET sent each
    instance three times (200 times: 1.8 GB); matching keys the catalog does not hold were ignored
    yet answered 0xFF00, as if matched; a PATIENT-level query with a study key counted the matching
    studies only and answered one study's attributes as the patient's; an identifier nested
    thousands deep, or a 60,000-character name, got pynetdicom's generic failure and a traceback
    (the first: tests/service/test_dimse_qr.py::test_an_identifier_that_cannot_be_read_is_refused)."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE, build_role
    from pynetdicom.sop_class import (
        CTImageStorage,
        PatientRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelGet,
    )

    ae = AE(ae_title="AUDITOR")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(str(event.request.AffectedSOPInstanceUID))
        return 0

    from pynetdicom import evt

    assoc = ae.associate("127.0.0.1", qr.port, ae_title="MEDQR", ext_neg=[build_role(CTImageStorage, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    assert assoc.is_established
    try:
        study = str(qr.ct.StudyInstanceUID)
        get = Dataset()
        get.QueryRetrieveLevel, get.StudyInstanceUID = "STUDY", "\\".join([study] * 3)
        statuses = [s.Status for s, _ in assoc.send_c_get(get, StudyRootQueryRetrieveInformationModelGet) if s]
        assert statuses[-1] == 0 and sorted(received) == sorted(set(received)) and len(received) == 6

        def find(ds: Dataset, model: Any = StudyRootQueryRetrieveInformationModelFind) -> list[tuple[int, Any]]:
            return [(int(s.Status), i) for s, i in assoc.send_c_find(ds, model) if s]

        rows = Dataset()
        rows.QueryRetrieveLevel, rows.StudyInstanceUID, rows.SOPInstanceUID, rows.Rows = "IMAGE", study, "", 256
        answers = find(rows)
        assert {s for s, _ in answers[:-1]} == {0xFF01} and answers[-1][0] == 0  # not matched on Rows: said

        patient = Dataset()
        patient.QueryRetrieveLevel, patient.PatientID = "PATIENT", str(qr.ct.PatientID)
        patient.NumberOfPatientRelatedInstances, patient.StudyDescription = "", ""
        (plain,) = [i for s, i in find(patient, PatientRootQueryRetrieveInformationModelFind) if s == 0xFF00]
        patient.StudyDate = "19000101"  # a study's key: not how a patient is matched
        answers = find(patient, PatientRootQueryRetrieveInformationModelFind)
        (keyed,) = [i for s, i in answers if s in (0xFF00, 0xFF01)]
        assert answers[0][0] == 0xFF01 and int(keyed.NumberOfPatientRelatedInstances) == 6 == int(
            plain.NumberOfPatientRelatedInstances)  # fmt: skip
        assert not keyed.StudyDescription  # a study's attribute is not the patient's

        long_name = Dataset()
        long_name.QueryRetrieveLevel, long_name.PatientName = "STUDY", "A" * 60_000 + "*"
        (final,) = [s for s, _ in assoc.send_c_find(long_name, StudyRootQueryRetrieveInformationModelFind) if s]
        assert final.Status == 0xC000 and "characters" in str(final.get("ErrorComment", "")), final
    finally:
        assoc.release()
    log = qr.log.read_text()
    assert "Traceback" not in log and "too complex" not in log, log[-2000:]


def test_an_identifier_that_cannot_be_read_is_refused() -> None:
    """pynetdicom decodes an identifier when the handler first reads it: nested thousands deep it raised
    RecursionError (an unterminated sequence, OSError) inside the handler: a generic failure status
    and 180 KB of traceback a request. The handlers read it whole first and refuse it with a comment."""
    from medcodec.errors import InvalidInputError
    from medcodec.service.dimse_qr import _identifier

    class Deep:
        @property
        def identifier(self) -> Any:
            raise RecursionError("maximum recursion depth exceeded")

    with pytest.raises(InvalidInputError, match="cannot be read \\(RecursionError\\)"):
        _identifier(Deep())


def test_dcmtk_getscu_releases_after_a_refused_c_get(tmp_path: Path, spawn_server: Any) -> None:
    """A refused C-GET (a wildcard UID: 0xC000) ends with a final response without an empty Failed
    SOP Instance UID List and with no failed sub-operation: pynetdicom added the list to every such
    response and counted one failed, and DCMTK's getscu, which does not read the list, found its
    P-DATA at the release and aborted (an outside check of the conformance statement, 2026-12-05)."""
    from medcodec.testing.tools import require_tool

    port = spawn_server.free_port()
    spawn_server(tmp_path / "store", extra=["--dimse-port", str(port)])
    got = subprocess.run([require_tool("getscu"), "-v", "-aec", "MEDCODEC", "-od", str(tmp_path), "-S",
                          "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.*", "127.0.0.1", str(port)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    text = got.stdout + got.stderr
    assert "Aborting Association" not in text and "Release Failed" not in text, text
    assert "Releasing Association" in text, text
