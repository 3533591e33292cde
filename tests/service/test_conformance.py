"""docs/conformance.md (the DICOM Conformance Statement) against the code and a running server,
for what drifts unseen: the storage transfer syntaxes, the matching keys, the implementation
identity, Instance Availability in C-FIND, and the status of a C-STORE that fails inside medcodec."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelFind

from medcodec.delivery.catalog import QUERY_KEYS
from medcodec.service.dimse import implementation_identity, start_scp, storage_transfer_syntaxes

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


def _row(text: str, first_cell: str) -> str:
    (line,) = [x for x in text.splitlines() if x.startswith(f"| {first_cell} |")]
    return line


def test_the_statement_lists_the_storage_syntaxes_and_matching_keys_the_code_has() -> None:
    text = DOC.read_text()
    row = _row(text, "Storage (C-STORE in; C-GET out)")
    listed = set(re.findall(r"`(1\.2\.840\.10008\.[0-9.]+)`", row.split("|")[2]))
    assert listed == {str(uid) for uid in storage_transfer_syntaxes()}, listed ^ {str(u) for u in storage_transfer_syntaxes()}
    assert f"**{len(listed)} syntaxes**" in row
    section = text[text.index("**Matching keys**") : text.index("General rules:")]
    keys = {k.strip() for line in section.splitlines()[4:] if line.startswith("| ") for k in line.split("|")[1].split(",")}
    assert keys - {"IssuerOfPatientID"} == set(QUERY_KEYS), keys ^ set(QUERY_KEYS)


def test_the_scp_says_who_it_is_and_that_what_it_has_is_online(shared_data: Path, tmp_path: Path, spawn_server: Any) -> None:
    port = spawn_server.free_port()
    ct = get_testdata_file("CT_small.dcm")
    spawn_server(tmp_path / "store", extra=["--dimse-port", str(port), "--ae-title", "MEDCODEC"])
    ae = AE(ae_title="WS1")
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="MEDCODEC")
    assert assoc.is_established
    try:
        uid, name = implementation_identity()
        assert (assoc.acceptor.implementation_class_uid, assoc.acceptor.implementation_version_name) == (uid, name)
        assert assoc.send_c_store(pydicom.dcmread(ct)).Status == 0
        query = pydicom.Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = pydicom.dcmread(ct, stop_before_pixels=True).StudyInstanceUID
        query.InstanceAvailability = ""
        answers = [ds for status, ds in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
                   if status.Status in (0xFF00, 0xFF01)]  # fmt: skip
        assert [a.InstanceAvailability for a in answers] == ["ONLINE"]
    finally:
        assoc.release()
    text = DOC.read_text()
    assert "`MEDCODEC_<version>`" in text and "`2.25.`" in text


class _FailingStore:
    """A store whose ingest fails as a bug would (fault injection: what the sender is told)."""

    def ingest_bytes(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")


def test_a_c_store_that_fails_inside_medcodec_is_a_processing_failure_with_a_comment() -> None:
    scp = start_scp(_FailingStore(), port=0, ae_title="MEDCODEC")
    try:
        ae = AE(ae_title="WS1")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="MEDCODEC")
        assert assoc.is_established
        try:
            rsp = assoc.send_c_store(pydicom.dcmread(get_testdata_file("CT_small.dcm")))
        finally:
            assoc.release()
        assert rsp.Status == 0x0110 and "receiving system" in rsp.ErrorComment  # (0xC001, no comment, before)
        assert "| 0x0110 |" in DOC.read_text() and "| 0xC001 | Any other" not in DOC.read_text()
    finally:
        scp.stop(grace=1)


pytestmark = pytest.mark.realdata
