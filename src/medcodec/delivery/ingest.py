"""Ingest: DICOM files in, originals stored byte for byte, catalog rows, duplicate/conflict rules.

Flow of one file (:func:`ingest_bytes`, also what STOW-RS and C-STORE call)::

    bytes ─ parse header (pydicom) ─ UIDs checked (PS3.5 §9.1) ─ catalog lookup by SOP Instance UID
          ├─ same sha256 stored already ─────────────▶ "duplicate" (nothing written)
          ├─ other bytes, the same instance ─────────▶ "duplicate" (another file meta, or the
          │                                              same pixels in another syntax)
          ├─ other content under that UID ───────────▶ "conflict"  (nothing written, reported)
          └─ new: pixel statistics (when a preset can compress it) and every catalog value,
             then the object written atomically (content-addressed), then one catalog
             transaction (patient, study, series, instance; the study's archives
             invalidated) ──▶ "stored" (with a warning when the study is stored for another
             patient); the object is removed again on any failure of the transaction

Every object is stored, whatever it is: images the presets cannot compress (colour
ultrasound, palette colour), structured reports, dose reports, presentation states. Only
files that are not DICOM (or lack the identifying UIDs) are refused, and reported.

:func:`ingest` expands paths with :func:`medcodec.dicom.iter_sources` (files, folders,
ZIPs, DICOMDIRs), ingests one file at a time (bounded memory), then pre-computes the default
presets of the studies it touched (unless ``precompress=False``).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from pydicom import dcmread
from pydicom.charset import python_encoding
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.pixels import pixel_array
from pydicom.uid import UID

from ..dicom import ZipMember, iter_sources, read_image
from ..dicom._lenient import source_values_as_is
from ..dicom.limits import check_file_size
from ..dicom.mapping import dataset_padding, value_stats
from ..dicom.sources import (
    SNIFF_BYTES,
    dicomdir_records_refused,
    is_store_folder,
    looks_like_dicom,
    open_regular_file,
    walk,
    walk_dirs,
    zip_members_left_out,
)
from ..errors import (
    CodecError,
    DeliveryError,
    DicomError,
    InputNotFoundError,
    InvalidUidError,
    MismatchedUidError,
    NotDicomError,
    StoreFullError,
)
from ..warnfilter import filtered
from .catalog import InstanceRecord, now, plain_da, plain_tm
from .catalog import patient_key as catalog_patient_key
from .header import (
    check_complete,
    element_json,
    header_json,
    lacks_pixels,
    pixel_data_tag,
    read_header,
    stored_syntax,
)
from .objects import is_full
from .uids import validate_uid
from .zipstream import crc32

__all__ = ["InstanceOutcome", "IngestReport", "ingest", "ingest_bytes", "object_path"]

log = logging.getLogger(__name__)

_STUDY_KEYWORDS = (
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "StudyDescription",
    "TimezoneOffsetFromUTC",
)
_SERIES_KEYWORDS = (
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "SeriesInstanceUID",
    "BodyPartExamined",
    "SeriesDate",
    "SeriesTime",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "Laterality",
)


@dataclass(frozen=True, slots=True)
class InstanceOutcome:
    """What happened to one file.

    ``status``: ``"stored"``, ``"duplicate"`` (the same bytes, or the same instance in another
    file, were stored already), ``"conflict"`` (other content is stored under this SOP Instance
    UID; nothing changed),
    ``message`` starts ``"warning:"`` for an instance stored into a study that is stored for
    another patient (PatientID + issuer): filed, nothing of a study is lost, but said.
    ``"rejected"`` (a file given that is not DICOM, missing/invalid UIDs; ``message`` says why)
    or ``"skipped"`` (a file inside an input folder that is not DICOM: reported, not stored).
    """

    status: str
    source: str
    sop_uid: str = ""
    series_uid: str = ""
    study_uid: str = ""
    sha256: str = ""
    message: str = ""
    record: InstanceRecord | None = None


@dataclass
class IngestReport:
    """Outcome of :func:`ingest`: one :class:`InstanceOutcome` per file found, plus what was pre-computed."""

    outcomes: list[InstanceOutcome] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)
    precomputed: list[str] = field(default_factory=list)
    stopped: str = ""  # why ingest stopped early (store full), "" when it ran to the end

    def _count(self, status: str) -> list[InstanceOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def stored(self) -> list[InstanceOutcome]:
        return self._count("stored")

    @property
    def duplicates(self) -> list[InstanceOutcome]:
        return self._count("duplicate")

    @property
    def conflicts(self) -> list[InstanceOutcome]:
        return self._count("conflict")

    @property
    def rejected(self) -> list[InstanceOutcome]:
        return self._count("rejected")

    @property
    def skipped(self) -> list[InstanceOutcome]:
        return self._count("skipped")

    @property
    def ok(self) -> bool:
        """Nothing conflicted, was rejected, or was left out by an early stop, and the inputs held
        DICOM (skipped files beside them are fine; inputs of which nothing at all was read as DICOM
        are not: until 2026-12-03 a ZIP of ZIPs stored nothing and exited 0, an outside audit)."""
        if self.conflicts or self.rejected or self.stopped:
            return False
        return bool(self.stored or self.duplicates or not self.skipped)

    def summary(self) -> str:
        return (
            f"{len(self.stored)} stored, {len(self.duplicates)} duplicate, {len(self.conflicts)} conflict, "
            f"{len(self.rejected)} rejected"
            + (f", {len(self.skipped)} skipped (not inputs: listed)" if self.skipped else "")
            + f"; {len(self.studies)} {'study' if len(self.studies) == 1 else 'studies'}"
            + (f"; pre-computed {len(self.precomputed)}" if self.precomputed else "")
            + (f"; STOPPED: {self.stopped}" if self.stopped else "")
        )


#: The header reader (moved to :mod:`medcodec.delivery.header`; this name is kept for the service's STOW).
_parse = read_header


def object_path(sha256: str) -> str:
    """Where an original with this sha256 lives, relative to the store root."""
    return f"objects/sha256/{sha256[:2]}/{sha256}.dcm"


# --------------------------------------------------------------------------- one file


def _text(ds: Dataset, keyword: str) -> str:
    with source_values_as_is():
        value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


#: An IS value's range (PS3.5 §6.2); a catalog column leaves what lies outside empty.
_IS_RANGE = (-(2**31), 2**31 - 1)


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        with source_values_as_is():
            value = ds.get(keyword)
        number = None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None
    return number if number is None or _IS_RANGE[0] <= number <= _IS_RANGE[1] else None


def _float(ds: Dataset, keyword: str) -> float | None:
    try:
        with source_values_as_is():
            value = ds.get(keyword)
        if value in (None, ""):
            return None
        f = float(value)
        return f if math.isfinite(f) else None
    except (TypeError, ValueError):
        return None


def _json_of(ds: Dataset, keywords: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with filtered():
        for keyword in keywords:
            if keyword in ds:
                element = ds[keyword]
                try:
                    out[f"{element.tag:08X}"] = element_json(element)
                except Exception:
                    continue  # a value pydicom cannot express in JSON is left out of the query index
    return out


def _stats(data: bytes, source: str, ds: Dataset) -> tuple[dict[str, Any], str]:
    """Pixel description and value statistics for a compressible image, or the reason it is not one."""
    try:
        image = read_image(data)
    except DicomError as exc:
        return {}, f"{type(exc).__name__}: {str(exc).removeprefix('<bytes>: ')}"
    except CodecError as exc:
        return {}, f"{type(exc).__name__}: {exc}"
    spec = image.spec
    padding = dataset_padding(image.dataset, bits_stored=spec.bits_stored, signed=spec.signed)
    lo, hi, tlo, thi, below = value_stats(image.pixels, spec, padding)
    info: dict[str, Any] = {
        "px_min": lo,
        "px_max": hi,
        "px_tissue_min": tlo,  # the content range (CT: at or above -1024 HU; else outside declared padding)
        "px_tissue_max": thi,
        "px_below_floor": below,
    }
    info["bits_stored"] = spec.bits_stored
    info["pixel_representation"] = int(spec.signed)
    info["rescale_slope"] = float(spec.rescale_slope)
    info["rescale_intercept"] = float(spec.rescale_intercept)
    info["position"] = image.position
    if spec.extra.get("rescale_varies_per_frame"):
        return info, "per-frame Rescale Slope/Intercept differ: not supported for lossy DICOM"
    if "ModalityLUTSequence" in image.dataset:
        return info, "(0028,3000) Modality LUT Sequence: values cannot be remapped"
    return info, ""


def ingest_bytes(
    store: Any, data: bytes, *, source: str = "<bytes>", expect: tuple[str, str] | None = None
) -> InstanceOutcome:
    """Ingest one DICOM file (see the module docstring).

    Parameters
    ----------
    store
        A :class:`~medcodec.delivery.Store`.
    data
        The file's bytes (PS3.10, or a preamble-less dataset).
    source
        Where it came from (a path, ``"stow"``, a calling AE title), kept in the catalog.
    expect
        (SOP Class UID, SOP Instance UID) the sender said it sends (a C-STORE request's Affected ones;
        an empty one is not checked): a data set that is another is refused, nothing stored.

    Returns
    -------
    InstanceOutcome
        ``"stored"``, ``"duplicate"`` or ``"conflict"`` (never overwritten).

    Raises
    ------
    NotDicomError
        Not a DICOM file, or no SOP Class UID / SOP Instance UID.
    InvalidUidError
        A Study/Series/SOP Instance or SOP Class UID that is not a valid UID.
    MismatchedUidError
        The data set is not the one ``expect`` names.
    StoreFullError
        No space left; nothing of this file was kept.
    """
    source = _printable(source)
    try:
        return _ingest_bytes(store, bytes(data), source, expect)
    except RecursionError:  # data elements nested thousands deep: one refused file, not a stopped batch
        raise NotDicomError(
            f"{source}: sequences nested too deep to read or catalog (Python's recursion limit): not stored"
        ) from None


def _ingest_bytes(store: Any, data: bytes, source: str, expect: tuple[str, str] | None = None) -> InstanceOutcome:
    """:func:`ingest_bytes` of bytes and a printable source."""
    ds = read_header(data, source)
    uids = {}
    for keyword, what in (
        ("StudyInstanceUID", "Study Instance UID"),
        ("SeriesInstanceUID", "Series Instance UID"),
        ("SOPInstanceUID", "SOP Instance UID"),
        ("SOPClassUID", "SOP Class UID"),
    ):
        value = _text(ds, keyword)
        if not value:
            raise NotDicomError(f"{source}: ({what}) is missing: cannot catalog the object")
        uids[keyword] = validate_uid(value, what=f"{source}: {what}")
    if expect is not None:  # PS3.4 B.2.2: a C-STORE succeeds for the instance its request names
        for said, keyword, what in ((expect[0], "SOPClassUID", "class"), (expect[1], "SOPInstanceUID", "instance")):
            if said and str(said).strip() != uids[keyword]:
                raise MismatchedUidError(
                    f"{source}: not the SOP {what} the request names ({str(said).strip()}): the data set is "
                    f"{uids[keyword]}; not stored"
                )
    check_complete(data, ds, source)  # an interrupted copy is refused, not stored (it would block the whole file)
    sha = hashlib.sha256(data).hexdigest()
    base: dict[str, Any] = {
        "source": source,
        "sop_uid": uids["SOPInstanceUID"],
        "series_uid": uids["SeriesInstanceUID"],
        "study_uid": uids["StudyInstanceUID"],
        "sha256": sha,
    }
    existing = store.catalog.get_instance(uids["SOPInstanceUID"])
    if existing is not None:
        return _known(store, existing, base, data)
    original = _own_copy_of(store, ds)
    if original is not None:
        said = f"a lossy copy this store makes of its instance {original.sop_uid}: not stored again"
        return InstanceOutcome(status="duplicate", record=original, message=said, **base)

    info, reason = _stats(data, source, ds)
    # a preamble-less file's by its encoding; a meta value that is no UID at all (markup, spaces)
    # would reach the catalog, the X-Transfer-Syntax header and the viewer's table: refused
    transfer_syntax = validate_uid(stored_syntax(ds), what=f"{source}: Transfer Syntax UID (0002,0010)")
    path = object_path(sha)
    t = now()
    patient_id, issuer = _text(ds, "PatientID")[:64], _text(ds, "IssuerOfPatientID")[:64]
    patient_key = catalog_patient_key(patient_id, issuer, uids["StudyInstanceUID"])
    study_attrs = _json_of(ds, _STUDY_KEYWORDS)
    series_attrs = _json_of(ds, _SERIES_KEYWORDS)
    instance = {
        "sop_uid": uids["SOPInstanceUID"],
        "series_uid": uids["SeriesInstanceUID"],
        "study_uid": uids["StudyInstanceUID"],
        "sop_class_uid": uids["SOPClassUID"],
        "transfer_syntax_uid": transfer_syntax,
        "instance_number": _int(ds, "InstanceNumber"),
        "position": info.get("position"),
        "modality": _text(ds, "Modality")[:16],
        "rows": _int(ds, "Rows"),
        "columns": _int(ds, "Columns"),
        "frames": _int(ds, "NumberOfFrames") or (1 if "Rows" in ds else None),
        "bits_allocated": _int(ds, "BitsAllocated"),
        "bits_stored": info.get("bits_stored", _int(ds, "BitsStored")),
        "pixel_representation": info.get("pixel_representation", _int(ds, "PixelRepresentation")),
        "photometric": _text(ds, "PhotometricInterpretation")[:16],
        "samples_per_pixel": _int(ds, "SamplesPerPixel"),
        "rescale_slope": info.get("rescale_slope", _float(ds, "RescaleSlope")),
        "rescale_intercept": info.get("rescale_intercept", _float(ds, "RescaleIntercept")),
        "px_min": info.get("px_min"),
        "px_max": info.get("px_max"),
        "px_tissue_min": info.get("px_tissue_min"),
        "px_tissue_max": info.get("px_tissue_max"),
        "px_below_floor": info.get("px_below_floor"),
        "compressible": bool(info) and not reason,
        "passthrough_reason": reason[:512],
        "sha256": sha,
        "size": len(data),
        "path": path,
        "source": source[:1024],
        "ingested_at": t,
        "header": _dumps(header_json(ds, pixel_data_tag(ds))),
    }
    created = not store.objects.exists(path)  # written only once everything above has been read
    if created:
        store.objects.put(path, data)
    dropped: list[str] = []  # the study's archives this instance makes stale
    try:
        status, found = store.catalog.add_instance(
            patient={
                "patient_key": patient_key,
                "patient_id": patient_id,
                "patient_name": _text(ds, "PatientName")[:324],
                "birth_date": plain_da(_text(ds, "PatientBirthDate"))[:16],
                "sex": _text(ds, "PatientSex")[:16],
            },
            study={
                "study_uid": uids["StudyInstanceUID"],
                "patient_key": patient_key,
                "study_date": plain_da(_text(ds, "StudyDate"))[:16],
                "study_time": plain_tm(_text(ds, "StudyTime"))[:32],
                "accession_number": _text(ds, "AccessionNumber")[:64],
                "study_id": _text(ds, "StudyID")[:64],
                "study_description": _text(ds, "StudyDescription")[:256],
                "referring_physician_name": _text(ds, "ReferringPhysicianName")[:324],
                "attrs": _dumps(study_attrs),
                "updated_at": t,
            },
            series_row={
                "series_uid": uids["SeriesInstanceUID"],
                "study_uid": uids["StudyInstanceUID"],
                "modality": _text(ds, "Modality")[:16],
                "series_number": _int(ds, "SeriesNumber"),
                "series_description": _text(ds, "SeriesDescription")[:256],
                "attrs": _dumps(series_attrs),
            },
            instance=instance,
            dropped=dropped,
            crc32=crc32(data),  # the original preset's ZIP names it before the file (.assembled)
        )
    except Exception as exc:
        if created:  # no catalog row refers to it: an orphan otherwise (`store check`)
            _remove_quietly(store, path)
        if isinstance(exc, StoreFullError):
            raise
        if is_full(exc):
            raise StoreFullError(28, f"{source}: no space left for the catalog; nothing of this file was kept") from exc
        if isinstance(exc, CodecError):
            raise
        if isinstance(exc, (sa.exc.OperationalError, OSError)):  # the catalog or its disk, not this file
            why = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
            raise DeliveryError(
                f"{source}: the catalog cannot take the object now ({why}); nothing of it was kept"
            ) from exc
        raise DicomError(f"{source}: cannot catalog the object: {type(exc).__name__}: {exc}") from exc
    warning = ""
    if status in ("stored", "stored-other-patient"):
        warning = _charset_note(ds, source)
        if warning:
            log.warning("%s", warning)
    if status == "stored-other-patient":  # stored (nothing of a study is lost), said
        theirs, mine = patient_label(str(found)), patient_label(patient_key)
        issuer_only = theirs.split(" (issuer")[0] == mine.split(" (issuer")[0]
        other = (
            f"warning: {source}: study {uids['StudyInstanceUID']} is stored for {theirs}, "
            f"this instance has {mine}{' (the same Patient ID, another issuer)' if issuer_only else ''}: "
            "filed into the study, which keeps its patient (check the patient, or the Study UID)"
        )
        log.warning("%s", other)
        status, warning = "stored", other + (f"\n{warning}" if warning else "")
    if status != "stored":
        if created and status == "conflict":  # another writer stored this SOP Instance meanwhile, with
            _remove_quietly(store, path)  # other bytes (a "duplicate" shares this object: it stays)
        assert isinstance(found, InstanceRecord)
        return _known(store, found, base, data)
    if not store.objects.exists(path):  # a deletion or gc of the same bytes moved it away meanwhile
        store.objects.put(path, data)  # (Store.remove_unreferenced): the row is ours, so is the object
    if dropped:  # the study's old archives: nothing serves them now (an outside audit, 2026-12-02)
        _remove_archives_quietly(store, dropped)
    record = store.catalog.get_instance(uids["SOPInstanceUID"])
    return InstanceOutcome(status="stored", record=record, message=warning, **base)


#: Catalogued text checked for characters its declared character set could not give (U+FFFD).
_CHARSET_CHECKED = ("PatientName", "ReferringPhysicianName", "StudyDescription", "SeriesDescription")


def _charset_note(ds: Dataset, source: str) -> str:
    """A ``warning:`` line naming ``source`` when its text cannot be read as it declares (PS3.5
    §6.1.2.3): a Specific Character Set term nobody defines, or text not valid in its set (read
    with U+FFFD, so a name search does not find it as written), else ``""``. pydicom's own
    warnings say it without the file, once per element read (an outside audit, 2026-12-02)."""
    notes = []
    with source_values_as_is(), filtered():
        terms = ds.get("SpecificCharacterSet") or []
        terms = [terms] if isinstance(terms, str) else list(terms)
        unknown = [str(t) for t in terms if str(t).strip() not in python_encoding]
        if unknown:
            notes.append(f"Specific Character Set {', '.join(map(repr, unknown))} is not a defined term")
        bad = [k for k in _CHARSET_CHECKED if "\ufffd" in _text(ds, k)]
    if bad:
        notes.append(f"{', '.join(bad)} not valid in the declared character set (read with U+FFFD)")
    return f"warning: {source}: {'; '.join(notes)}" if notes else ""


def patient_label(key: str) -> str:
    """A ``patients`` row key (:func:`.catalog.patient_key`) for people: ``Patient ID 'P1' (issuer
    'X')``, or ``no Patient ID`` for the key of a study without one (its study UID is not a patient).

    >>> patient_label("P1\\\\"), patient_label("P1\\\\HOSP"), patient_label("\\\\\\\\1.2.3")
    ("Patient ID 'P1'", "Patient ID 'P1' (issuer 'HOSP')", 'no Patient ID')
    """
    if key.startswith("\\"):
        return "no Patient ID"
    patient_id, _, issuer = key.partition("\\")
    return f"Patient ID {patient_id!r}" + (f" (issuer {issuer!r})" if issuer else "")


def _remove_quietly(store: Any, path: str) -> None:
    try:
        store.objects.remove(path)
    except Exception as exc:  # (left to `store gc`, which finds objects no row refers to)
        log.warning("could not remove %s after a failed ingest: %s", path, exc)


def _remove_archives_quietly(store: Any, paths: list[str]) -> None:
    """Remove archive files no catalog row references any more (the move-aside protocol of
    :meth:`.Store.remove_unreferenced`: one rebuilt meanwhile with the same bytes stays). A reader
    streaming one from a local store keeps its open file; from an object store it may be cut and
    resumes against the new archive (If-Range)."""
    try:
        store.remove_unreferenced(sorted(set(paths)))
    except Exception as exc:  # (left to `store gc`)
        log.warning("could not remove %d superseded archive(s): %s", len(paths), exc)


def _own_copy_of(store: Any, ds: Any) -> InstanceRecord | None:
    """The stored original of which ``ds`` is a lossy copy this store makes (its Derivation
    Description is medcodec's and its Source Image Sequence names an instance the store holds),
    else None. Such a copy sent back (a PACS that forwards what it receives) was stored beside its
    original, and every WADO-RS and archive of the study then held the image twice, 200 files for
    100 UIDs (an outside audit with Orthanc, 2026-12-05)."""
    from .presets import LOSSY_MARK

    if LOSSY_MARK not in _text(ds, "DerivationDescription") or not _text(ds, "SOPInstanceUID").startswith("2.25."):
        return None
    for item in ds.get("SourceImageSequence", None) or []:
        uid = str(item.get("ReferencedSOPInstanceUID", "") or "").strip()
        found = store.catalog.get_instance(uid) if uid else None
        if found is not None and _same_subject(store, found, ds):
            return found
    return None


#: What a copy shares with its original unless someone changed it after us: the study, and the
#: patient and study as a PACS reconciles them. A copy whose patient or study was corrected (an
#: Orthanc "modify": new Study Instance UID, another name) was taken for ours and dropped as a
#: duplicate, nothing stored, nothing said (the re-audit, 2026-12-05): it is a new instance.
_SUBJECT_TAGS = {
    "PatientID": "00100020",
    "PatientName": "00100010",
    "PatientBirthDate": "00100030",
    "IssuerOfPatientID": "00100021",
    "AccessionNumber": "00080050",
    "StudyDescription": "00081030",
}


def _same_subject(store: Any, original: InstanceRecord, ds: Any) -> bool:
    """Whether ``ds`` names the study, patient and accession ``original`` is stored with."""
    if _text(ds, "StudyInstanceUID") != original.study_uid:
        return False
    header = json.loads(store.catalog.header(original.sop_uid))
    for keyword, tag in _SUBJECT_TAGS.items():
        values = (header.get(tag) or {}).get("Value") or [""]
        first = values[0]
        stored = str(first.get("Alphabetic", "") if isinstance(first, dict) else first).strip()
        given = _text(ds, keyword)
        if (given.split("=")[0].strip() if keyword == "PatientName" else given) != stored:  # PN: its alphabetic group
            return False
    return True


def _known(store: Any, existing: InstanceRecord, base: dict[str, Any], data: bytes) -> InstanceOutcome:
    if existing.sha256 == base["sha256"]:
        if not store.objects.exists(existing.path):
            # the catalog row outlived its object (a `store gc` beside an ingest, a lost disk): the
            # same bytes sent again repair it, where a 'duplicate' used to leave it missing for good
            store.objects.put(existing.path, data)
            repaired = "already catalogued; its missing object was written again"
            return InstanceOutcome(status="duplicate", record=existing, message=repaired, **base)
        return InstanceOutcome(status="duplicate", record=existing, message="already stored (same sha256)", **base)
    same = _same_instance(store, existing, data)
    if same:
        return InstanceOutcome(status="duplicate", record=existing, message=f"already stored ({same})", **base)
    return InstanceOutcome(
        status="conflict",
        record=existing,
        **base,
        message=(
            f"{base['source']}: SOP Instance UID {existing.sop_uid} is stored already with other content "
            f"(sha256 {existing.sha256[:16]}..., from {existing.source}); not overwritten"
            + _incomplete_hint(store, existing)
        ),
    )


def _incomplete_hint(store: Any, existing: InstanceRecord) -> str:
    """What to do when the stored copy is an incomplete file (a store filled before 2026-12-04, when
    ingest still took them): the command that deletes it, so that the whole file can go in."""
    try:
        with store.open_original(existing) as fh:
            stored = fh.read()
        header = read_header(stored, existing.sop_uid)
        check_complete(stored, header, existing.sop_uid)
        if lacks_pixels(header):  # a header-only copy (cut before its pixels?) and a file that has them
            return (
                "; the stored copy declares an image but holds no Pixel Data (a copy cut before it?): if this "
                f"file is the whole one, delete that copy (medcodec store delete --study {existing.study_uid} "
                f"--instance {existing.sop_uid}) and send this file again"
            )
    except NotDicomError as exc:
        why = str(exc).removeprefix(f"{existing.sop_uid}: ").split(": not stored", 1)[0]
        return (
            f"; the stored copy is {why}: delete it (medcodec store delete --study {existing.study_uid} "
            f"--instance {existing.sop_uid}) and send this file again"
        )
    except (CodecError, OSError):  # unreadable: the conflict's message stands alone
        pass
    return ""


#: Left out when two copies of an instance are compared (:func:`_same_instance`): the lossy history a
#: decompressed copy may state that its compressed original left implicit, and Data Set Trailing
#: Padding (FFFC,FFFC), which a writer may drop (pydicom's CT_small ends with some).
_NOT_COMPARED = frozenset([0x00282110, 0x00282112, 0x00282114, 0xFFFCFFFC])

#: What a lossless transcode may rewrite of the pixel description while every modality value stays,
#: each under the rule of :func:`_description_rewritten`: Bits Stored / High Bit (a codec that codes
#: its container's depth), Pixel Representation, the rescale and Rescale Type (a signed series
#: shifted for a syntax without a sign, its intercept moved; none -> "US" for a series that had no
#: rescale), Smallest / Largest Image Pixel Value (dropped: their VR follows the sign), the Real World
#: Value Mapping's stored-value range (moved with the samples). Two copies that differ only so are
#: the same instance when their pixels times the rescale agree (an outside audit of 2026-12-03 had
#: medcodec's own .80 / .70 / .201 copies refused as conflicts; its re-check found the rule too wide).
_PIXEL_DESCRIPTION = frozenset(
    [0x00280101, 0x00280102, 0x00280103, 0x00281052, 0x00281053, 0x00281054, 0x00280106, 0x00280107, 0x00409096]
)
_GROUPS = frozenset([0x52009229, 0x52009230])  # Shared / Per-frame Functional Groups Sequence
_RESCALE = ("RescaleIntercept", "RescaleSlope", "RescaleType")
_RWV_RANGE = (
    "RealWorldValueFirstValueMapped",
    "RealWorldValueLastValueMapped",
    "DoubleFloatRealWorldValueFirstValueMapped",
    "DoubleFloatRealWorldValueLastValueMapped",
    "RealWorldValueIntercept",
)


def _number(item: Any, keyword: str, default: float | None) -> float | None:
    value = item.get(keyword) if item is not None else None
    if value is None or str(value).strip() == "":
        return default
    return float(value)


def _rescale_of(item: Any) -> tuple[float, float] | None:
    """(slope, intercept) of ``item``'s Pixel Value Transformation, or ``None``."""
    pvt = item.get("PixelValueTransformationSequence") if item is not None else None
    if not pvt:
        return None
    return _number(pvt[0], "RescaleSlope", 1.0) or 1.0, _number(pvt[0], "RescaleIntercept", 0.0) or 0.0


def _rescale_type_ok(a: Any, b: Any, *, added: bool = False) -> bool:
    """Rescale Type equal, or (``added``) "US" on the side whose rescale a transcode added, the other
    side having no rescale at all (the only Rescale Type a lossless transcode writes)."""
    ta, tb = str(a.get("RescaleType", "") or "").strip(), str(b.get("RescaleType", "") or "").strip()
    if ta == tb:
        return True
    if not added or {ta, tb} != {"", "US"}:
        return False
    bare = a if ta == "" else b
    return "RescaleIntercept" not in bare and "RescaleSlope" not in bare


def _shift(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float | None:
    """The stored-value shift from rescale ``a`` to ``b`` (same slope, intercept moved by -k x slope)."""
    a, b = a or (1.0, 0.0), b or (1.0, 0.0)
    if a[0] != b[0]:
        return None
    return (a[1] - b[1]) / a[0]


def _mappings_shifted(a: Any, b: Any, k: float | None) -> bool:
    """Real World Value Mapping sequences ``a`` and ``b`` hold the same mappings, ``b``'s stored-value
    range moved by the samples' shift ``k`` (first and last by ``k``, the intercept by -k x slope)."""
    a, b = list(a or []), list(b or [])
    if len(a) != len(b):
        return False
    for ia, ib in zip(a, b):
        ra, rb = copy.deepcopy(ia), copy.deepcopy(ib)
        for item in (ra, rb):
            for keyword in _RWV_RANGE:
                if keyword in item:
                    delattr(item, keyword)
        if ra != rb:
            return False
        if k is None:
            if ia != ib:
                return False
            continue
        for first, last in (_RWV_RANGE[0:2], _RWV_RANGE[2:4]):
            for keyword in (first, last):
                va, vb = _number(ia, keyword, None), _number(ib, keyword, None)
                if (va is None) != (vb is None) or (va is not None and vb is not None and vb - va != k):
                    return False
        slope = _number(ia, "RealWorldValueSlope", 1.0) or 1.0
        ca, cb = _number(ia, "RealWorldValueIntercept", None), _number(ib, "RealWorldValueIntercept", None)
        if (ca is None) != (cb is None):
            return False
        if ca is not None and cb is not None and abs(cb - (ca - k * slope)) > 1e-9 * max(1.0, abs(ca)):
            return False
    return True


def _groups_rewritten(a: Any, b: Any, tag: int, top_shift: float | None) -> bool:
    """The functional groups ``tag`` of ``a`` and ``b`` differ at most as a lossless transcode
    rewrites them: each item's Pixel Value Transformation rescale (checked by the values), its Rescale
    Type (:func:`_rescale_type_ok`) and its Real World Value Mapping shifted with the samples."""
    sa, sb = a.get(tag), b.get(tag)
    if sa is None or sb is None:
        return sa is None and sb is None
    items_a, items_b = list(sa.value), list(sb.value)
    if len(items_a) != len(items_b):
        return False
    shared_a, shared_b = a.get("SharedFunctionalGroupsSequence"), b.get("SharedFunctionalGroupsSequence")
    shared_shift = _shift(_rescale_of(shared_a[0]), _rescale_of(shared_b[0])) if shared_a and shared_b else None
    if shared_shift is None or not (shared_a and _rescale_of(shared_a[0])):
        # the rescale per frame, a mapping shared: the frames' one shift (when they agree)
        frames_a = a.get("PerFrameFunctionalGroupsSequence") or []
        frames_b = b.get("PerFrameFunctionalGroupsSequence") or []
        shifts = {_shift(_rescale_of(fa), _rescale_of(fb)) for fa, fb in zip(frames_a, frames_b) if _rescale_of(fa)}
        shared_shift = shifts.pop() if len(shifts) == 1 else shared_shift
    for ia, ib in zip(items_a, items_b):
        ra, rb = copy.deepcopy(ia), copy.deepcopy(ib)
        for item in (ra, rb):
            for pvt in item.get("PixelValueTransformationSequence") or []:
                for keyword in _RESCALE:
                    if keyword in pvt:
                        delattr(pvt, keyword)
            if "RealWorldValueMappingSequence" in item:
                del item.RealWorldValueMappingSequence
        if ra != rb:
            return False
        pa, pb = ia.get("PixelValueTransformationSequence"), ib.get("PixelValueTransformationSequence")
        if (pa is None) != (pb is None) or (pa and pb and not _rescale_type_ok(pa[0], pb[0])):
            return False
        own = _shift(_rescale_of(ia), _rescale_of(ib)) if pa else None
        k = own if pa else shared_shift if shared_shift is not None else top_shift
        if not _mappings_shifted(ia.get("RealWorldValueMappingSequence"), ib.get("RealWorldValueMappingSequence"), k):
            return False
    return True


def _description_rewritten(a: Any, b: Any) -> bool:
    """``b``'s pixel description differs from ``a``'s at most as a lossless transcode rewrites it
    (:data:`_PIXEL_DESCRIPTION`; the values themselves are compared by the caller)."""
    for ds in (a, b):
        bits, high = ds.get("BitsStored"), ds.get("HighBit")
        if (bits, high) != (a.get("BitsStored"), a.get("HighBit")) and (
            bits is None or high is None or int(high) != int(bits) - 1
        ):
            return False
    if not _rescale_type_ok(a, b, added=True):
        return False
    top_a = (_number(a, "RescaleSlope", 1.0) or 1.0, _number(a, "RescaleIntercept", 0.0) or 0.0)
    top_b = (_number(b, "RescaleSlope", 1.0) or 1.0, _number(b, "RescaleIntercept", 0.0) or 0.0)
    grouped = any(
        _rescale_of(item) is not None
        for ds in (a, b)
        for seq in (ds.get("SharedFunctionalGroupsSequence") or [], ds.get("PerFrameFunctionalGroupsSequence") or [])
        for item in seq
    )
    if grouped and top_a != top_b:  # the values are read from the groups: the top level must not move
        return False
    top_shift = None if grouped else _shift(top_a, top_b)
    if not _mappings_shifted(a.get("RealWorldValueMappingSequence"), b.get("RealWorldValueMappingSequence"), top_shift):
        return False
    return all(_groups_rewritten(a, b, tag, top_shift) for tag in _GROUPS)


def _modality_values(ds: Any) -> Any:
    """Stored pixels times their rescale, as float64: per frame from the per-frame or shared
    functional groups of an enhanced object, else the top level's (1 and 0 when absent)."""
    values = np.asarray(pixel_array(ds), dtype=np.float64)
    frames = int(ds.get("NumberOfFrames") or 1)
    stack = values if frames > 1 and values.shape[0] == frames else values[None]  # (frames, ...)
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = _rescale_of(shared_seq[0]) if shared_seq else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    top = (_number(ds, "RescaleSlope", 1.0) or 1.0, _number(ds, "RescaleIntercept", 0.0) or 0.0)
    out = np.empty(stack.shape, np.float64)
    for k in range(stack.shape[0]):
        slope, intercept = (_rescale_of(per_frame[k]) if k < len(per_frame) else None) or shared or top
        out[k] = stack[k] * slope + intercept
    return out


#: Length to End (0008,0001): ACR-NEMA's byte count of the rest of the data set, retired like the
#: group lengths and, like them, a property of one encoding, not of the instance.
LENGTH_TO_END = 0x00080001


def _drop_group_lengths(ds: Dataset) -> None:
    """Delete the group length elements (gggg,0000) and Length to End (0008,0001) of a data set
    and of its sequences' items, in place. Outside the file meta they are retired (PS3.5 §7.2)
    and carry nothing of the instance but the size of one encoding of it: senders add or drop
    them (DCMTK's storescu drops group lengths), so they are no content to compare."""
    for elem in list(ds):
        if elem.tag.element == 0 or elem.tag == LENGTH_TO_END:
            del ds[elem.tag]
        elif elem.VR == "SQ" and elem.value:
            for item in elem.value:
                _drop_group_lengths(item)


def _same_element(x: Any, y: Any, encodings: Any) -> bool:
    """Whether two data elements of one tag hold the same value. Equal elements are; elements whose
    VR differs (a private element read as UN from Implicit VR, known as LO / SH... in Explicit VR;
    OB / OW Pixel Data) or sequences (which may hold such elements) are the same when they encode
    to the same Implicit VR Little Endian bytes, which carry no VR (an outside audit, 2026-12-04:
    a study re-sent in Implicit VR was a conflict for every private element)."""
    if x == y:
        return True
    if x is None or y is None or (x.VR == y.VR and x.VR not in ("UN", "SQ")):
        return False
    return _implicit_bytes(x, encodings) == _implicit_bytes(y, encodings)


def _implicit_bytes(elem: Any, encodings: Any) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_data_element(fp, elem, encodings)
    return fp.getvalue()


def _same_instance(store: Any, existing: InstanceRecord, data: bytes) -> str:
    """Why ``data`` is the instance stored as ``existing`` although its bytes differ, or ``""``:
    the same dataset with another file meta (a C-STORE SCP writes its own) or other group length
    or Length to End elements (retired: senders add or drop them, :func:`_drop_group_lengths`), the same
    attributes and the same decoded pixels in another transfer syntax (a copy retrieved
    decompressed and sent back), or a lossless transcode that rewrote the pixel description
    (:data:`_PIXEL_DESCRIPTION`) and kept every modality value. Anything that cannot be compared
    is not the same."""
    try:
        with store.objects.open(existing.path) as fh:
            stored = fh.read()
        with source_values_as_is(), filtered():
            a = dcmread(io.BytesIO(stored), force=True)
            b = dcmread(io.BytesIO(data), force=True)
            _drop_group_lengths(a)
            _drop_group_lengths(b)
            ts_a, ts_b = stored_syntax(a), stored_syntax(b)
            tags = {t for t in (*a.keys(), *b.keys()) if t.group != 0x0002 and t not in _NOT_COMPARED}
            pixel_tags = {t for t in tags if t.group == 0x7FE0}
            enc = a._character_set

            def same(t: Any) -> bool:
                return _same_element(a.get(t), b.get(t), enc)

            if ts_a == ts_b and all(same(t) for t in tags):
                return "the same dataset, another file meta or other group length or Length to End elements"
            if not all(same(t) for t in tags - pixel_tags - _PIXEL_DESCRIPTION - _GROUPS):
                return ""
            described = not all(same(t) for t in tags & (_PIXEL_DESCRIPTION | _GROUPS))
            if described and not _description_rewritten(a, b):
                return ""
            if not pixel_tags:
                return "" if described else "the same dataset in another transfer syntax"
            if described:
                if not np.array_equal(_modality_values(a), _modality_values(b)):
                    return ""
                return (f"the same modality values and attributes in {UID(ts_b).name} (pixel description "
                        f"rewritten by a lossless transcode), stored as {UID(ts_a).name}")  # fmt: skip
            if not np.array_equal(np.asarray(pixel_array(a)), np.asarray(pixel_array(b))):
                return ""
    except Exception as exc:  # (unreadable either way: reported as a conflict, as before)
        log.debug("cannot compare %s with the stored copy: %s: %s", existing.sop_uid, type(exc).__name__, exc)
        return ""
    return f"the same pixels and attributes in {UID(ts_b).name}, stored as {UID(ts_a).name}"


def reindex(store: Any, progress: Callable[[int, int], None] | None = None) -> int:
    """Re-read every stored original's header into the catalog (its DICOM JSON and the transfer
    syntax its bytes are in), where what the catalog keeps has changed since it was ingested;
    returns the instances updated. Since 2026-12-01 the header JSON names bulk data by URI (before:
    left out, ``""`` in sequences), and a preamble-less file's syntax is read off its bytes
    (before: Implicit VR Little Endian whatever it was). Since 2026-12-02 a study without a
    PatientID is a patient of its own (:meth:`~.catalog.Catalog.split_shared_patients`; each study
    moved counts as one update). Since 2026-12-03 each original's CRC-32 is recorded where it is
    missing (the ``original`` archive is assembled from them: :mod:`.assembled`), from an object
    whose sha256 is the catalog's. Nothing else of a row changes; an original that cannot be read
    is left as it is (``medcodec store check`` reports it).
    """
    total = store.catalog.instance_count()
    updated = 0
    crcs: dict[str, int] = {}  # found, not recorded yet
    for done, (sop_uid, rel, syntax, text, sha) in enumerate(store.catalog.header_rows(), 1):
        try:
            with store.objects.open(rel) as fh:
                data = fh.read()
            ds = read_header(data, sop_uid)
        except Exception:  # a missing or damaged object: check's business, not reindex's
            ds = None
        if ds is not None and not store.catalog.crc32s([sha]) and hashlib.sha256(data).hexdigest() == sha:
            crcs[sha] = crc32(data)
            if len(crcs) >= 500:
                store.catalog.put_crc32s(crcs)
                crcs.clear()
        if ds is not None:
            new_text, new_syntax = _dumps(header_json(ds, pixel_data_tag(ds))), stored_syntax(ds)
            if (new_text, new_syntax) != (text, syntax):
                store.catalog.update_header(sop_uid, new_text, new_syntax)
                updated += 1
        if progress is not None:
            progress(done, total)
    store.catalog.put_crc32s(crcs)
    return updated + store.catalog.split_shared_patients()


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# --------------------------------------------------------------------------- many files


def _printable(source: str) -> str:
    """``source`` as text any database and terminal take: a path whose bytes are not UTF-8 (a
    Latin-1 or Shift_JIS file name from a CD or a Windows share, which Python holds as lone
    surrogates) with those bytes as ``\\xNN``. Until 2026-12-02 such a file was rejected with
    the driver's UnicodeEncodeError (an outside audit).

    >>> _printable(os.fsdecode(b"M\\xfcller.dcm")), _printable("山田.dcm")
    ('M\\\\xfcller.dcm', '山田.dcm')
    """
    try:
        source.encode("utf-8")
        return source
    except UnicodeEncodeError:
        try:
            return source.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate that is no escaped byte
            return source.encode("utf-8", "backslashreplace").decode("ascii")


def _read_source(source: Any) -> tuple[bytes, str]:
    """The bytes of a file or ZIP member, after a look at its first bytes: one that cannot start a
    DICOM file is refused before the rest is read (:func:`medcodec.dicom.sources.looks_like_dicom`)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    name = source.name if isinstance(source, ZipMember) else str(source)
    refused = f"{name}: not a DICOM file (no DICM prefix, no DICOM element at its start)"
    try:
        if isinstance(source, ZipMember):
            if not looks_like_dicom(source.read_head(SNIFF_BYTES)):
                raise NotDicomError(refused)
            return source.read_bytes(), name
        with open_regular_file(source, name) as fh:  # one open: the rest read after the look
            check_file_size(os.fstat(fh.fileno()).st_size, path=name)  # read whole below: bounded
            head = fh.read(SNIFF_BYTES)
            if not looks_like_dicom(head):
                raise NotDicomError(refused)
            return head + fh.read(), name
    except OSError as exc:
        raise DicomError(f"cannot read: {exc}", path=name) from exc


def _expand(
    paths: Any, store_root: Path | None = None
) -> tuple[list[Any], list[tuple[str, str]], list[InstanceOutcome]]:
    """Sources to ingest (:func:`medcodec.dicom.iter_sources`); ``(path, why)`` of what the walk
    left out: files of input folders that are not DICOM or not regular files, medcodec stores
    met in a folder (the target ``store_root`` among them), ZIP members not read; and the inputs
    that cannot be expanded at all (an unreadable ZIP, a FIFO given), rejected: each reported,
    never silently dropped, and none stops the others."""
    items = [paths] if isinstance(paths, (str, os.PathLike, bytes, bytearray, memoryview, ZipMember)) else list(paths)
    sources: list[Any] = []
    skipped: list[tuple[str, str]] = []
    rejected: list[InstanceOutcome] = []
    for item in items:
        try:
            found = list(iter_sources(item))
        except DicomError as exc:  # InputNotFoundError (a path that does not exist) stays fatal
            if isinstance(exc, InputNotFoundError):
                raise
            name = str(item) if isinstance(item, (str, os.PathLike)) else "<input>"
            rejected.append(InstanceOutcome(status="rejected", source=name, message=str(exc)))
            continue
        sources.extend(found)
        if isinstance(item, (str, os.PathLike)):  # a DICOMDIR's records outside its file-set: refused, said
            rejected += [InstanceOutcome(status="rejected", source=where, message=why)
                         for where, why in dicomdir_records_refused(item, expanded=found)]  # fmt: skip
        archives = list(dict.fromkeys(s.archive for s in found if isinstance(s, ZipMember)))
        if isinstance(item, (str, os.PathLike)) and Path(item).suffix.lower() == ".zip" and Path(item).is_file():
            archives = list(dict.fromkeys([*archives, Path(item)]))  # one with no DICOM member is said too
        for archive in archives:
            skipped += _left_out_of(archive, read=any(isinstance(s, ZipMember) and s.archive == archive for s in found))
        if not isinstance(item, (str, os.PathLike)) or not Path(item).is_dir():
            continue
        taken = {Path(s) for s in found if isinstance(s, (str, os.PathLike))}
        taken |= set(archives)
        for root, dirs, files in walk(item):
            for d in dirs:
                if is_store_folder(Path(root, d)):
                    own = store_root is not None and Path(root, d).resolve() == store_root
                    what = "the store being ingested into" if own else "a medcodec store"
                    skipped.append((str(Path(root, d)), f"{what}: its files are not inputs"))
                elif d.startswith(".") or d == "__MACOSX":  # listed, not walked (was dropped unsaid: an audit)
                    skipped.append((str(Path(root, d)), "a hidden folder: not walked"))
            dirs[:] = walk_dirs(dirs, root)
            for name in files:
                path = Path(root, name)
                if name.upper() == "DICOMDIR" or path in taken:
                    continue
                if name.startswith("."):
                    skipped.append((str(path), "a hidden file"))
                elif path.suffix.lower() == ".zip" and path.is_file():
                    skipped += _left_out_of(path, read=False)
                else:
                    why = "not DICOM" if path.is_file() else "not a regular file (a FIFO, socket or broken link)"
                    skipped.append((str(path), why))
    return sources, sorted(skipped), rejected


def _left_out_of(archive: Path, *, read: bool) -> list[tuple[str, str]]:
    """``(where, why)`` of what a ZIP holds that is not read; for one of which nothing was read
    (``read`` False), at least the ZIP itself, so that it is never dropped in silence."""
    try:
        left = [(f"{archive}::{name}", why) for name, why in zip_members_left_out(archive)]
    except DicomError as exc:
        return [(str(archive), f"not read: {exc}")]
    if not read:
        left.append((str(archive), "a ZIP with no DICOM member"))
    return left


def ingest(
    store: Any,
    paths: Any,
    *,
    precompress: bool = True,
    presets: Iterable[str] | None = None,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    client: Any = None,
) -> IngestReport:
    """Ingest files, folders, ZIPs and DICOMDIRs into ``store``.

    Parameters
    ----------
    store
        A :class:`~medcodec.delivery.Store`.
    paths
        One path or several.
    precompress
        Pre-compute the ``presets`` of every study that received a new instance before
        returning (renditions and archives, :mod:`medcodec.delivery.precompute`).
    presets
        Preset names (default :data:`medcodec.delivery.presets.DEFAULT_PRESETS`).
    scheduler
        Dask scheduler address (``tcp://host:8786``); default an in-process cluster.
    progress
        ``progress(stage, done, total)`` after each file (``stage="ingest"``; ``total`` 0
        while unknown) and each pre-computed item (``stage="precompute"``).
    client
        A connected ``distributed.Client`` (:func:`~.precompute.connect_scheduler`) to use
        instead of ``scheduler``.

    Returns
    -------
    IngestReport
        Never raises for one bad file: it is reported (``rejected``/``conflict``). A full store,
        storage or a catalog that cannot be reached, or a pre-computation that fails (a Dask
        scheduler lost) stops the run (``report.stopped``), keeping everything ingested before.

    Raises
    ------
    InputNotFoundError
        A path does not exist.
    """
    report = IngestReport()
    touched: dict[str, None] = {}
    # expand first (cheap: headers are not read), so progress has a total
    root = getattr(store.objects, "root", None) if getattr(store.objects, "local", False) else None
    sources, skipped, rejected = _expand(paths, Path(root).resolve() if root else None)
    report.outcomes.extend(rejected)
    report.outcomes.extend(
        InstanceOutcome(status="skipped", source=path, message=f"{path}: {why} (found in an input; not stored)")
        for path, why in skipped
    )
    total = len(sources)
    for done, source in enumerate(sources, 1):
        name = source.name if isinstance(source, ZipMember) else str(source)
        try:
            data, name = _read_source(source)
            outcome = ingest_bytes(store, data, source=name)
        except StoreFullError as exc:
            report.stopped = str(exc)
            break
        except (NotDicomError, InvalidUidError, DicomError) as exc:
            outcome = InstanceOutcome(status="rejected", source=name, message=str(exc))
        except DeliveryError as exc:  # the storage or the catalog, not this file: the run stops
            report.stopped = f"{exc}; what was stored before is kept: run the same ingest again to finish"
            break
        report.outcomes.append(outcome)
        if outcome.study_uid and outcome.study_uid not in touched:
            touched[outcome.study_uid] = None
        if outcome.status == "stored":
            touched[outcome.study_uid] = None
        if progress is not None:
            progress("ingest", done, total)
    report.studies = list(touched)
    new_studies = sorted({o.study_uid for o in report.stored})
    if precompress and touched and not report.stopped:
        # and the studies these inputs name whose archives are missing: an ingest interrupted
        # after its files were stored, run again, finds them all duplicates (nothing new to
        # store) yet its pre-computation never ran
        from .presets import DEFAULT_PRESETS

        lacking: set[str] = set()
        for name in presets or DEFAULT_PRESETS:
            lacking |= set(store.catalog.studies_without_archive(name))
        new_studies = sorted(set(new_studies) | (lacking & set(touched)))
    if precompress and new_studies and not report.stopped:
        from .precompute import precompute
        from .presets import DEFAULT_PRESETS

        groups: dict[tuple[str, ...], list[str]] = {}
        for study in new_studies:  # default: also every preset the study's archives were made for
            names = (
                list(presets)
                if presets is not None
                else sorted({*DEFAULT_PRESETS, *store.catalog.built_presets(study)})
            )
            groups.setdefault(tuple(names), []).append(study)
        try:
            report.precomputed = []
            for group, studies in groups.items():
                report.precomputed += precompute(
                    store, studies, presets=list(group), scheduler=scheduler, progress=progress, client=client
                )
        except StoreFullError as exc:
            report.stopped = str(exc)
        except DeliveryError as exc:  # a Dask scheduler lost, storage unreachable: the originals are stored
            report.stopped = f"{exc}; the originals are stored, not every archive is built: run again"
    return report
