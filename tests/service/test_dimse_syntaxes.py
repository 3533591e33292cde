"""Transfer syntaxes of what C-GET and C-MOVE send, against ``medcodec serve --dimse-port`` (a
uvicorn subprocess), with DCMTK's getscu and storescp and pynetdicom's SCU.

One study holds the same kind of mix a PACS does: the MR series in nine syntaxes (Explicit and
Implicit VR Little Endian, Explicit VR Big Endian, JPEG lossless, JPEG-LS, JPEG 2000, RLE), a
JPEG 2000 lossy MR, a 12-bit JPEG secondary capture, a CT and an RGB ultrasound. Every instance
must arrive, whatever the peer accepts, as long as it accepts an uncompressed syntax: Implicit
VR Little Endian only (the DICOM default), everything (a PACS), JPEG preferred.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pydicom
import pytest

from conftest import free_port, start_server, stop_server  # tests/service/conftest.py
from medcodec.testing.tools import require_tool

pytestmark = pytest.mark.realdata

STUDY = "1.2.826.0.1.3680043.8.498.7740133101"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
JPEG_8 = "1.2.840.10008.1.2.4.50"
JPEG_12 = "1.2.840.10008.1.2.4.51"
MR_SYNTAXES = ("explicit_le", "explicit_be", "implicit_le", "j2k_lossless_gdcm", "jpeg_lossless_sv1_dcmtk",
               "jpegls_lossless_dcmtk", "rle")  # fmt: skip
SINGLES = ("mr_MR2_1024x1024_12bit_j2k_lossy", "nm_NM1_1024x256_12bit_jpeg_extended",
           "ct_CT1_small_128x128_signed16", "us_US1_480x640_rgb_uncompressed")  # fmt: skip
PEERS = ("DESTI", "DESTALL", "DESTJ", "NOBODY")
MR, SC, CT, US = ("1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.2",
                  "1.2.840.10008.5.1.4.1.1.6.1")  # fmt: skip


@pytest.fixture(scope="module")
def mixed(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The mixed study (11 instances, 4 SOP classes, 11 syntaxes) served with DIMSE; C-MOVE peers
    :data:`PEERS` on free ports (nothing listens until a test starts a storescp there)."""
    from medcodec.delivery import open_store

    root = tmp_path_factory.mktemp("mixed")
    sources = [shared_data / "transfer_syntaxes_mr" / f"mr_384x384_{name}.dcm" for name in MR_SYNTAXES]
    sources += [shared_data / "singles" / f"{name}.dcm" for name in SINGLES]
    files = []
    for i, path in enumerate(sources):  # one study, as a PACS would hold it; each file in its own syntax
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = STUDY
        ds.PatientID, ds.PatientName = "MIXED", "Mixed^Syntaxes"
        out = root / f"{i:02d}_{path.name}"
        ds.save_as(out, enforce_file_format=True)
        files.append(out)
    with open_store(root / "store") as store:
        report = store.ingest(files, precompress=False)
        assert report.ok and len(report.stored) == len(files), report.summary()
    dimse = free_port()
    ports = {ae: free_port() for ae in PEERS}
    peers = [arg for ae, port in ports.items() for arg in ("--dimse-peer", f"{ae}=127.0.0.1:{port}")]
    proc, url, log = start_server(root / "store", extra=["--dimse-port", str(dimse), "--ae-title", "MEDQR", *peers])
    originals = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in files}
    try:
        yield SimpleNamespace(port=dimse, ports=ports, url=url, log=log, originals=originals, root=root)
    finally:
        stop_server(proc)


def _run(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, errors="replace")


def _wait_port(port: int, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def _storescp(ae: str, port: int, folder: Path, *options: str) -> Iterator[Path]:
    """DCMTK's storescp as the C-MOVE destination ``ae`` on ``port``, writing into ``folder``."""
    storescp = require_tool("storescp")
    folder.mkdir(parents=True)
    proc = subprocess.Popen([storescp, *options, "-aet", ae, "-od", str(folder), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_port(port)
        yield folder
    finally:
        proc.terminate()
        proc.wait(10)


def _query(level: str = "STUDY", **keys: Any) -> pydicom.Dataset:
    query = pydicom.Dataset()
    query.QueryRetrieveLevel = level
    query.StudyInstanceUID = STUDY
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


def _check_received(mixed: SimpleNamespace, received: list[Path] | list[pydicom.Dataset],
                    syntaxes: set[str] | None = None) -> dict[str, str]:  # fmt: skip
    """Every instance of the study arrived once (files or datasets), decodable, under its own SOP
    Instance UID (a lossy rendition: under its own, referencing the original's); uncompressed ones
    with the pixels of the stored original (decoded: the lossy originals' decoded values, bit for
    bit). Returns ``{original SOP Instance UID: transfer syntax}``."""
    got = {}
    for item in received:
        ds = pydicom.dcmread(item) if isinstance(item, Path) else item
        uid = str(ds.SOPInstanceUID)
        assert ds.file_meta.MediaStorageSOPInstanceUID == uid
        ts = str(ds.file_meta.TransferSyntaxUID)
        if uid not in mixed.originals:  # the diagnostic JPEG of an instance stored lossless: derived
            assert ts in (JPEG_8, JPEG_12) and ds.LossyImageCompression == "01", (uid, ts)
            sources = {str(item.ReferencedSOPInstanceUID) for item in ds.SourceImageSequence}
            assert len(sources & set(mixed.originals)) == 1, sources
            uid = (sources & set(mixed.originals)).pop()
        assert uid in mixed.originals, f"SOP Instance UID {uid} was never stored"
        assert uid not in got, f"{uid} received twice"
        name = mixed.originals[uid].name
        assert syntaxes is None or ts in syntaxes, (name, ts)
        original = pydicom.dcmread(mixed.originals[uid])
        if ts in (IMPLICIT, EXPLICIT):  # uncompressed: bit-exact
            assert np.array_equal(ds.pixel_array, original.pixel_array), name
        else:
            assert ds.pixel_array.shape == original.pixel_array.shape, name
        got[uid] = ts
    assert set(got) == set(mixed.originals) and len(received) == len(got)
    return got


def _c_get(mixed: SimpleNamespace, proposals: list[tuple[str, list[str]]], query: pydicom.Dataset
           ) -> tuple[pydicom.Dataset, Any, list[pydicom.Dataset], list[Any]]:  # fmt: skip
    """A pynetdicom C-GET proposing ``(SOP class, syntaxes)`` storage contexts (a class twice: two
    contexts); returns the final status, its identifier, the datasets received and the accepted contexts."""
    from pynetdicom import AE, build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

    received: list[pydicom.Dataset] = []

    def on_store(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append(ds)
        return 0x0000

    ae = AE(ae_title="GETTER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    for sop_class, syntaxes in proposals:
        ae.add_requested_context(sop_class, syntaxes)
    roles = [build_role(cls, scp_role=True) for cls in dict.fromkeys(cls for cls, _ in proposals)]
    assoc = ae.associate("127.0.0.1", mixed.port, ae_title="MEDQR", ext_neg=roles,
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    assert assoc.is_established
    try:
        accepted = list(assoc.accepted_contexts)
        final, identifier = list(assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet))[-1]
    finally:
        assoc.release()
    return final, identifier, received, accepted


@pytest.mark.parametrize(("sop_class", "part"), [(CT, "_ct_"), (SC, "_nm_")], ids=["CT", "12-bit SC"])
def test_c_get_offered_8_bit_jpeg_first_takes_a_syntax_the_images_fit(mixed: SimpleNamespace, sop_class: str,
                                                                       part: str) -> None:  # fmt: skip
    """A context proposing ``{.50, .90}`` (8-bit JPEG first) is given JPEG 2000 lossless when none of
    its class's images fits in 8-bit JPEG: CT has 16 bits allocated; the store holds no Secondary
    Capture of 8 bits or fewer (the class allows them). Until 2026-12-06 the context got ``.50`` and
    the retrieve failed (outside audits: CT, then CR, DX and Enhanced MR)."""
    j2k_lossless = "1.2.840.10008.1.2.4.90"
    uid, path = next((uid, p) for uid, p in mixed.originals.items() if part in p.name)
    original = pydicom.dcmread(path)
    query = _query("IMAGE", SeriesInstanceUID=original.SeriesInstanceUID, SOPInstanceUID=uid)
    final, identifier, received, accepted = _c_get(mixed, [(sop_class, [JPEG_8, j2k_lossless])], query)
    assert [str(cx.transfer_syntax[0]) for cx in accepted if cx.abstract_syntax == sop_class] == [j2k_lossless]
    assert final.Status == 0x0000 and len(received) == 1, (final, identifier)
    assert str(received[0].file_meta.TransferSyntaxUID) == j2k_lossless
    assert np.array_equal(received[0].pixel_array, original.pixel_array)


def test_c_get_and_c_move_in_implicit_vr_little_endian_only(mixed: SimpleNamespace, tmp_path: Path) -> None:
    """A peer that takes Implicit VR Little Endian only (the DICOM default every AE supports) gets
    every instance, whatever its stored syntax: re-encoded, compressed pixels decompressed first.
    (The C-GET requestor is pynetdicom's: DCMTK 3.6.7's ``getscu +xi`` proposes Explicit VR LE.)"""
    movescu = require_tool("movescu")
    final, identifier, received, _ = _c_get(mixed, [(cls, [IMPLICIT]) for cls in (MR, SC, CT, US)], _query())
    assert final.Status == 0x0000, (final, identifier)
    _check_received(mixed, received, {IMPLICIT})
    with _storescp("DESTI", mixed.ports["DESTI"], tmp_path / "desti", "+xi") as inbox:
        r = _run([movescu, "-S", "-aec", "MEDQR", "-aem", "DESTI", "-k", "QueryRetrieveLevel=STUDY",
                  "-k", f"StudyInstanceUID={STUDY}", "127.0.0.1", str(mixed.port)])  # fmt: skip
        assert r.returncode == 0 and "Failed" not in r.stderr, r.stderr[-3000:]
        _check_received(mixed, sorted(inbox.iterdir()), {IMPLICIT})


def test_c_move_delivers_every_instance_to_an_accept_all_or_jpeg_destination(
    mixed: SimpleNamespace, tmp_path: Path
) -> None:
    """Each SOP class is proposed in several presentation contexts (the destination's choice among
    everything medcodec can make, the stored syntaxes, uncompressed): a destination accepting every
    syntax (``storescp +xa``, which picks JPEG 2000 lossy when offered) and one preferring 12-bit
    JPEG (``+xx``) get all eleven instances; what cannot go in the destination's pick goes as
    stored or uncompressed, and the 12-bit grayscale ones as JPEG for ``+xx``."""
    movescu = require_tool("movescu")
    for ae, option in (("DESTALL", "+xa"), ("DESTJ", "+xx")):
        with _storescp(ae, mixed.ports[ae], tmp_path / ae, option) as inbox:
            r = _run([movescu, "-v", "-S", "-aec", "MEDQR", "-aem", ae, "-k", "QueryRetrieveLevel=STUDY",
                      "-k", f"StudyInstanceUID={STUDY}", "127.0.0.1", str(mixed.port)])  # fmt: skip
            assert r.returncode == 0 and "Failed" not in r.stderr, (ae, r.stderr[-3000:])
            got = _check_received(mixed, sorted(inbox.iterdir()))
        if ae == "DESTJ":  # the colour ultrasound as 8-bit extended JPEG (uncompressed until 2026-12-02)
            us = next(uid for uid, p in mixed.originals.items() if "us_US1" in p.name)
            assert got[us] == JPEG_12
            mr = next(uid for uid, p in mixed.originals.items() if "explicit_le" in p.name)
            assert got[mr] == JPEG_12  # the destination prefers JPEG: the diagnostic rendition
        else:
            for uid, path in mixed.originals.items():  # as stored, or lossless
                assert got[uid] not in (JPEG_8, JPEG_12) or "jpeg_extended" in path.name, (path.name, got[uid])


def test_c_get_honours_the_requestors_syntax_order(mixed: SimpleNamespace) -> None:
    """A requestor offering {.51, .50} gets .51 (pynetdicom as acceptor would take the first of its
    own list, .50, and every 12-bit image would fail); a class proposed twice ({.81}, then Implicit
    VR LE) falls back to the second context for what cannot take the first (the colour ultrasound:
    near-lossless JPEG-LS codes grayscale only)."""
    near = "1.2.840.10008.1.2.4.81"
    proposals = [(MR, [JPEG_12, JPEG_8]), (SC, [JPEG_12, JPEG_8]), (CT, [JPEG_12, JPEG_8]),
                 (US, [near]), (US, [IMPLICIT])]  # fmt: skip
    final, identifier, received, accepted = _c_get(mixed, proposals, _query())
    chosen = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in accepted}
    assert {(MR, JPEG_12), (SC, JPEG_12), (CT, JPEG_12), (US, near), (US, IMPLICIT)} <= chosen
    assert final.Status == 0x0000, (final, identifier)
    assert int(final.NumberOfCompletedSuboperations) == len(mixed.originals)
    for uid, ts in _check_received(mixed, received).items():
        colour = "us_US1" in mixed.originals[uid].name
        assert ts == (IMPLICIT if colour else JPEG_12), mixed.originals[uid].name


@pytest.mark.parametrize("j2k", ["1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.70"])
def test_c_get_as_jpeg_2000_91_gets_the_lossless_codestream(mixed: SimpleNamespace, j2k: str) -> None:
    """A requestor that takes JPEG 2000 only as .91 (lossy or lossless, PS3.5 §A.4.4) gets every
    instance in it, the colour ultrasound too: the lossless codestream, bit-exact where the original
    is lossless (until 2026-12-02 medcodec could not make .91 and those sub-operations failed); the
    lossy originals stay labelled lossy. Likewise a requestor that takes JPEG Lossless .70 only, the
    lossless syntax most PACS take (decode only in medcodec until 2026-12-02)."""
    proposals = [(MR, [j2k]), (SC, [j2k]), (CT, [j2k]), (US, [j2k]), (US, [IMPLICIT])]
    final, identifier, received, _ = _c_get(mixed, proposals, _query())
    assert final.Status == 0x0000, (final, identifier)
    got = _check_received(mixed, received)
    by_uid = {str(ds.SOPInstanceUID): ds for ds in received}
    for uid, ts in got.items():
        name = mixed.originals[uid].name
        assert ts == j2k, (name, ts)
        original = pydicom.dcmread(mixed.originals[uid])
        lossy = original.get("LossyImageCompression", "00") == "01" or "lossy" in name or "extended" in name
        ds = by_uid.get(uid)
        if ts == j2k and ds is not None:  # same SOP Instance UID: coded losslessly, not a lossy rendition
            assert ds.get("LossyImageCompression", "00") == ("01" if lossy else "00"), name
            if not lossy:
                assert np.array_equal(ds.pixel_array, original.pixel_array), name


def test_a_patient_level_retrieve_under_study_root_is_taken_as_patient_root_takes_it(mixed: SimpleNamespace) -> None:
    """The Study Root model has no PATIENT level (PS3.4 C.6.2), and a C-FIND at that level under it
    is refused (it was answered as Patient Root before 2026-12-02). A retrieve names what to send,
    not what to answer: Orthanc 1.10 sends every C-MOVE under Study Root, a patient's too, and each
    failed 0xA900 (an outside audit, 2026-12-05). It sends the patient's instances now, as Patient
    Root would (here the MR instances the one context takes)."""
    final, _, received, _ = _c_get(mixed, [(MR, [EXPLICIT])], _query("PATIENT", PatientID="MIXED"))
    mrs = [p for p in mixed.originals.values() if str(pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID) == MR]
    assert final.Status in (0x0000, 0xB000) and len(received) == len(mrs) > 0, (final, len(received))
    assert {str(ds.PatientID) for ds in received} == {"MIXED"}
    _, _, none, _ = _c_get(mixed, [(MR, [EXPLICIT])], _query("PATIENT", PatientID="NOBODY"))
    assert none == []


def test_c_move_with_a_bad_identifier_fails_with_a_comment_and_calls_nobody(mixed: SimpleNamespace) -> None:
    """A wildcard UID or a SERIES move without its Series Instance UID: 0xC000 (unable to process)
    with an Error Comment, and no association to the destination (nothing to send)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

    calls = []
    with socket.socket() as listener:  # the destination: counts connections, answers none
        # the port was free when the fixture chose it; an earlier connection may have used it as its
        # source port since and left it in TIME_WAIT ("Address already in use", seen once in a full run)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", mixed.ports["NOBODY"]))
        listener.listen(4)
        listener.settimeout(0.2)
        ae = AE(ae_title="MOVER")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = ae.associate("127.0.0.1", mixed.port, ae_title="MEDQR")
        assert assoc.is_established
        try:
            for query in (_query(StudyInstanceUID="1.2.826.0.1.3680043.8.498.*"), _query("SERIES")):
                statuses = list(assoc.send_c_move(query, "NOBODY", StudyRootQueryRetrieveInformationModelMove))
                final = statuses[-1][0]
                assert len(statuses) == 1 and final.Status == 0xC000, statuses
                assert final.get("ErrorComment"), final
                try:
                    calls.append(listener.accept())
                except TimeoutError:
                    pass
        finally:
            assoc.release()
    assert calls == []
    log = mixed.log.read_text(errors="replace")
    assert "Traceback" not in log and "invalid destination" not in log, log[-3000:]


def test_which_syntax_a_context_gets() -> None:
    """:func:`requestor_order` (C-GET, the acceptor's list per context) and :func:`move_contexts`
    (C-MOVE, the proposal), without a network."""
    from medcodec.service.dimse_qr import MAX_CONTEXTS, move_contexts, requestor_order

    big, jls, j2k_lossy = "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.91"
    supported = [EXPLICIT, IMPLICIT, big, JPEG_8, JPEG_12, jls, j2k_lossy]
    makes = [EXPLICIT, IMPLICIT, jls, JPEG_8, JPEG_12]

    def accepted(proposed: list[str]) -> str:  # pynetdicom: the first of the acceptor's list proposed
        return next(ts for ts in requestor_order(proposed, supported, makes=makes) if ts in proposed)

    assert accepted([JPEG_12, JPEG_8]) == JPEG_12  # the requestor's order, not the acceptor's
    assert accepted([JPEG_8, JPEG_12]) == JPEG_8
    assert accepted([JPEG_12, EXPLICIT, big, IMPLICIT]) == EXPLICIT  # getscu +xx: uncompressed carries all
    assert accepted([big, EXPLICIT, IMPLICIT]) == EXPLICIT  # Big Endian: only instances stored so
    assert accepted([IMPLICIT, EXPLICIT]) == IMPLICIT
    assert accepted([j2k_lossy, jls]) == jls
    assert accepted([j2k_lossy]) == j2k_lossy  # what the requestor offers, though only some can take it
    assert accepted([JPEG_8, jls]) == JPEG_8  # a class that may hold 8-bit images

    def accepted_ct(proposed: list[str]) -> str:
        ordered = requestor_order(proposed, supported, makes=makes, sop_class=CT)
        return next(ts for ts in ordered if ts in proposed)

    assert accepted_ct([JPEG_8, jls]) == jls  # CT has 16 bits allocated: no image of it goes in 8-bit JPEG
    assert accepted_ct([JPEG_8, JPEG_12]) == JPEG_12
    assert accepted_ct([JPEG_8]) == JPEG_8  # offered alone: instances stored so can still go

    def accepted_us(proposed: list[str], narrow: set[str]) -> str:  # narrow: classes stored with <= 8 bits
        ordered = requestor_order(proposed, supported, makes=makes, sop_class=US, narrow=narrow)
        return next(ts for ts in ordered if ts in proposed)

    assert accepted_us([JPEG_8, JPEG_12], {US}) == JPEG_8  # 8-bit (colour) images stored: the requestor's order
    assert accepted_us([JPEG_8, JPEG_12], {CT}) == JPEG_12  # none stored: .51 carries them all

    contexts = move_contexts({MR: {jls, EXPLICIT, big}, US: {EXPLICIT}})
    assert [(cls, kind) for cls, _, kind in contexts] == [
        (MR, "uncompressed"), (US, "uncompressed"), (MR, "choice"), (US, "choice"), (MR, "stored"), (MR, "stored")
    ]  # fmt: skip
    assert contexts[0][1] == [EXPLICIT, IMPLICIT] and {big, jls, EXPLICIT, IMPLICIT} <= set(contexts[2][1])
    assert sorted(syntaxes[0] for _, syntaxes, kind in contexts if kind == "stored") == sorted([big, jls])
    many = move_contexts({f"1.2.3.{i}": {jls} for i in range(100)})
    assert len(many) == MAX_CONTEXTS and all(kind != "stored" for _, _, kind in many)
    assert sum(kind == "uncompressed" for _, _, kind in many) == 100  # every class keeps its fallback first
