"""DICOM Query/Retrieve SCP (PS3.4 Annex C) over the store: C-FIND, C-GET and C-MOVE.

A workstation or PACS queries the catalog and pulls studies over DIMSE, the way it would from
any PACS; the transfer syntax of what it receives is negotiated, as WADO-RS negotiates it:

* **C-FIND**, Patient Root and Study Root, levels PATIENT / STUDY / SERIES / IMAGE. Matching is
  the catalog's QIDO-RS matching (PS3.4 C.2.2.2: single value, wildcards ``*`` ``?``, UID lists,
  date and time ranges) on the keys :data:`medcodec.delivery.catalog.QUERY_KEYS` lists; any other
  key in the identifier is a return key only (filled when the study, series or instance header
  has it, else empty), as PS3.4 C.2.2.1 lets an SCP treat optional keys.
* **C-GET** (Patient / Study Root): the instances go back as C-STORE sub-operations on the same
  association, each in the first transfer syntax the requestor accepted for its SOP class, by
  medcodec's preference: as stored, then uncompressed (Explicit, then Implicit VR Little
  Endian), then a lossless syntax the registry writes (JPEG-LS, JPEG 2000, RLE, HTJ2K lossless,
  bit-exact), and only then a lossy one (12-bit JPEG ``.51`` / ``.50``: the ``diagnostic``
  rendition, with its lossy attributes). A requestor that proposes only JPEG lossy for CT (DCMTK
  ``getscu +xx``) therefore gets the diagnostic JPEG; one that accepts uncompressed gets the
  original values.
* **C-MOVE** to a destination named by ``--dimse-peer AE=HOST:PORT``: a new association to it,
  each SOP class proposed with the same syntaxes in that order, the destination choosing; then
  the same choice per instance. An unknown destination is refused (0xA801).

Who may query and retrieve: any caller while the SCP listens on loopback (the machine's own
users, like the HTTP server without a token); off loopback only the AE titles of ``--dimse-peer``,
calling from their address (anything else gets 0xC001 "not an allowed peer" to C-FIND and C-GET,
0xA801 to C-MOVE: pynetdicom has no other refusal before the destination). C-STORE (in) is
:mod:`.dimse`'s and unchanged. Sub-operation failures (an instance that cannot be made in any
accepted syntax, a destination refusing one) are counted and reported in the final response, as
PS3.4 C.4.2.1.4 says (0xB000 with the Failed SOP Instance UID List).
"""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import CodecError, NotAcceptableError

__all__ = ["QR_MODELS", "qr_handlers", "retrieve_syntaxes", "syntax_preference"]

log = logging.getLogger("medcodec.dimse")

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"

#: Query/Retrieve information models served: (C-FIND, C-GET, C-MOVE) SOP Class UIDs.
QR_MODELS = {
    "patient": ("1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.1.3", "1.2.840.10008.5.1.4.1.2.1.2"),
    "study": ("1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.5.1.4.1.2.2.3", "1.2.840.10008.5.1.4.1.2.2.2"),
}
_LEVELS = {"STUDY": "study", "SERIES": "series", "IMAGE": "instance"}
_UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
_NOT_KEYS = {"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle"}
_PENDING = 0xFF00
_NOT_ALLOWED = 0xC001


def syntax_preference(stored: str) -> list[str]:
    """Transfer syntaxes an instance stored as ``stored`` can go out in, best first: as stored,
    uncompressed, lossless (bit-exact), lossy (the ``diagnostic`` preset's)."""
    from ..delivery.live import lossless_transcodes, preset_syntaxes, presets_for_syntax

    lossy = [ts for ts in preset_syntaxes().get("diagnostic", []) if presets_for_syntax(ts)]
    out = [stored, EXPLICIT_VR_LE, IMPLICIT_VR_LE, *lossless_transcodes(), *lossy]
    return list(dict.fromkeys(ts for ts in out if ts))


def retrieve_syntaxes(stored: set[str]) -> list[str]:
    """What a C-MOVE proposes for one SOP class whose instances are stored as ``stored``."""
    out: list[str] = []
    for ts in sorted(stored):
        out += syntax_preference(ts)
    return list(dict.fromkeys(out))


def _dataset_in(store: Any, record: Any, offered: list[str], pool: Any) -> tuple[Any, str]:
    """``record`` as a pydicom Dataset in the best of ``offered``; NotAcceptableError if none."""
    import pydicom
    from pydicom.uid import UID

    from ..delivery.live import instance_bytes

    reasons = []
    for ts in syntax_preference(record.transfer_syntax_uid):
        if ts not in offered:
            continue
        source = EXPLICIT_VR_LE if ts == IMPLICIT_VR_LE and record.transfer_syntax_uid != ts else ts
        try:
            data, got = instance_bytes(store, record, source, None, True, pool)
        except NotAcceptableError as exc:
            reasons.append(str(exc))
            continue
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        if ts != got:  # Explicit -> Implicit VR Little Endian: pydicom re-encodes as it sends
            ds.file_meta.TransferSyntaxUID = UID(ts)
        return ds, ts
    raise NotAcceptableError(
        f"instance {record.sop_uid} ({record.transfer_syntax_uid}) cannot go out in any accepted syntax "
        f"{sorted(set(offered))}" + (f": {reasons[-1]}" if reasons else "")
    )


def _text(value: Any) -> str:
    """An identifier element's value as a matching string: multiple values (a UID list) joined by
    backslashes, as they travel; empty for no value."""
    from pydicom.multival import MultiValue

    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value)


def _status(code: int, comment: str) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    return ds


class _QR:
    """The three handlers, sharing the store, the peers and the access rule."""

    def __init__(self, store: Any, *, ae_title: str, peers: Mapping[str, tuple[str, int]], open_to_all: bool,
                 pool: Any = None) -> None:  # fmt: skip
        self.store = store
        self.ae_title = ae_title
        self.peers = dict(peers)
        self.open_to_all = open_to_all
        self.pool = pool
        self._addresses = {ae: _resolve(host) for ae, (host, _) in self.peers.items()}

    # ------------------------------------------------------------------ access
    def allowed(self, assoc: Any) -> bool:
        if self.open_to_all:
            return True
        caller = str(assoc.requestor.ae_title).strip()
        return caller in self._addresses and assoc.requestor.address == self._addresses[caller]

    # ------------------------------------------------------------------ C-FIND
    def find(self, event: Any) -> Iterator[tuple[Any, Any]]:
        if not self.allowed(event.assoc):
            yield _status(_NOT_ALLOWED, "calling AE is not an allowed peer"), None
            return
        identifier = event.identifier
        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        try:
            results = self._search(identifier, level)
        except CodecError as exc:
            log.warning("C-FIND refused: %s", exc)
            yield _status(0xC000, str(exc)), None
            return
        for item in results:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield _PENDING, self._answer(identifier, level, item)

    def _search(self, identifier: Any, level: str) -> list[Any]:
        from ..delivery.catalog import QUERY_KEYS
        from ..errors import InvalidInputError

        if level not in (*_LEVELS, "PATIENT"):
            raise InvalidInputError(f"QueryRetrieveLevel {level!r}: expected PATIENT, STUDY, SERIES or IMAGE")
        query = {}
        for element in identifier:
            keyword = element.keyword
            if keyword in _NOT_KEYS or keyword not in QUERY_KEYS or element.VR == "SQ":
                continue
            text = _text(element.value)
            if text.strip() and text.strip() != "*":
                query[keyword] = text
        if level == "PATIENT":
            patients: dict[str, Any] = {}
            for study in self.store.find_studies(query):
                pid = study.get("00100020", {}).get("Value", [""])[0]
                patients.setdefault(pid, study)
            return list(patients.values())
        # return keys beyond the level's own attributes come from the stored headers, as includefield
        wanted = {
            f"{element.tag:08X}"
            for element in identifier
            if element.VR != "SQ" and element.tag not in (0x00080005, 0x00080052)  # character set, level
        }
        return list(self.store.catalog.find(_LEVELS[level], query, include=wanted))

    def _answer(self, identifier: Any, level: str, item: Mapping[str, Any]) -> Any:
        from pydicom.dataset import Dataset

        found = Dataset.from_json(dict(item))
        out = Dataset()
        out.SpecificCharacterSet = "ISO_IR 192"  # DICOM JSON is Unicode: answered in UTF-8
        for element in identifier:
            if element.keyword in ("SpecificCharacterSet",):
                continue
            if element.tag in found:
                out[element.tag] = found[element.tag]
            else:
                out.add_new(element.tag, element.VR, None if element.VR != "SQ" else [])
        out.QueryRetrieveLevel = level
        out.RetrieveAETitle = self.ae_title
        return out

    # ------------------------------------------------------------------ C-GET / C-MOVE
    def _records(self, identifier: Any) -> list[Any]:
        from ..delivery.uids import validate_uid
        from ..errors import InvalidInputError

        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        if level not in _UNIQUE:
            raise InvalidInputError(f"QueryRetrieveLevel {level!r}: expected PATIENT, STUDY, SERIES or IMAGE")
        keys = {}
        for name in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            text = _text(identifier.get(name))
            if text:
                keys[name] = text
        if _UNIQUE[level] not in keys:
            raise InvalidInputError(f"a {level} retrieve needs {_UNIQUE[level]}")
        wild = [name for name, value in keys.items() if "*" in value or "?" in value]
        if wild:  # PS3.4 C.4.2.2.1: retrieve keys are unique keys, matched as given
            raise InvalidInputError(f"{', '.join(wild)}: a retrieve takes unique keys, not wildcards")
        if level == "PATIENT":
            studies = [s["0020000D"]["Value"][0] for s in self.store.find_studies({"PatientID": keys["PatientID"]})]
        else:
            studies = [validate_uid(u.strip(), what="Study Instance UID") for u in keys["StudyInstanceUID"].split("\\")]
        series = set(keys["SeriesInstanceUID"].split("\\")) if "SeriesInstanceUID" in keys else None
        sops = set(keys["SOPInstanceUID"].split("\\")) if "SOPInstanceUID" in keys else None
        records = []
        for study in studies:
            for record in self.store.catalog.instances(study, None, None):
                if (series is None or record.series_uid in series) and (sops is None or record.sop_uid in sops):
                    records.append(record)
        return records

    def _suboperations(self, event: Any, records: list[Any], contexts: Any) -> Iterator[tuple[int, Any]]:
        """(status, dataset) per record, in the best syntax ``contexts()`` (the accepted presentation
        contexts, read when each record is sent) offer for its SOP class; a cancel stops them."""
        for record in records:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            offered = [str(cx.transfer_syntax[0]) for cx in contexts() if cx.abstract_syntax == record.sop_class_uid]
            try:
                ds, _ = _dataset_in(self.store, record, offered, self.pool)
            except CodecError as exc:
                log.warning("retrieve sub-operation not possible: %s", exc)
                yield 0xFF00, _failed_marker(record)
                continue
            yield 0xFF00, ds

    def get(self, event: Any) -> Iterator[Any]:
        # pynetdicom wants the number of sub-operations first; a refusal is then the first status
        if not self.allowed(event.assoc):
            yield 1
            yield _status(_NOT_ALLOWED, "calling AE is not an allowed peer"), None
            return
        try:
            records = self._records(event.identifier)
        except CodecError as exc:
            log.warning("C-GET refused: %s", exc)
            yield 1
            yield _status(0xC000, str(exc)), None
            return
        yield len(records)
        accepted = [cx for cx in event.assoc.accepted_contexts if cx.as_scu]  # we send: the storage SCU role
        yield from self._suboperations(event, records, lambda: accepted)

    def move(self, event: Any) -> Iterator[Any]:
        from pynetdicom import build_context, evt

        destination = str(event.move_destination.decode() if isinstance(event.move_destination, bytes)
                          else event.move_destination).strip()  # fmt: skip
        if not self.allowed(event.assoc):
            yield None, None  # refused before anything: reported as an unknown destination
            return
        if destination not in self.peers:
            log.warning("C-MOVE to %r refused: not a --dimse-peer", destination)
            yield None, None
            return
        try:
            records = self._records(event.identifier)
        except CodecError as exc:
            log.warning("C-MOVE refused: %s", exc)
            host, port = self.peers[destination]
            yield host, port
            yield 1
            yield _status(0xC000, str(exc)), None
            return
        stored: dict[str, set[str]] = {}
        for record in records:
            stored.setdefault(record.sop_class_uid, set()).add(record.transfer_syntax_uid)
        contexts = [build_context(cls, retrieve_syntaxes(tss)) for cls, tss in list(stored.items())[:128]]
        sub: dict[str, Any] = {}

        def on_accepted(accepted_event: Any) -> None:
            sub["assoc"] = accepted_event.assoc

        host, port = self.peers[destination]
        yield host, port, {"contexts": contexts or None, "evt_handlers": [(evt.EVT_ACCEPTED, on_accepted)]}
        yield len(records)
        yield from self._suboperations(event, records, lambda: sub["assoc"].accepted_contexts if sub else [])


def _failed_marker(record: Any) -> Any:
    """A dataset pynetdicom cannot send (no SOP Class): the sub-operation is counted failed and
    its SOP Instance UID listed in the final response."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SOPInstanceUID = record.sop_uid
    return ds


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def qr_handlers(
    store: Any,
    *,
    ae_title: str,
    peers: Mapping[str, tuple[str, int]],
    open_to_all: bool,
    pool: Any = None,
) -> list[tuple[Any, Any]]:
    """pynetdicom event handlers for C-FIND, C-GET and C-MOVE over ``store``."""
    from pynetdicom import evt

    qr = _QR(store, ae_title=ae_title, peers=peers, open_to_all=open_to_all, pool=pool)
    return [(evt.EVT_C_FIND, qr.find), (evt.EVT_C_GET, qr.get), (evt.EVT_C_MOVE, qr.move)]
