"""DICOM Query/Retrieve SCP (PS3.4 Annex C) over the store: C-FIND, C-GET and C-MOVE.

A workstation or PACS queries the catalog and pulls studies over DIMSE, the way it would from
any PACS; the transfer syntax of what it receives is negotiated, as WADO-RS negotiates it:

* **C-FIND**, Patient Root (levels PATIENT / STUDY / SERIES / IMAGE; a patient's Number of Patient
  Related Studies / Series / Instances summed over its studies) and Study Root (no PATIENT level,
  PS3.4 C.6.2: such a query is answered 0xA900 with a comment; a retrieve at that level is served
  as Patient Root serves it, as Orthanc sends them: :func:`_level_outside_model`). Matching is
  the catalog's QIDO-RS matching (PS3.4 C.2.2.2: single value, wildcards ``*`` ``?``, UID lists,
  date and time ranges) on the keys :data:`medcodec.delivery.catalog.QUERY_KEYS` lists; any other
  key in the identifier is a return key only (filled when the study, series or instance header
  has it, else empty), as PS3.4 C.2.2.1 lets an SCP treat optional keys.
* **C-GET** (Patient / Study Root): the instances go back as C-STORE sub-operations on the same
  association. A presentation context carries one transfer syntax for every instance of its SOP
  class, and only an uncompressed one can carry them all (a colour image goes only as stored,
  uncompressed or as 8-bit JPEG; a 12-bit image never as 8-bit JPEG): so the SCP accepts, for each
  storage context the requestor proposes, the first uncompressed syntax in the requestor's order (Explicit
  or Implicit VR Little Endian), else the first the requestor lists that medcodec makes (a lossless
  syntax the registry writes, the ``diagnostic`` preset's 12-bit / 8-bit JPEG; no 8-bit JPEG for
  a class with 16 bits allocated, :data:`WIDE_CLASSES`, or of which the store holds no image of 8
  bits or fewer), else one only the instances stored in it can take (:func:`requestor_order`).
  ``{.51, .50}`` therefore gets ``.51``; a requestor that wants JPEG and an uncompressed fallback
  proposes the class twice (``{.51}``, ``{Implicit}``): each instance then goes in the first of the requestor's accepted
  contexts it can be made in. A requestor that proposes only JPEG lossy for CT (pynetdicom) gets
  the diagnostic rendition, with its lossy attributes; one that accepts uncompressed (DCMTK
  ``getscu``) gets the original values.
* **C-MOVE** to a destination named by ``--dimse-peer AE=HOST:PORT``: a new association to it
  proposing, for each SOP class, an uncompressed context (Explicit, Implicit VR Little Endian),
  a context with every syntax medcodec can make for that class (the destination's choice among
  them: ``storescp +xx`` picks 12-bit JPEG), and one context per compressed syntax an instance is
  stored in (sent as stored); at most 128 contexts, in that order of priority
  (:func:`move_contexts`). Each instance goes in the destination's choice when it can be made in
  it, else in the first of as stored, uncompressed, lossless, lossy that the destination accepted.
  An unknown destination is refused (0xA801); an identifier that names no instance to retrieve (a
  wildcard UID, a SERIES move without its Series Instance UID) is answered 0xC000 with an Error
  Comment, before any association to the destination (:func:`refuse_move`).
* Implicit VR Little Endian out (the DICOM default syntax, the only one some peers accept) is made
  for any instance Explicit VR Little Endian can be made for: decompressed or byte-swapped as for
  WADO-RS, then re-encoded (:func:`_as_implicit`).

Who may query and retrieve: any caller while the SCP listens on loopback (the machine's own
users, like the HTTP server without a token); off loopback only the AE titles of ``--dimse-peer``,
calling from their address (anything else gets 0xC001 "not an allowed peer" to C-FIND and C-GET,
0xA801 to C-MOVE: pynetdicom has no other refusal before the destination). C-STORE (in) is
:mod:`.dimse`'s and unchanged. Sub-operation failures (an instance that cannot be made in any
accepted syntax, a destination refusing one) are counted and reported in the final response, as
PS3.4 C.4.2.1.4 says (0xB000 with the Failed SOP Instance UID List).
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping
from typing import Any

from ..delivery.catalog import first_value
from ..errors import CodecError, NotAcceptableError
from .dimse_status import error_comment

__all__ = [
    "QR_MODELS",
    "move_contexts",
    "qr_handlers",
    "qr_service",
    "refuse_move",
    "requestor_order",
    "retrieve_syntaxes",
    "syntax_preference",
]

log = logging.getLogger("medcodec.dimse")

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
#: The syntaxes medcodec makes from any instance pydicom decodes: the only ones that can carry
#: every instance of a SOP class in one presentation context.
UNCOMPRESSED = (EXPLICIT_VR_LE, IMPLICIT_VR_LE)
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
#: SOP classes whose IOD fixes Bits Allocated at 16 (PS3.3: CT, MR, PET; RT Dose 16 or 32; Enhanced
#: CT and PET and the legacy converted forms likewise; not Enhanced MR, which allows 8): their
#: images never go in 8-bit JPEG Baseline (:func:`requestor_order`).
WIDE_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography Image
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET Image
    "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET Image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose
})  # fmt: skip
#: Presentation contexts in one association: context IDs are the odd numbers 1-255 (PS3.8 §9.3.2.2).
MAX_CONTEXTS = 128

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
#: PS3.4 C.4.1.1.4: pending, "one or more Optional Keys were not supported for matching": answered
#: when the identifier matches on keys the catalog does not hold (0xFF00 said they had been matched:
#: `Rows=256` answered every 512-row image, an outside audit, 2026-12-05).
_PENDING_UNMATCHED = 0xFF01
#: C-FIND matches read from the catalog at a time (:meth:`_QR._pages`).
FIND_PAGE = 200
_NOT_ALLOWED = 0xC001
_UNABLE = 0xC000  # PS3.4 C.4.2.1.5 / C.4.3.1.4: "Unable to process"
_NOT_THIS_MODEL = 0xA900  # PS3.4 C.4.1.1.4: "Identifier does not match SOP Class"
_SUBOPERATIONS_STOPPED = 0xA702  # PS3.4 C.4.2.1.5 / C.4.3.1.4: "Unable to perform sub-operations"
#: Seconds a C-MOVE waits, after an instance its destination did not answer, for the association's
#: end to arrive (an abort is read by another thread) before it reads and sends the next one.
GONE_WAIT = 1.0


def _level_outside_model(identifier: Any, model_uid: Any) -> str:
    """Why a C-FIND's level is not one of its information model's (PS3.4 C.6.2: the Study Root
    model has no PATIENT level), or ``""``. Until 2026-12-02 a PATIENT C-FIND under Study Root was
    answered as if it were Patient Root. Retrieves are not asked: a C-GET or C-MOVE of a PATIENT
    under Study Root is taken as Patient Root takes it, its Patient ID naming the studies to send.
    Orthanc 1.10 sends every C-MOVE under Study Root, a patient's too, and each such move failed
    (0xA900; an outside audit, 2026-12-05), where Orthanc as an SCP takes it."""
    level = str(identifier.get("QueryRetrieveLevel", "")).upper()
    if level == "PATIENT" and str(model_uid or "") in QR_MODELS["study"]:
        return "QueryRetrieveLevel PATIENT is not a level of the Study Root model (PS3.4 C.6.2): use Patient Root"
    return ""


def syntax_preference(stored: str) -> list[str]:
    """Transfer syntaxes an instance stored as ``stored`` can go out in, best first: as stored,
    uncompressed, lossless (bit-exact), lossy (the ``diagnostic`` preset's)."""
    from ..delivery.live import lossless_transcodes, preset_syntaxes, presets_for_syntax

    lossy = [ts for ts in preset_syntaxes().get("diagnostic", []) if presets_for_syntax(ts)]
    out = [stored, *UNCOMPRESSED, *lossless_transcodes(), *lossy]
    return list(dict.fromkeys(ts for ts in out if ts))


def same_instance(record: Any, candidates: list[str]) -> list[str]:
    """Those of ``candidates`` in which ``record`` goes out as itself: as stored, uncompressed or
    losslessly transcoded, not a lossy rendition (a new SOP Instance). An IMAGE-level retrieve names
    its instances: PS3.4 C.4.2.3.1 (Note 1) lets an SCP send another encoding of an instance only at
    PATIENT, STUDY or SERIES level. Until 2026-12-05 an IMAGE-level C-MOVE to a destination that took
    JPEG got a lossy copy with new UIDs instead (an outside audit); an instance with none of these
    accepted is a failed sub-operation."""
    from ..delivery.live import lossless_transcodes

    keeps = {record.transfer_syntax_uid, *UNCOMPRESSED, *lossless_transcodes()}
    return [ts for ts in candidates if ts in keeps]


def _level(identifier: Any) -> str:
    return str(identifier.get("QueryRetrieveLevel", "") if identifier is not None else "").strip().upper()


def retrieve_syntaxes(stored: set[str]) -> list[str]:
    """Every syntax medcodec can send a SOP class whose instances are stored as ``stored`` in:
    what a C-MOVE offers the destination to choose from."""
    out: list[str] = []
    for ts in sorted(stored):
        out += syntax_preference(ts)
    return list(dict.fromkeys(out))


def requestor_order(
    proposed: list[str],
    supported: list[str],
    *,
    makes: Collection[str] | None = None,
    sop_class: str = "",
    narrow: Collection[str] | None = None,
) -> list[str]:
    """``supported`` reordered for one C-GET storage context of ``sop_class`` the requestor
    ``proposed`` (in its order of preference): the uncompressed syntaxes it proposed, in its order
    (a context carries one syntax for every instance of its SOP class, and only these can carry all
    of them); then the others medcodec makes from any stored syntax, in its order, JPEG Baseline
    left out for a class none of whose images fits in 8 bits: one whose IOD has 16 bits allocated
    (:data:`WIDE_CLASSES`), or, when ``narrow`` names the classes of which the store holds some
    image of at most 8 bits, any class not in it; then the rest (instances stored in them only).
    The acceptor takes the first of this list the context proposes. ``makes``: what medcodec
    makes from any stored syntax (default: computed).

    Until 2026-12-06 a CT context proposing ``{.50, .90}`` or ``{.50, .51}`` got ``.50``, and every
    sub-operation of the retrieve failed where the other syntax carried each image (outside
    audits, 2026-12-05 and -06: CT, then CR, DX and Enhanced MR)."""
    makes = set(syntax_preference("") if makes is None else makes)
    if sop_class in WIDE_CLASSES or (narrow is not None and sop_class not in narrow):
        makes.discard(JPEG_BASELINE)
    first = [ts for ts in proposed if ts in UNCOMPRESSED and ts in supported]
    then = [ts for ts in proposed if ts in makes and ts in supported]
    return list(dict.fromkeys([*first, *then, *supported]))


def move_contexts(stored: Mapping[str, set[str]]) -> list[tuple[str, list[str], str]]:
    """The presentation contexts a C-MOVE proposes to the destination for instances of SOP classes
    ``stored`` (``{SOP Class UID: syntaxes they are stored in}``): ``(SOP class, syntaxes, kind)``
    in proposal order, at most :data:`MAX_CONTEXTS`. Kinds, by priority: ``uncompressed`` (every
    instance can go in it: every class gets one first), ``choice`` (every syntax medcodec can make
    for the class: the destination picks its favourite), ``stored`` (one compressed syntax
    instances are stored in, sent as they are)."""
    tiers = [
        [(cls, list(UNCOMPRESSED), "uncompressed") for cls in stored],
        [(cls, retrieve_syntaxes(tss), "choice") for cls, tss in stored.items()],
        [(cls, [ts], "stored") for cls, tss in stored.items() for ts in sorted(tss) if ts not in UNCOMPRESSED],
    ]
    out = [context for tier in tiers for context in tier]
    if len(out) > MAX_CONTEXTS:
        log.warning("C-MOVE: %d presentation contexts wanted, %d proposed", len(out), MAX_CONTEXTS)
    return out[:MAX_CONTEXTS]


def _dataset_in(store: Any, record: Any, candidates: list[str], pool: Any) -> tuple[Any, str]:
    """``record`` as a pydicom Dataset in the first of ``candidates`` (accepted transfer syntaxes,
    best first) it can be made in; NotAcceptableError if none (a syntax whose coding fails is
    passed over like one medcodec does not make)."""
    reasons = []
    for ts in dict.fromkeys(candidates):
        try:
            return _dataset_as(store, record, ts, pool), ts
        except CodecError as exc:
            reasons.append(str(exc))
    raise NotAcceptableError(
        f"instance {record.sop_uid} ({record.transfer_syntax_uid}) cannot go out in any accepted syntax "
        f"{sorted(set(candidates))}" + (f": {reasons[-1]}" if reasons else "")
    )


def _dataset_as(store: Any, record: Any, ts: str, pool: Any) -> Any:
    """``record`` as a pydicom Dataset encoded in ``ts`` (what pynetdicom sends it in)."""
    import pydicom

    from ..delivery.live import instance_bytes

    stored = record.transfer_syntax_uid
    source = EXPLICIT_VR_LE if ts == IMPLICIT_VR_LE and stored != ts else ts
    data, got = instance_bytes(store, record, source, None, True, pool)
    if ts == IMPLICIT_VR_LE and got != ts:
        if got != EXPLICIT_VR_LE:  # a preamble-less dataset catalogued as implicit, in another syntax
            data, got = instance_bytes(store, record, EXPLICIT_VR_LE, None, True, pool)
        return _as_implicit(data)
    if got != ts:
        raise NotAcceptableError(f"instance {record.sop_uid} cannot be sent as {ts}: it is {got}")
    return pydicom.dcmread(io.BytesIO(data), force=True)


def _as_implicit(data: bytes) -> Any:
    """An Explicit VR Little Endian PS3.10 file as a Dataset read from Implicit VR Little Endian
    bytes: re-encoded, not only relabelled (pynetdicom sends a dataset in the encoding it was read
    in, and refuses one whose file meta names another)."""
    import pydicom
    from pydicom.uid import ImplicitVRLittleEndian

    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=True, little_endian=True, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()), force=True)


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
    ds.ErrorComment = error_comment(comment)
    return ds


class _QR:
    """The three handlers, sharing the store, the peers and the access rule."""

    def __init__(self, store: Any, *, ae_title: str, peers: Mapping[str, tuple[str, int]], open_to_all: bool,
                 pool: Any = None, tls_peers: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        self.store = store
        self.ae_title = ae_title
        self.peers = dict(peers)
        self.tls_peers = dict(tls_peers or {})  # AE title -> the ssl.SSLContext it is reached with
        self.open_to_all = open_to_all
        self.pool = pool
        self._addresses = {ae: _resolve(host) for ae, (host, _) in self.peers.items()}

    def handlers(self) -> list[tuple[Any, Any]]:
        """pynetdicom event handlers for C-FIND, C-GET and C-MOVE."""
        from pynetdicom import evt

        return [(evt.EVT_C_FIND, self.find), (evt.EVT_C_GET, self.get), (evt.EVT_C_MOVE, self.move)]

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
        try:
            identifier = _identifier(event)
        except CodecError as exc:
            log.warning("C-FIND refused: %s", exc)
            yield _status(_UNABLE, str(exc)), None
            return
        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        outside = _level_outside_model(identifier, event.request.AffectedSOPClassUID)
        if outside:
            log.warning("C-FIND refused: %s", outside)
            yield _status(_NOT_THIS_MODEL, outside), None
            return
        try:
            results = self._search(identifier, level)
        except CodecError as exc:
            log.warning("C-FIND refused: %s", exc)
            yield _status(0xC000, str(exc)), None
            return
        pending = _PENDING_UNMATCHED if _unmatched_keys(identifier, level) else _PENDING
        try:
            for item in results:
                if event.is_cancelled:
                    yield 0xFE00, None
                    return
                _keep_alive(event.assoc)
                yield pending, self._answer(identifier, level, item)
        except CodecError as exc:  # a later page's query failed (a value only the catalog checks)
            log.warning("C-FIND failed: %s", exc)
            yield _status(0xC000, str(exc)), None

    def _search(self, identifier: Any, level: str) -> Iterator[Any]:
        from ..delivery.catalog import QUERY_KEYS
        from ..errors import InvalidInputError

        if level not in (*_LEVELS, "PATIENT"):
            raise InvalidInputError(f"QueryRetrieveLevel {level!r}: expected PATIENT, STUDY, SERIES or IMAGE")
        query = {}
        for element in identifier:
            keyword = element.keyword
            if keyword in _NOT_KEYS or keyword not in QUERY_KEYS or element.VR == "SQ":
                continue
            if level == "PATIENT" and element.tag >> 16 != 0x0010:  # a patient is matched on its own keys
                continue
            text = _text(element.value)
            if text.strip() and text.strip() != "*":
                query[keyword] = text
        if level == "PATIENT":  # one answer per patient, its counts summed over its studies (PS3.4 C.3.2)
            # a patient is its Patient ID and issuer, as the catalog files them (a study without an ID a
            # patient of its own): until 2026-12-05 the Patient ID alone, so studies of two issuers, or
            # every study without an ID, came back as one patient (an outside audit)
            issuer = _text(identifier.get("IssuerOfPatientID")).strip()
            patients: dict[tuple[str, str], dict[str, Any]] = {}
            counts: dict[tuple[str, str], list[int]] = {}
            for study in self.store.find_studies(query):
                if issuer and issuer not in ("*", first_value(study, "00100021")):
                    continue
                pid = (first_value(study, "00100020"), first_value(study, "00100021"))
                if not pid[0]:
                    pid = ("", first_value(study, "0020000D"))
                patients.setdefault(pid, dict(study))
                n = counts.setdefault(pid, [0, 0, 0])
                n[0] += 1
                for i, tag in ((1, "00201206"), (2, "00201208")):  # the study's series and instances
                    n[i] += int((study.get(tag, {}).get("Value") or [0])[0])
            for pid, item in patients.items():
                for tag, value in zip(("00201200", "00201202", "00201204"), counts[pid], strict=True):
                    item[tag] = {"vr": "IS", "Value": [value]}
            return iter(patients.values())
        # return keys beyond the level's own attributes come from the stored headers, as includefield:
        # sequences too (answered empty until 2026-12-05, where QIDO-RS gave their items: an outside
        # check of the conformance statement); their keys are not matched (sequence matching is not
        # offered), the stored sequence is returned whole
        wanted = {
            f"{element.tag:08X}"
            for element in identifier
            if element.tag not in (0x00080005, 0x00080052)  # character set, level
        }
        pages = self._pages(_LEVELS[level], query, wanted)
        issuer = _text(identifier.get("IssuerOfPatientID")).strip()
        if issuer and issuer != "*":  # not a catalog key: the answers of that issuer's patient only (every
            # level's answer carries its study's patient attributes; ignored until 2026-12-05, a re-audit)
            return (item for item in pages if first_value(item, "00100021") == issuer)
        return pages

    def _pages(self, level: str, query: Mapping[str, str], wanted: set[str]) -> Iterator[Any]:
        """The matches, read :data:`FIND_PAGE` at a time: the first answer goes out after one page
        and a C-CANCEL takes effect within one (an outside scale audit found an IMAGE-level ``*``
        over 23,000 instances answered first after 11.3 s, every match held in memory)."""
        offset = 0
        while True:
            page = self.store.catalog.find(level, query, include=wanted, limit=FIND_PAGE, offset=offset)
            yield from page
            if len(page) < FIND_PAGE:
                return
            offset += len(page)

    def _answer(self, identifier: Any, level: str, item: Mapping[str, Any]) -> Any:
        from pydicom.dataset import Dataset

        found = Dataset.from_json(_without_bulk_data(dict(item)))
        out = Dataset()
        out.SpecificCharacterSet = "ISO_IR 192"  # DICOM JSON is Unicode: answered in UTF-8
        for element in identifier:
            if element.keyword in ("SpecificCharacterSet",) or element.tag >> 16 < 0x0008:
                continue  # (groups below 0008 are no data set's, PS3.4 C.4.1.1.3: a file meta key asked)
            if level == "PATIENT" and element.tag >> 16 != 0x0010 and element.tag not in _PATIENT_COUNTS:
                out.add_new(element.tag, element.VR, None if element.VR != "SQ" else [])
                continue  # a study's attributes are not the patient's (one study's were answered)
            if element.tag in found:
                out[element.tag] = found[element.tag]
            else:
                out.add_new(element.tag, element.VR, None if element.VR != "SQ" else [])
        if "InstanceAvailability" in identifier and level != "PATIENT":  # all stored here is (as QIDO-RS says)
            out.InstanceAvailability = "ONLINE"  # (answered empty until 2026-12-05: a conformance check)
        out.QueryRetrieveLevel = level
        out.RetrieveAETitle = self.ae_title
        return out

    # ------------------------------------------------------------------ C-GET / C-MOVE
    def _retrieve_keys(self, identifier: Any) -> tuple[str, dict[str, str]]:
        """The level and unique keys of a C-GET / C-MOVE identifier; InvalidInputError when they
        cannot name instances to retrieve (no level, no unique key of the level, a wildcard, a
        malformed Study Instance UID)."""
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
        if level != "PATIENT" and "StudyInstanceUID" not in keys:  # (KeyError below until 2026-12-05: a hang)
            raise InvalidInputError(
                f"a {level} retrieve needs StudyInstanceUID too (the unique keys of the levels above, "
                "PS3.4 C.4.2.2.1: relational retrieve is not supported)"
            )
        wild = [name for name, value in keys.items() if "*" in value or "?" in value]
        if wild:  # PS3.4 C.4.2.2.1: retrieve keys are unique keys, matched as given
            raise InvalidInputError(f"{', '.join(wild)}: a retrieve takes unique keys, not wildcards")
        if level != "PATIENT":
            for uid in keys["StudyInstanceUID"].split("\\"):
                validate_uid(uid.strip(), what="Study Instance UID")
        return level, keys

    def _records(self, identifier: Any) -> list[Any]:
        """The instances a retrieve names, each once (a Study Instance UID listed 200 times sent a
        5,000-instance study 200 times and took the server to 1.8 GB, an outside audit, 2026-12-05)."""
        level, keys = self._retrieve_keys(identifier)
        issuer = _text(identifier.get("IssuerOfPatientID")).strip()
        if level == "PATIENT":  # the issuer, when given, names one of the patients of that ID
            found = self.store.find_studies({"PatientID": keys["PatientID"]})
            studies = [first_value(s, "0020000D") for s in found if not issuer or first_value(s, "00100021") == issuer]
        else:
            studies = [u.strip() for u in keys["StudyInstanceUID"].split("\\")]
            if "PatientID" in keys or issuer:  # the patient keys of a Patient Root retrieve name the studies' patient
                # (until 2026-12-05 ignored below PATIENT level: another patient's study was sent; a re-audit)
                query = {"StudyInstanceUID": ",".join(studies), **({"PatientID": keys["PatientID"]} if
                                                                   "PatientID" in keys else {})}  # fmt: skip
                studies = [first_value(s, "0020000D") for s in self.store.find_studies(query)
                           if not issuer or first_value(s, "00100021") == issuer]  # fmt: skip
        series = set(keys["SeriesInstanceUID"].split("\\")) if "SeriesInstanceUID" in keys else None
        sops = set(keys["SOPInstanceUID"].split("\\")) if "SOPInstanceUID" in keys else None
        records = []
        for study in dict.fromkeys(studies):  # each once, in the order given
            for record in self.store.catalog.instances(study, None, None):
                if (series is None or record.series_uid in series) and (sops is None or record.sop_uid in sops):
                    records.append(record)
        return records

    def _suboperations(self, event: Any, records: list[Any], candidates: Callable[[Any], list[str]]
                       ) -> Generator[tuple[int, Any], None, None]:  # fmt: skip
        """(status, dataset) per record, in the first of ``candidates(record)`` (accepted syntaxes
        for its SOP class, best first, read when it is sent) it can be made in; a cancel stops them."""
        for record in records:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            _keep_alive(event.assoc)
            try:
                ds, _ = _dataset_in(self.store, record, candidates(record), self.pool)
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
            identifier = _identifier(event)
        except CodecError as exc:
            log.warning("C-GET refused: %s", exc)
            yield 1
            yield _status(_UNABLE, str(exc)), None
            return
        try:
            records = self._records(identifier)
        except CodecError as exc:
            log.warning("C-GET refused: %s", exc)
            yield 1
            yield _status(_UNABLE, str(exc)), None
            return
        yield len(records)
        # we send (the storage SCU role), in the requestor's order: its contexts by ID, each one syntax
        accepted = sorted((cx for cx in event.assoc.accepted_contexts if cx.as_scu), key=lambda cx: cx.context_id)

        image = _level(identifier) == "IMAGE"

        def candidates(record: Any) -> list[str]:
            out = [str(cx.transfer_syntax[0]) for cx in accepted if cx.abstract_syntax == record.sop_class_uid]
            return same_instance(record, out) if image else out

        yield from self._suboperations(event, records, candidates)

    def refusal(self, assoc: Any, identifier: Any, destination: str) -> Any:
        """The final C-MOVE response (status and Error Comment) for an identifier that names nothing
        to retrieve, or None: pynetdicom would otherwise associate with the destination before it
        reads any status. A caller not allowed, an unknown destination: None (the handler answers)."""
        if not self.allowed(assoc) or destination not in self.peers:
            return None
        try:
            self._retrieve_keys(identifier)
        except CodecError as exc:
            log.warning("C-MOVE to %s refused: %s", destination, exc)
            return _status(_UNABLE, str(exc))
        return None

    def move(self, event: Any) -> Iterator[Any]:
        from pynetdicom import build_context, evt

        destination = _ae_title(event.move_destination)
        event.assoc.medcodec_move_peer = None  # (a previous C-MOVE's, on this association)
        if not self.allowed(event.assoc):
            yield None, None  # refused before anything: reported as an unknown destination
            return
        if destination not in self.peers:
            log.warning("C-MOVE to %r refused: not a --dimse-peer", destination)
            yield None, None
            return
        try:
            records = self._records(event.identifier)
        except CodecError as exc:  # refuse_move answers these first; a late failure (the catalog)
            log.warning("C-MOVE refused: %s", exc)
            host, port = self.peers[destination]
            yield host, port
            yield 1
            yield _status(_UNABLE, str(exc)), None
            return
        stored: dict[str, set[str]] = {}
        for record in records:
            stored.setdefault(record.sop_class_uid, set()).add(record.transfer_syntax_uid)
        proposals = move_contexts(stored)
        kinds = {2 * i + 1: kind for i, (_, _, kind) in enumerate(proposals)}  # pynetdicom numbers them so
        sub: dict[str, Any] = {}

        def on_accepted(accepted_event: Any) -> None:
            sub["assoc"] = accepted_event.assoc
            keep_responses(accepted_event.assoc)

        image = _level(event.identifier) == "IMAGE"

        def candidates(record: Any) -> list[str]:
            """The destination's choice for the record's class, then medcodec's preference; at IMAGE
            level only syntaxes that keep the instance (:func:`same_instance`)."""
            if "assoc" not in sub:
                return []
            accepted = [cx for cx in sub["assoc"].accepted_contexts if cx.abstract_syntax == record.sop_class_uid]
            picks = [str(cx.transfer_syntax[0]) for cx in accepted if kinds.get(cx.context_id) == "choice"]
            offered = {str(cx.transfer_syntax[0]) for cx in accepted}
            out = [*picks, *(ts for ts in syntax_preference(record.transfer_syntax_uid) if ts in offered)]
            return same_instance(record, out) if image else out

        answered: dict[str, bool] = {}  # SOP Instance UID -> stored, from the destination's C-STORE responses

        def on_response(recv_event: Any) -> None:
            if type(recv_event.message).__name__ == "C_STORE_RSP":
                command = recv_event.message.command_set
                answered[str(command.get("AffectedSOPInstanceUID", ""))] = _stored(command.get("Status"))

        def gone(last: Any) -> bool:
            """Whether the destination has ended the association (released, aborted, or aborted by
            pynetdicom on a DIMSE timeout). ``last``: the dataset yielded before; when it was sent
            and not answered, the end may still be on its way: waited for, briefly."""
            assoc = sub.get("assoc")
            if assoc is None:
                return False
            deadline = time.monotonic() + GONE_WAIT
            unanswered = "SOPClassUID" in last and str(last.SOPInstanceUID) not in answered
            while assoc.is_established and unanswered and time.monotonic() < deadline:
                time.sleep(0.01)
            return not assoc.is_established

        host, port = self.peers[destination]
        over = " over TLS" if destination in self.tls_peers else ""
        event.assoc.medcodec_move_peer = f"{destination} at {host}:{port}{over}"  # a known peer: mend_retrieve_response
        contexts = [build_context(cls, syntaxes) for cls, syntaxes, _ in proposals]
        handlers = [(evt.EVT_ACCEPTED, on_accepted), (evt.EVT_DIMSE_RECV, on_response)]
        tls = {"tls_args": (self.tls_peers[destination], host)} if destination in self.tls_peers else {}
        yield host, port, {"contexts": contexts or None, "evt_handlers": handlers, **tls}
        yield len(records)
        # each sub-operation starts only while the destination is there: pynetdicom's C-MOVE SCP went
        # on through every instance left, each read and transcoded for nothing and counted failed (an
        # outside audit's 140-instance C-MOVE to a stopped destination, 2026-12-05)
        suboperations = self._suboperations(event, records, candidates)
        for sent, item in enumerate(suboperations):
            yield item
            if sent + 1 < len(records) and item[0] == _PENDING and gone(item[1]):
                suboperations.close()
                yield self._stopped(destination, records, sent + 1, answered)
                return

    @staticmethod
    def _stopped(destination: str, records: list[Any], sent: int, answered: Mapping[str, bool]) -> tuple[Any, Any]:
        """The final (status, identifier) of a C-MOVE whose destination went after ``sent`` of
        ``records``: 0xA702, the instances it did not store listed failed (pynetdicom counts them)."""
        from pydicom.dataset import Dataset

        log.warning("C-MOVE to %s stopped after %d of %d instance(s): the association to the destination "
                    "ended (it released or aborted it, or did not answer within the DIMSE timeout)",
                    destination, sent, len(records))  # fmt: skip
        failures = Dataset()
        failures.FailedSOPInstanceUIDList = [r.sop_uid for i, r in enumerate(records) if i >= sent or
                                             not answered.get(r.sop_uid)]  # fmt: skip
        left = len(records) - sent  # (the comment is at most 64 characters: the count came last and was cut)
        return _status(_SUBOPERATIONS_STOPPED, f"{destination} association ended, {left} not sent"), failures


def refuse_move(qr: _QR, assoc: Any, request: Any, context_id: int) -> Any:
    """For a C-MOVE request ``request`` received on ``assoc``: the C-MOVE response primitive that
    refuses it (0xC000 with an Error Comment, see :meth:`_QR.refusal`), or None to serve it. Called
    before pynetdicom's own C-MOVE SCP, which associates with the destination before it reads a
    status from the handler (:mod:`.dimse` wires it)."""
    from pynetdicom.dimse_primitives import C_MOVE
    from pynetdicom.dsutils import decode

    context = next((cx for cx in assoc.accepted_contexts if cx.context_id == context_id), None)
    if context is None or request.Identifier is None:
        return None
    ts = context.transfer_syntax[0]
    try:  # (unreadable: pynetdicom's own SCP answered 0xC514 and logged a traceback)
        identifier = _read_whole(
            lambda: decode(request.Identifier, ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated)
        )
    except CodecError as exc:
        log.warning("C-MOVE refused: %s", exc)
        status = _status(_UNABLE, str(exc))
    else:
        status = qr.refusal(assoc, identifier, _ae_title(request.MoveDestination))
    if status is None:
        return None
    rsp = C_MOVE()
    rsp.MessageIDBeingRespondedTo = request.MessageID
    rsp.AffectedSOPClassUID = request.AffectedSOPClassUID
    rsp.Status = int(status.Status)
    rsp.ErrorComment = str(status.ErrorComment)  # type: ignore[assignment]  # pynetdicom types it None
    return rsp


#: Count attributes a PATIENT-level answer carries besides the patient's own (group 0010).
_PATIENT_COUNTS = frozenset({0x00201200, 0x00201202, 0x00201204})


def _read_whole(decode: Callable[[], Any]) -> Any:
    """The identifier ``decode()`` gives, every element read (pydicom parses sequences when first
    used); :class:`InvalidInputError` when it cannot be (an unterminated sequence, sequences nested
    thousands deep: pynetdicom answered a generic failure and the log took 180 KB of traceback a
    request, an outside audit, 2026-12-05)."""
    from ..errors import InvalidInputError

    try:
        identifier = decode()
        for _ in identifier.iterall():
            pass
    except Exception as exc:  # (RecursionError among them)
        raise InvalidInputError(f"the identifier cannot be read ({type(exc).__name__})") from None
    return identifier


def _identifier(event: Any) -> Any:
    """The request's identifier, read whole (:func:`_read_whole`)."""
    return _read_whole(lambda: event.identifier)


def _unmatched_keys(identifier: Any, level: str) -> list[str]:
    """Keys ``identifier`` matches on (a value, not universal) that this SCP does not match: not
    catalog keys, sequences, or at PATIENT level another level's keys."""
    from ..delivery.catalog import QUERY_KEYS

    out = []
    for element in identifier:
        if element.keyword in _NOT_KEYS or element.keyword == "IssuerOfPatientID" or element.tag >> 16 < 0x0008:
            continue
        if not _matches_on(element):
            continue  # a return key, or universal matching
        if (
            element.VR == "SQ"
            or element.keyword not in QUERY_KEYS
            or (level == "PATIENT" and element.tag >> 16 != 0x0010)
        ):
            out.append(element.keyword or f"{element.tag:08X}")
    return out


def _matches_on(element: Any) -> bool:
    """Whether an identifier's element asks for matching: a value that is not universal (``*``), or
    a sequence with such a value in an item (PS3.4 C.2.2.2.6); empty ones are return keys."""
    if element.VR == "SQ":
        return any(_matches_on(inner) for item in element.value or [] for inner in item)
    text = _text(element.value).strip()
    return bool(text) and text != "*"


def _keep_alive(assoc: Any) -> None:
    """Restart the association's network idle timer: a requestor sends nothing while answers stream
    out, and pynetdicom aborted a C-FIND or C-MOVE that ran longer than its 60 s timeout right after
    the final answer (DCMTK reported it failed; an outside audit, 2026-12-05)."""
    with contextlib.suppress(AttributeError):
        assoc.dul._idle_timer.restart()


def _without_bulk_data(attrs: dict[str, Any]) -> dict[str, Any]:
    """DICOM JSON ``attrs`` without the attributes whose value is a ``BulkDataURI`` (at any depth:
    an icon's pixel data inside a returned sequence), which a C-FIND answer cannot carry.

    >>> _without_bulk_data({"00880200": {"vr": "SQ", "Value": [{"7FE00010": {"vr": "OW", "BulkDataURI": "u"},
    ...                                                         "00280010": {"vr": "US", "Value": [64]}}]}})
    {'00880200': {'vr': 'SQ', 'Value': [{'00280010': {'vr': 'US', 'Value': [64]}}]}}
    """
    out: dict[str, Any] = {}
    for tag, attr in attrs.items():
        if not isinstance(attr, dict) or "BulkDataURI" in attr:
            continue
        if attr.get("vr") == "SQ" and attr.get("Value"):
            attr = {**attr, "Value": [_without_bulk_data(item) if isinstance(item, dict) else item
                                      for item in attr["Value"]]}  # fmt: skip
        out[tag] = attr
    return out


def mend_retrieve_response(assoc: Any, response: Any) -> None:
    """Mend a C-GET or C-MOVE ``response`` pynetdicom is about to send on ``assoc``:

    * a final one (not pending, not a cancel) goes without Number of Remaining Sub-operations
      (PS3.4 C.4.2.1.6, C.4.3.1.6): pynetdicom kept its last pending response's (58 remaining
      beside 59 failed of 64 in a 0xA702: an outside re-check, 2026-12-05);
    * the 0xA801 "Move Destination unknown" it sends when it could not associate with a known
      ``--dimse-peer`` (down, refusing) becomes 0xA702 with a comment naming it, as DCMTK's
      dcmqrscp answers (operators went looking at the AE configuration: an outside audit).
    """
    if type(response).__name__ in ("C_MOVE", "C_GET") and response.Status not in (None, 0xFF00, 0xFF01, 0xFE00):
        response.NumberOfRemainingSuboperations = None
    _without_an_empty_failed_list(response)
    peer = getattr(assoc, "medcodec_move_peer", None)
    if peer and type(response).__name__ == "C_MOVE" and response.Status == 0xA801:
        log.warning("C-MOVE: the destination %s could not be reached", peer)
        response.Status = _SUBOPERATIONS_STOPPED
        response.ErrorComment = error_comment(f"the destination {peer} could not be reached")


#: An Identifier holding nothing but an empty Failed SOP Instance UID List, in the two encodings a
#: Q/R context can have (Implicit and Explicit VR Little Endian).
_EMPTY_FAILED_LIST = (b"\x08\x00\x58\x00\x00\x00\x00\x00", b"\x08\x00\x58\x00UI\x00\x00")


def _without_an_empty_failed_list(response: Any) -> None:
    """A final, cancel or warning C-GET / C-MOVE response whose Identifier is an empty Failed SOP
    Instance UID List goes without the Identifier (PS3.4 C.4.3.1.3.1 asks for the list when
    sub-operations failed): pynetdicom adds one to every such response, and DCMTK's ``getscu``,
    which does not read it, found its P-DATA at the release and aborted after every refused or
    cancelled C-GET (an outside check of the conformance statement, 2026-12-05). A refusal before
    any sub-operation (nothing completed, warned or listed) counts no failed one either: pynetdicom
    counted the one it had to be told would come."""
    if type(response).__name__ not in ("C_MOVE", "C_GET") or response.Status in (None, 0xFF00, 0xFF01):
        return
    identifier = getattr(response, "Identifier", None)
    data = identifier.getvalue() if identifier is not None and hasattr(identifier, "getvalue") else None
    if data not in _EMPTY_FAILED_LIST:
        return
    response.Identifier = None
    if response.Status != 0xFE00 and not (
        response.NumberOfCompletedSuboperations or response.NumberOfWarningSuboperations
    ):
        response.NumberOfFailedSuboperations = 0


def keep_responses(assoc: Any) -> None:
    """Make the requestor association ``assoc`` give a response its reactor thread takes off the
    DIMSE queue back to the queue, for the ``send_c_store`` waiting for it.

    pynetdicom 3.0 pauses the reactor while a ``send_*`` waits, but the handshake has a window:
    the reactor may pass its checkpoint just as the sender clears it, read the C-STORE response
    first and drop it as an "unexpected C-STORE service message". The sender then waited out the
    DIMSE timeout and the association was aborted: a C-MOVE stalled 30 s and failed 55 of 64
    instances, once in 16 moves of an outside audit's soak (2026-12-05). The reactor of an
    association medcodec requests only sends: it never has a response of its own to serve."""
    serve = assoc._serve_request

    def serve_request(msg: Any, context_id: int) -> None:
        if not msg.is_valid_request and msg.is_valid_response:
            assoc.dimse.msg_queue.put((context_id, msg))
            return
        serve(msg, context_id)

    assoc._serve_request = serve_request


def _ae_title(value: Any) -> str:
    return str(value.decode(errors="replace") if isinstance(value, bytes) else value or "").strip()


def _stored(status: Any) -> bool:
    """Whether a C-STORE response status says the instance was stored (success or a warning)."""
    from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS

    return status is not None and STORAGE_SERVICE_CLASS_STATUS.get(int(status), ("Failure",))[0] in (
        "Success", "Warning")  # fmt: skip


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


def qr_service(
    store: Any,
    *,
    ae_title: str,
    peers: Mapping[str, tuple[str, int]],
    open_to_all: bool,
    pool: Any = None,
    tls_peers: Mapping[str, Any] | None = None,
) -> _QR:
    """The Query/Retrieve SCP over ``store``: its pynetdicom event handlers are ``.handlers()``,
    and :func:`refuse_move` takes it. ``tls_peers``: the ``ssl.SSLContext`` of each C-MOVE
    destination reached over DICOM TLS (:func:`.dicom_tls.client_context`)."""
    return _QR(store, ae_title=ae_title, peers=peers, open_to_all=open_to_all, pool=pool, tls_peers=tls_peers)


def qr_handlers(
    store: Any,
    *,
    ae_title: str,
    peers: Mapping[str, tuple[str, int]],
    open_to_all: bool,
    pool: Any = None,
) -> list[tuple[Any, Any]]:
    """pynetdicom event handlers for C-FIND, C-GET and C-MOVE over ``store``."""
    return qr_service(store, ae_title=ae_title, peers=peers, open_to_all=open_to_all, pool=pool).handlers()
