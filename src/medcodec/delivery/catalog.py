"""The catalog: patient / study / series / instance / rendition / archive tables (SQLAlchemy Core).

SQLite inside the store by default (``STORE/catalog.sqlite``, WAL journal, ``synchronous=FULL``);
any SQLAlchemy URL (``postgresql+psycopg://...``) can replace it: the SQL is portable (no
SQLite-only functions, ``LIKE ... ESCAPE``, upserts done as select-then-insert inside one
transaction, integrity errors re-checked).

Tables (one row per object; ``attrs`` holds the level's attributes as DICOM JSON, PS3.18 F.2)::

    patients    patient_key PK (PatientID + issuer), PatientID, PatientName, birth date, sex
    studies     study_uid PK, patient_key, date, time, accession, id, description, referring, attrs
    series      series_uid PK, study_uid, modality, number, description, attrs
    instances   sop_uid PK, series_uid, study_uid, sop_class_uid, transfer syntax, number, position,
                pixel description (rows, cols, frames, bits, sign, photometric, samples, rescale),
                value statistics (px_min, px_max, px_tissue_min, px_below_floor) for the series
                mapping, compressible flag, sha256, size, object path, source, header (DICOM JSON)
    renditions  (sop_uid, preset) PK, path, sha256, size, transfer syntax, ratio, psnr,
                max_error, max_error_hu, passthrough, new SOP Instance UID
    archives    (study_uid, series_uid or "", preset) PK, path, size, etag (sha256 hex), files

Every write is one transaction: an instance row appears with its study, series and patient,
and only after its object is durably stored (see :mod:`medcodec.delivery.store`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from ..errors import DeliveryError, InvalidInputError, NotFoundError, OutOfResourcesError, StoreFullError
from ..registry import LOSSY_ONLY_SYNTAXES, pixel_data_is_lossy
from .objects import cannot_open_files
from .uids import validate_uid

__all__ = [
    "Catalog",
    "InstanceRecord",
    "RenditionRecord",
    "ArchiveRecord",
    "QUERY_KEYS",
    "supported_keys",
    "patient_key",
    "first_value",
    "SOURCE_STOW",
    "SOURCE_DIMSE",
]

#: ``instances.source`` of what a running server received: STOW-RS, and C-STORE (this prefix and
#: the calling AE title). The server's refresher pre-computes such studies again, also those it
#: had not reached when the server stopped (:meth:`Catalog.received_studies`).
SOURCE_STOW = "stow"
SOURCE_DIMSE = "dimse:"

metadata = sa.MetaData()

patients = sa.Table(
    "patients",
    metadata,
    sa.Column("patient_key", sa.String(200), primary_key=True),
    sa.Column("patient_id", sa.String(64), nullable=False, default=""),
    sa.Column("patient_name", sa.String(324), nullable=False, default=""),
    sa.Column("birth_date", sa.String(16), nullable=False, default=""),
    sa.Column("sex", sa.String(16), nullable=False, default=""),
)

studies = sa.Table(
    "studies",
    metadata,
    sa.Column("study_uid", sa.String(64), primary_key=True),
    sa.Column("patient_key", sa.String(200), sa.ForeignKey("patients.patient_key"), nullable=False),
    sa.Column("study_date", sa.String(16), nullable=False, default=""),
    sa.Column("study_time", sa.String(32), nullable=False, default=""),
    sa.Column("accession_number", sa.String(64), nullable=False, default=""),
    sa.Column("study_id", sa.String(64), nullable=False, default=""),
    sa.Column("study_description", sa.String(256), nullable=False, default=""),
    sa.Column("referring_physician_name", sa.String(324), nullable=False, default=""),
    sa.Column("attrs", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

series = sa.Table(
    "series",
    metadata,
    sa.Column("series_uid", sa.String(64), primary_key=True),
    sa.Column("study_uid", sa.String(64), sa.ForeignKey("studies.study_uid"), nullable=False, index=True),
    sa.Column("modality", sa.String(16), nullable=False, default=""),
    sa.Column("series_number", sa.Integer, nullable=True),
    sa.Column("series_description", sa.String(256), nullable=False, default=""),
    sa.Column("attrs", sa.Text, nullable=False),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("sop_uid", sa.String(64), primary_key=True),
    sa.Column("series_uid", sa.String(64), sa.ForeignKey("series.series_uid"), nullable=False, index=True),
    sa.Column("study_uid", sa.String(64), sa.ForeignKey("studies.study_uid"), nullable=False, index=True),
    sa.Column("sop_class_uid", sa.String(64), nullable=False, default=""),
    sa.Column("transfer_syntax_uid", sa.String(64), nullable=False, default=""),
    sa.Column("instance_number", sa.Integer, nullable=True),
    sa.Column("position", sa.Float, nullable=True),
    sa.Column("modality", sa.String(16), nullable=False, default=""),
    sa.Column("rows", sa.Integer, nullable=True),
    sa.Column("columns", sa.Integer, nullable=True),
    sa.Column("frames", sa.Integer, nullable=True),
    sa.Column("bits_allocated", sa.Integer, nullable=True),
    sa.Column("bits_stored", sa.Integer, nullable=True),
    sa.Column("pixel_representation", sa.Integer, nullable=True),
    sa.Column("photometric", sa.String(16), nullable=False, default=""),
    sa.Column("samples_per_pixel", sa.Integer, nullable=True),
    sa.Column("rescale_slope", sa.Float, nullable=True),
    sa.Column("rescale_intercept", sa.Float, nullable=True),
    sa.Column("px_min", sa.Integer, nullable=True),
    sa.Column("px_max", sa.Integer, nullable=True),
    sa.Column("px_tissue_min", sa.Integer, nullable=True),
    sa.Column("px_tissue_max", sa.Integer, nullable=True),
    sa.Column("px_below_floor", sa.BigInteger, nullable=True),
    sa.Column("compressible", sa.Boolean, nullable=False, default=False),
    sa.Column("passthrough_reason", sa.String(512), nullable=False, default=""),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("source", sa.String(1024), nullable=False, default=""),
    sa.Column("ingested_at", sa.Float, nullable=False),
    sa.Column("header", sa.Text, nullable=False),
)

renditions = sa.Table(
    "renditions",
    metadata,
    sa.Column("sop_uid", sa.String(64), sa.ForeignKey("instances.sop_uid"), primary_key=True),
    sa.Column("preset", sa.String(32), primary_key=True),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("transfer_syntax_uid", sa.String(64), nullable=False),
    sa.Column("ratio", sa.Float, nullable=False),
    sa.Column("psnr", sa.Float, nullable=True),
    sa.Column("max_error", sa.Float, nullable=True),
    sa.Column("max_error_hu", sa.Float, nullable=True),
    sa.Column("passthrough", sa.Boolean, nullable=False),
    sa.Column("new_sop_uid", sa.String(64), nullable=False),
    sa.Column("entry", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

archives = sa.Table(
    "archives",
    metadata,
    sa.Column("study_uid", sa.String(64), sa.ForeignKey("studies.study_uid"), primary_key=True),
    sa.Column("series_uid", sa.String(64), primary_key=True),  # "" for the whole study
    sa.Column("preset", sa.String(32), primary_key=True),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("files", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: The presets a study's archives were pre-computed for and under which coding rules
#: (:data:`.manifest.CODING_REVISION`): kept while an ingest into the study drops its archives
#: (so ``--refresh`` and the server's refresher make again every preset the study had, not only
#: the default ones) and outdated by an upgrade (so ``--refresh`` finds what an older medcodec
#: made). A catalog made before 2026-12-02 gets the table, empty, when opened: its archives are
#: then of an unknown revision, stale.
archive_builds = sa.Table(
    "archive_builds",
    metadata,
    sa.Column("study_uid", sa.String(64), primary_key=True),
    sa.Column("preset", sa.String(32), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
)

#: The CRC-32 of each stored object (content-addressed: one row per sha256). The ``original``
#: preset's ZIP is assembled from the stored files without a copy (:mod:`.assembled`), and a ZIP
#: names each file's CRC-32 in its headers, so the archive's bytes, size and ETag are known before
#: a file is read only when these are. Written with the instance at ingest; an object a store
#: held before 2026-12-03 gets its row the first time an archive needs it
#: (:meth:`.Store.original_archive`). Rows of objects deleted since are harmless (content, not
#: instance) and go with ``store gc``.
object_crcs = sa.Table(
    "object_crcs",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("crc32", sa.BigInteger, nullable=False),
)

#: Secondary indexes: the matching keys QIDO-RS and C-FIND look up, their default order (study
#: date, then the series' instances by number), and the paths a delete checks. An outside scale
#: audit (2026-12-02) found every one of these a full table scan: a PatientID search took 72 ms
#: on 200,000 studies (0.5 ms indexed), a deep instance page sorted the whole catalog. Created
#: with the tables, and by :class:`Catalog` on a catalog made before them.
INDEXES = (
    sa.Index("ix_patients_patient_id", patients.c.patient_id),
    sa.Index("ix_studies_patient_key", studies.c.patient_key),
    sa.Index("ix_studies_accession_number", studies.c.accession_number),
    sa.Index("ix_studies_date_uid", studies.c.study_date, studies.c.study_uid),
    sa.Index("ix_series_modality", series.c.modality),
    sa.Index("ix_instances_order", instances.c.series_uid, instances.c.instance_number, instances.c.sop_uid),
    sa.Index("ix_instances_sop_class_uid", instances.c.sop_class_uid),
    sa.Index("ix_instances_path", instances.c.path),
    sa.Index("ix_renditions_path", renditions.c.path),
    sa.Index("ix_archives_path", archives.c.path),
)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One stored instance (a catalog row). ``path`` is relative to the store root."""

    sop_uid: str
    series_uid: str
    study_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    instance_number: int | None
    position: float | None
    modality: str
    rows: int | None
    columns: int | None
    frames: int | None
    bits_allocated: int | None
    bits_stored: int | None
    pixel_representation: int | None
    photometric: str
    samples_per_pixel: int | None
    rescale_slope: float | None
    rescale_intercept: float | None
    px_min: int | None
    px_max: int | None
    px_tissue_min: int | None
    px_tissue_max: int | None
    px_below_floor: int | None
    compressible: bool
    passthrough_reason: str
    sha256: str
    size: int
    path: str
    source: str
    ingested_at: float

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> InstanceRecord:
        return cls(*[row[name] for name in _field_names(cls)])

    @property
    def raw_pixel_bytes(self) -> int:
        """Uncompressed pixel bytes (rows x columns x frames x samples x Bits Allocated / 8), 0 without pixels."""
        if not (self.rows and self.columns and self.bits_allocated):
            return 0
        return (
            self.rows
            * self.columns
            * (self.frames or 1)
            * (self.samples_per_pixel or 1)
            * ((self.bits_allocated + 7) // 8)
        )


@dataclass(frozen=True)
class RenditionRecord:
    """One pre-computed file of an instance under a preset."""

    sop_uid: str
    preset: str
    path: str
    sha256: str
    size: int
    transfer_syntax_uid: str
    ratio: float
    psnr: float | None
    max_error: float | None
    max_error_hu: float | None
    passthrough: bool
    new_sop_uid: str
    entry: str  # the manifest entry, JSON
    created_at: float

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> RenditionRecord:
        return cls(*[row[name] for name in _field_names(cls)])


@dataclass(frozen=True)
class ArchiveRecord:
    """One pre-computed ZIP (``series_uid == ""`` for the whole study). ``etag`` is its sha256 hex."""

    study_uid: str
    series_uid: str
    preset: str
    path: str
    size: int
    etag: str
    files: int
    created_at: float

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ArchiveRecord:
        return cls(*[row[name] for name in _field_names(cls)])


_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """A record class's field names, in order (``dataclasses.fields`` once per class: per row it
    was a third of the time a live archive of 100 small instances spent before its first byte)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


# --------------------------------------------------------------------------- queries

#: QIDO-RS matching keys (keyword -> (tag, level, column)); PS3.18 Table 10.6.1-5.
QUERY_KEYS: dict[str, tuple[str, str, sa.Column[Any]]] = {
    "PatientID": ("00100020", "patient", patients.c.patient_id),
    "PatientName": ("00100010", "patient", patients.c.patient_name),
    "PatientBirthDate": ("00100030", "patient", patients.c.birth_date),
    "PatientSex": ("00100040", "patient", patients.c.sex),
    "StudyInstanceUID": ("0020000D", "study", studies.c.study_uid),
    "StudyDate": ("00080020", "study", studies.c.study_date),
    "StudyTime": ("00080030", "study", studies.c.study_time),
    "AccessionNumber": ("00080050", "study", studies.c.accession_number),
    "StudyID": ("00200010", "study", studies.c.study_id),
    "StudyDescription": ("00081030", "study", studies.c.study_description),
    "ReferringPhysicianName": ("00080090", "study", studies.c.referring_physician_name),
    "ModalitiesInStudy": ("00080061", "study", series.c.modality),
    "SeriesInstanceUID": ("0020000E", "series", series.c.series_uid),
    "Modality": ("00080060", "series", series.c.modality),
    "SeriesNumber": ("00200011", "series", series.c.series_number),
    "SeriesDescription": ("0008103E", "series", series.c.series_description),
    "SOPInstanceUID": ("00080018", "instance", instances.c.sop_uid),
    "SOPClassUID": ("00080016", "instance", instances.c.sop_class_uid),
    "InstanceNumber": ("00200013", "instance", instances.c.instance_number),
}
_BY_TAG = {tag: key for key, (tag, _, _) in QUERY_KEYS.items()}
_LEVELS = {"study": 0, "series": 1, "instance": 2}
_LEVEL_OF = {"patient": 0, "study": 0, "series": 1, "instance": 2}
#: Query parameters that are not matching keys (handled by the caller or ignored here).
_NOT_KEYS = {"includefield", "fuzzymatching", "limit", "offset"}
_UID_KEYS = {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"}
_INT_KEYS = {"SeriesNumber", "InstanceNumber"}
#: Code String keys: a value list separated by "\\" or "," matches any of them (``ModalitiesInStudy=CT,MR``,
#: ``CT\\MR``: until 2026-12-05 matched literally, an empty answer; an outside audit)
_CS_KEYS = {"Modality", "ModalitiesInStudy", "PatientSex"}
#: An IS value (PS3.5 §6.2): ASCII digits, an optional sign, blanks around; at most 12 characters
_IS = re.compile(r" *[+-]?[0-9]{1,11} *")
#: A DA value (PS3.5 §6.2: YYYYMMDD; the ACR-NEMA YYYY.MM.DD that old files hold) and a TM value
#: (HH, HHMM, HHMMSS, HHMMSS.F to .FFFFFF), as single values and as the ends of a range (PS3.4
#: C.2.2.2.5), spaces around them allowed; anything else is a 400 that says so, not an empty match
#: (an outside audit, 2026-12-04: ``StudyDate=notadate`` answered 200 [] where ``2016-13-45`` was 400).
_DA = re.compile(r" *([0-9]{8}|[0-9]{4}\.[0-9]{2}\.[0-9]{2}) *")
_TM = re.compile(r" *[0-9]{2}(:?[0-9]{2}(:?[0-9]{2}(\.[0-9]{1,6})?)?)? *")
_DOTTED_DA = re.compile(r" *([0-9]{4})\.([0-9]{2})\.([0-9]{2}) *")
_COLON_TM = re.compile(r" *[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)? *")


def plain_tm(value: str) -> str:
    """A TM value as the catalog keeps and compares it: ``HHMMSS.FFFFFF``; the ACR-NEMA form
    ``HH:MM:SS.frac`` (PS3.5 §6.2 asks readers to accept it) loses its colons, as :func:`plain_da`
    does for dates (an outside re-check, 2026-12-04: ``11:27:24`` was found by no time query).

    >>> plain_tm("11:27:24"), plain_tm("112724.5"), plain_tm("11:27")
    ('112724', '112724.5', '1127')
    """
    return value.strip().replace(":", "") if _COLON_TM.fullmatch(value) else value


def _tm_low(value: str) -> str:
    """A TM range's low bound as :func:`_tm_key` orders times: ``HHMMSS.FFFFFF``.

    >>> _tm_low("12"), _tm_low("1200"), _tm_low("120000.5")
    ('120000.000000', '120000.000000', '120000.500000')
    """
    return f"{(value[:6] + '000000')[:6]}.{(value[7:] + '000000')[:6]}"


def _tm_key(column: Any) -> Any:
    """A stored TM (``HH[MM[SS[.F...]]]``, as :func:`plain_tm` keeps it) as ``HHMMSS.FFFFFF``, in SQL
    (SQLite and PostgreSQL alike): a ``.`` only ever follows the seconds, so the first six characters
    padded with zeros are the whole seconds, those after the seventh the fraction."""
    whole = sa.func.substr(column.concat("000000"), 1, 6)
    fraction = sa.func.substr(sa.func.substr(column, 8).concat("000000"), 1, 6)
    return whole.concat(".").concat(fraction)


def plain_da(value: str) -> str:
    """A DA value in the form the catalog keeps and compares: ``YYYYMMDD``. The ACR-NEMA form
    ``YYYY.MM.DD``, which PS3.5 §6.2 asks readers to accept and old files hold, is rewritten (an
    outside audit, 2026-12-04: a 1993 study dated ``1993.04.30`` was found by no date query, QIDO
    or C-FIND); anything else is returned as it is.

    >>> plain_da("1993.04.30"), plain_da("19930430"), plain_da("")
    ('19930430', '19930430', '')
    """
    m = _DOTTED_DA.fullmatch(value)
    return f"{m[1]}{m[2]}{m[3]}" if m else value


_NAME_KEYS = {"PatientName", "ReferringPhysicianName"}
#: Values one non-UID matching key may be given (repeated): each is a condition of its own
MAX_ALTERNATIVES = 100
#: UIDs one UID key may list (repeated or comma-separated): one SQL IN list of bound parameters
MAX_UID_LIST = 5000
#: Characters of one value matched at most (a UID list excepted: :data:`MAX_UID_LIST` UIDs).
MAX_MATCH_CHARS = 1024


def _key_name(key: str) -> str:
    k = key.strip()
    if k in QUERY_KEYS:
        return k
    t = k.replace(",", "").replace("(", "").replace(")", "").upper()
    if t in _BY_TAG:
        return _BY_TAG[t]
    raise InvalidInputError(f"query key {key!r} is not supported: expected one of {sorted(QUERY_KEYS)} or their tags")


def supported_keys(items: Iterable[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """Split QIDO-RS query parameters into the matching keys :meth:`Catalog.find` supports and the
    others, which a DICOMweb server ignores (PS3.18 §8.3.4.1: "shall ignore any unsupported Query
    Parameters", said in a Warning header). Reserved parameters (limit, offset ...) are kept."""
    kept: list[tuple[str, str]] = []
    ignored: list[str] = []
    for key, value in items:
        try:
            if key.strip().lower() not in _NOT_KEYS:
                _key_name(key)
        except InvalidInputError:
            ignored.append(key)
            continue
        kept.append((key, value))
    return kept, ignored


def _match(key: str, value: str, need: int, fuzzy: bool) -> sa.ColumnElement[bool]:
    """The condition of one matching key's value at query level ``need`` (0 study, 1 series,
    2 instance): a lower-level key at a higher level asks for a study/series containing a match."""
    if key == "ModalitiesInStudy":
        sub = sa.select(series.c.study_uid).where(_condition("Modality", value, fuzzy))
        return studies.c.study_uid.in_(sub)
    key_level = _LEVEL_OF[QUERY_KEYS[key][1]]
    if key_level > need:
        if key_level == 2:
            sub = sa.select(instances.c.series_uid if need == 1 else instances.c.study_uid).where(
                _condition(key, value, fuzzy)
            )
            return (series.c.series_uid if need == 1 else studies.c.study_uid).in_(sub)
        sub = sa.select(series.c.study_uid).where(_condition(key, value, fuzzy))
        return studies.c.study_uid.in_(sub)
    return _condition(key, value, fuzzy)


def _like(value: str) -> str:
    out = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return out.replace("*", "%").replace("?", "_")


def _real(value: str, key: str) -> bool:
    """Whether a DA / TM value of the right form names a real date (month 1-12, its days) or time (hour
    0-23, minute 0-59, second 0-60): ``20161345`` or ``2599`` matched nothing, or everything in a range
    (an outside re-check, 2026-12-04)."""
    import datetime

    digits = value.strip().replace(".", "") if key != "StudyTime" else value.strip().replace(":", "").split(".")[0]
    if key != "StudyTime":
        try:
            datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        except ValueError:
            return False
        return True
    parts = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    return all(p <= limit for p, limit in zip(parts, (23, 59, 60)))


def _condition(key: str, value: str, fuzzy: bool) -> sa.ColumnElement[bool]:
    """One matching condition (PS3.4 C.2.2.2: single value, UID list, wildcard, range)."""
    column = QUERY_KEYS[key][2]
    # leading and trailing spaces are padding in every string VR a key has (PS3.5 §6.2; C-FIND's
    # values come without them): ``Head CT `` was found by C-FIND, not by QIDO-RS (an outside audit,
    # 2026-12-05); spaces only are a zero-length value, universal matching (PS3.4 C.2.2.2.3)
    value = str(value).strip(" ")
    if not value.strip("*"):  # ``*`` alone: any value, whatever the VR (as C-FIND, which dropped it, did;
        return sa.true()  # QIDO-RS answered 400 for a date, a number or a UID until 2026-12-05)
    if "\x00" in value:  # no DICOM string holds one, and PostgreSQL refuses it in text
        raise InvalidInputError(f"{key}={value!r}: a NUL character cannot be matched")
    if key in _UID_KEYS:
        uids = [u.strip() for u in value.replace("\\", ",").split(",") if u.strip()]
        if not uids:
            raise InvalidInputError(f"{key}: empty UID list")
        if len(uids) > MAX_UID_LIST:
            raise InvalidInputError(f"{key}: {len(uids)} UIDs, at most {MAX_UID_LIST} in one query")
        for uid in uids:
            validate_uid(uid, what=key)
        return column.in_(uids)
    if len(value) > MAX_MATCH_CHARS and key not in _CS_KEYS:  # (a list of CS values is checked per value)
        # SQLite: "LIKE or GLOB pattern too complex" past 50,000 characters, a traceback to the log and a
        # generic failure to the caller (an outside audit, 2026-12-05); no DICOM value is this long
        raise InvalidInputError(f"{key}: a value of {len(value)} characters; at most {MAX_MATCH_CHARS} are matched")
    if key in _INT_KEYS:
        if not _IS.fullmatch(value) or not -(2**31) <= int(value) < 2**31:
            raise InvalidInputError(f"{key}={value!r}: expected an integer (IS, PS3.5 §6.2) -2147483648..2147483647")
        return column == int(value)
    if key in ("StudyDate", "PatientBirthDate", "StudyTime"):
        form, what = (_TM, "a TM value HH[MM[SS[.F...]]]") if key == "StudyTime" else (_DA, "a DA value YYYYMMDD")
        low, dash, high = value.partition("-")
        if not all(form.fullmatch(part) and _real(part, key) for part in (low, high) if part) or not (low or high):
            raise InvalidInputError(
                f"{key}={value!r}: expected {what}, or a range of them 'low-high', '-high', 'low-' (PS3.4 C.2.2.2.5)"
            )
        # stored as YYYYMMDD / HHMMSS since 2026-12-04 (plain_da, plain_tm); an older store may still
        # hold YYYY.MM.DD: equality finds those rows, a range only once the study is stored again
        norm = plain_tm if key == "StudyTime" else plain_da
        low, high = norm(low), norm(high)
        if not dash:
            plain = low.strip()
            if key == "StudyTime":
                return column == plain
            return column.in_([plain, f"{plain[:4]}.{plain[4:6]}.{plain[6:]}"])
        # a range matches the entities that have a value in it: an empty value (kept as "") sorts
        # below every bound and would match '-high' (an outside re-check, 2026-12-04: studies of
        # patients without a birth date were found "born before"); PS3.4 C.2.2.2.5 matches values
        # in the range; finding empty values is not a range match (and is not offered)
        cond: sa.ColumnElement[bool] = column != ""
        # a TM is compared as a time, whatever the precision either side has (``1200`` is 12:00:00,
        # ``08`` 08:00:00; they were compared as text: 12:00 was not found in 120000-120100, nor
        # ``120000`` by ``120000.000000-``: an outside audit, 2026-12-05): the stored value as
        # HHMMSS.FFFFFF, the low bound padded the same way, the high bound with everything it leads
        # (``1201`` is up to 12:01:59.999999)
        value_key = _tm_key(column) if key == "StudyTime" else column
        if low:
            cond = sa.and_(cond, value_key >= (_tm_low(low.strip()) if key == "StudyTime" else low.strip()))
        if high:
            cond = sa.and_(cond, value_key <= high.strip() + ("~" if key == "StudyTime" else ""))
        return cond
    if key in _NAME_KEYS:
        return _name_condition(column, value, fuzzy)
    if key in _CS_KEYS:  # CS holds neither "\\" nor ",": a list is "any of" (PS3.4 C.2.2.2.1)
        values = [v.strip() for v in value.replace("\\", ",").split(",") if v.strip()]
        if len(values) > MAX_UID_LIST:
            raise InvalidInputError(f"{key}: {len(values)} values, at most {MAX_UID_LIST} in one query")
        if not values:  # separators only: no value, universal matching
            return sa.true()
        if any(len(v) > MAX_MATCH_CHARS for v in values):
            raise InvalidInputError(f"{key}: a value longer than {MAX_MATCH_CHARS} characters")
        return sa.or_(*(_single_condition(column, v) for v in values)) if len(values) > 1 else (
            _single_condition(column, values[0]))  # fmt: skip
    return _single_condition(column, value)


def _single_condition(column: Any, value: str) -> sa.ColumnElement[bool]:
    """Single value matching, ``*`` and ``?`` as wildcards (PS3.4 C.2.2.2.1, C.2.2.2.4)."""
    if "*" in value or "?" in value:
        return column.like(_like(value), escape="\\")
    return column == value


class fold_case(GenericFunction[str]):
    """Lower case for matching person names, every script alike: ``lower()`` on PostgreSQL
    (Unicode by its locale); on SQLite, whose built-in ``lower()`` folds ASCII only (a Greek,
    Cyrillic or German capital was not found even typed as stored, an outside audit),
    Python's ``str.lower`` registered on each connection as ``medcodec_lower``."""

    type = sa.String()
    name = "lower"
    inherit_cache = True


@compiles(fold_case, "sqlite")
def _fold_case_sqlite(element: fold_case, compiler: Any, **kw: Any) -> str:
    return f"medcodec_lower({compiler.process(element.clauses, **kw)})"


def _sqlite_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class fold_name(GenericFunction[str]):
    """A stored person name as non-fuzzy matching compares it: case folded as :class:`fold_case`
    does, without trailing empty components or groups (:func:`_pn_trimmed_text`). PostgreSQL:
    ``lower()`` and :func:`_pn_trimmed`'s SQL; SQLite: one Python call a row, ``medcodec_name``, which
    trims only names that have something to trim (over 200,000 names, in memory: the fold alone 86 ms,
    this 120 ms, 235 ms when every name ends in ``^^``; the SQL chain 219 ms)."""

    type = sa.String()
    name = "medcodec_name"
    inherit_cache = True


@compiles(fold_name)
def _fold_name_sql(element: fold_name, compiler: Any, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(_pn_trimmed(sa.func.lower(column)), **kw)


@compiles(fold_name, "sqlite")
def _fold_name_sqlite(element: fold_name, compiler: Any, **kw: Any) -> str:
    return f"medcodec_name({compiler.process(element.clauses, **kw)})"


def _sqlite_name(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = value.lower()
    return _pn_trimmed_text(value) if "^=" in value or value[-1:] in ("^", "=") else value


def _name_condition(column: Any, value: str, fuzzy: bool) -> sa.ColumnElement[bool]:
    """A person name key (PN), case-insensitive as PS3.4 C.2.2.2.1.1 allows, every script alike.

    A key without ``=`` matches any of the stored name's component groups (Alphabetic,
    Ideographic, Phonetic: ``Yamada^Tarou=山田^太郎=やまだ^たろう`` is found by ``山田^太郎`` as by
    ``Yamada^Tarou``; until 2026-12-02 only the whole string matched), a key with ``=`` the whole
    value. ``fuzzy`` (``fuzzymatching=true``): the start of any name component, after ``^``, a
    space or ``=``."""
    # trailing empty components (and groups) may be left out (PS3.5 §6.2, PN): not compared, either
    # side; a key of separators only is no key (universal matching)
    trimmed = _pn_trimmed_text(value)
    if not trimmed:
        return sa.true()
    if fuzzy:  # every separator as "=", the value led by one: a component starts after an "="
        separated = sa.func.replace(sa.func.replace(sa.literal("=") + fold_case(column), "^", "="), " ", "=")
        pattern = _like(trimmed.lower())
        return separated.like("%=" + pattern.replace("^", "=").replace(" ", "=") + "%", escape="\\")
    # one LIKE over one folded value: on SQLite the fold is a Python call a row, and four LIKEs (one
    # per group position) took 494 ms over 200,000 names where one takes 138 (the ASCII-only built-in
    # lower(): 82); fuzzy 201 ms (four: 580; before, three built-in: 224). In-memory, best of 3.
    folded = fold_name(column)
    keys = [trimmed]
    # a key ending in wildcard-only components (``OB^*``, ``Smith^Jane=*``) also finds the name without
    # them, whose trailing empty components the stored side no longer has (``OB^^^^`` is ``OB``)
    shorter = _pn_trimmed_text(re.sub(r"([\^=]\*+)+$", "", value))  # ``*`` or ``**``: any run (C.2.2.2.4)
    if shorter and shorter != trimmed:
        keys.append(shorter)
    conds = []
    for key in keys:
        pattern = _like(key.lower())
        if "=" in key:
            conds.append(folded.like(pattern, escape="\\"))
        else:  # one whole group (of any value: a name of several values keeps them "\\"-separated)
            groups = sa.literal("=") + sa.func.replace(folded, "\\", "=") + sa.literal("=")
            conds.append(groups.like(f"%={pattern}=%", escape="\\"))
    return conds[0] if len(conds) == 1 else sa.or_(*conds)


def _pn_trimmed_text(value: str) -> str:
    """A PN value without trailing empty components or component groups (PS3.5 §6.2: ``OB^^^^`` is
    ``OB``, ``Citizen^Jan^^`` is ``Citizen^Jan``, ``A^B==`` is ``A^B``). What :func:`_pn_trimmed`
    makes of a stored value, for a query value.

    >>> _pn_trimmed_text("OB^^^^"), _pn_trimmed_text("Yamada^Tarou^=山田^^="), _pn_trimmed_text("=Kim")
    ('OB', 'Yamada^Tarou=山田', '=Kim')
    """
    return "=".join(group.rstrip("^") for group in value.split("=")).rstrip("=")


def _pn_trimmed(column: Any) -> Any:
    """SQL of :func:`_pn_trimmed_text` on a stored value: ``^`` before ``=`` removed four times (a group
    has at most four ``^``), then trailing ``=``. Until 2026-12-05 a name stored ``OB^^^^`` was not
    found by ``PatientName=OB``, nor ``Citizen^Jan`` by ``Citizen^Jan^^`` (an outside audit)."""
    out = column + sa.literal("=")
    for _ in range(4):
        out = sa.func.replace(out, "^=", "=")
    return sa.func.rtrim(out, "=")


# --------------------------------------------------------------------------- catalog


def patient_key(patient_id: str, issuer: str, study_uid: str) -> str:
    """The ``patients`` row an instance is filed under: ``PatientID\\issuer``; for a study without a
    PatientID (de-identified data often has none) ``\\issuer\\StudyUID``, a patient of its own (until
    2026-12-02 they all shared ``\\issuer``, whose name was the first study's: QIDO matched them all).

    >>> patient_key("P1", "", "1.2.3"), patient_key("", "", "1.2.3")
    ('P1\\\\', '\\\\\\\\1.2.3')
    """
    key = f"{patient_id}\\{issuer}" if patient_id else f"\\{issuer}\\{study_uid}"
    return key[:200]


def first_value(attrs: Mapping[str, Any], tag: str) -> str:
    """The first value of ``tag`` in a DICOM JSON header or QIDO-RS answer, as text (a person name's
    alphabetic form; ``""`` when absent or empty)."""
    value = ((attrs.get(tag) or {}).get("Value") or [""])[0]
    if value is None:
        return ""
    return str(value.get("Alphabetic", "") if isinstance(value, dict) else value)


def _json(attrs: Mapping[str, Any]) -> str:
    return json.dumps(attrs, separators=(",", ":"), sort_keys=True)


class Catalog:
    """The catalog database (see the module docstring).

    Parameters
    ----------
    url
        SQLAlchemy URL (``sqlite:////abs/path/catalog.sqlite``, ``postgresql+psycopg://...``).
    create
        Create the tables when missing.
    """

    def __init__(self, url: str, *, create: bool = True):
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
        try:
            self.engine: Engine = sa.create_engine(url, **kwargs)
        except Exception as exc:
            raise DeliveryError(f"cannot open the catalog {url!r}: {type(exc).__name__}: {exc}") from exc
        try:
            if url.startswith("sqlite"):
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
                sa.event.listen(self.engine, "handle_error", _sqlite_error)
            if not create:  # an existing catalog still gets what was added since it was made (tables, indexes)
                try:
                    create = "instances" in sa.inspect(self.engine).get_table_names()
                except sa.exc.SQLAlchemyError:
                    create = False
            if create:
                # Several processes may create a new catalog at once (a server and an ingest): create_all
                # checks then creates table by table, so another process can win any one of them. Each retry
                # skips what exists by then; the loop ends when every table is there. SQLite also answers
                # "database is locked" at once, busy timeout or not, when two such transactions each hold a
                # read lock and want to write (its deadlock rule): retried the same way (seen once in a
                # full test run, 2026-12-02).
                for attempt in range(20):
                    try:
                        metadata.create_all(self.engine)
                        for index in INDEXES:  # a catalog made before an index was added gets it now
                            index.create(self.engine, checkfirst=True)
                        break
                    except sa.exc.OperationalError as exc:
                        if not any(s in str(exc) for s in ("already exists", "database is locked")) or attempt == 19:
                            why = f"{type(exc).__name__}: {exc}"
                            raise DeliveryError(f"cannot create the catalog {url!r}: {why}") from exc
                        time.sleep(0.02 * (attempt + 1))
        except BaseException:  # its connections let go (they held the files: a tmpfs could not be unmounted)
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- instances

    def get_instance(self, sop_uid: str, conn: Connection | None = None) -> InstanceRecord | None:
        validate_uid(sop_uid, what="SOP Instance UID")
        query = sa.select(*[instances.c[f.name] for f in fields(InstanceRecord)]).where(instances.c.sop_uid == sop_uid)
        if conn is None:
            with self.engine.connect() as c:
                row = c.execute(query).mappings().first()
        else:
            row = conn.execute(query).mappings().first()
        return None if row is None else InstanceRecord.from_row(row)

    def add_instance(
        self,
        *,
        patient: Mapping[str, Any],
        study: Mapping[str, Any],
        series_row: Mapping[Any, Any],
        instance: Mapping[str, Any],
        dropped: list[str] | None = None,
        crc32: int | None = None,
    ) -> tuple[str, InstanceRecord | str | None]:
        """Insert one instance with its patient/study/series in one transaction.

        Returns ``("stored", None)``, ``("duplicate", existing)`` (same sha256),
        ``("conflict", existing)`` (another object under the same SOP Instance UID; nothing changed)
        or ``("stored-other-patient", key)``: stored, but the study is stored under another
        patient key ``key``, which it keeps (the caller warns: a mislabelled instance, or one whose
        issuer another system left out).
        The study's archives are invalidated in the same transaction when an instance is stored;
        their paths are appended to ``dropped`` (the caller removes the files after the commit,
        :meth:`.Store.remove_unreferenced`: until 2026-12-02 they stayed until ``store gc``, and a
        server receiving a study one instance at a time filled its disk with them).
        ``crc32``: the file's CRC-32, recorded in :data:`object_crcs` in the same transaction.
        """
        for _attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    existing = self.get_instance(instance["sop_uid"], conn)
                    if existing is not None:
                        status = "duplicate" if existing.sha256 == instance["sha256"] else "conflict"
                        return status, existing
                    owner = conn.execute(
                        sa.select(studies.c.patient_key).where(studies.c.study_uid == study["study_uid"])
                    ).scalar()
                    self._upsert(conn, patients, "patient_key", patient)
                    self._upsert(conn, studies, "study_uid", study, update=True)
                    self._upsert(conn, series, "series_uid", series_row)
                    conn.execute(instances.insert().values(**instance))
                    if crc32 is not None:
                        self._put_crc32s(conn, {str(instance["sha256"]): int(crc32)})
                    gone = self._drop_archives(conn, study["study_uid"])
                    if dropped is not None:
                        dropped.extend(gone)
                    if owner is not None and owner != study["patient_key"]:
                        return "stored-other-patient", str(owner)
                    return "stored", None
            except sa.exc.IntegrityError:
                continue  # another writer inserted the same row meanwhile: look again
        raise DeliveryError(f"cannot insert instance {instance['sop_uid']}: the catalog keeps changing under it")

    @staticmethod
    def _upsert(
        conn: Connection, table: sa.Table, key: str, values: Mapping[str, Any], *, update: bool = False
    ) -> None:
        found = conn.execute(sa.select(table.c[key]).where(table.c[key] == values[key])).first()
        if found is None:
            conn.execute(table.insert().values(**values))
        elif update:
            conn.execute(table.update().where(table.c[key] == values[key]).values(updated_at=values["updated_at"]))

    def instances(
        self, study_uid: str | None = None, series_uid: str | None = None, sop_uid: str | None = None
    ) -> list[InstanceRecord]:
        """Instances matching the given UIDs, sorted by series (number, UID), position, number, UID."""
        cols = [instances.c[f.name] for f in fields(InstanceRecord)]
        query = sa.select(*cols, series.c.series_number).join(series, series.c.series_uid == instances.c.series_uid)
        for value, column, what in (
            (study_uid, instances.c.study_uid, "Study Instance UID"),
            (series_uid, instances.c.series_uid, "Series Instance UID"),
            (sop_uid, instances.c.sop_uid, "SOP Instance UID"),
        ):
            if value is not None:
                query = query.where(column == validate_uid(value, what=what))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()  # tuples: the record's fields in order, then series_number
        rows = sorted(rows, key=_instance_order)
        n = len(cols)
        return [InstanceRecord(*row[:n]) for row in rows]

    def header(self, sop_uid: str) -> str:
        """The instance's full header as DICOM JSON text (:func:`.header.header_json`: bulk data
        as URIs relative to the instance), ``"{}"`` for an unknown instance."""
        validate_uid(sop_uid, what="SOP Instance UID")
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(instances.c.header).where(instances.c.sop_uid == sop_uid)).scalar()
        return "{}" if value is None else str(value)

    def lossy_instances(self, sop_uids: Sequence[str]) -> set[str]:
        """Those of ``sop_uids`` whose stored pixel data are lossy
        (:func:`medcodec.registry.pixel_data_is_lossy` of their syntax and header), so that the
        ``original`` preset's manifest says what its files are."""
        c = instances.c
        out: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(sop_uids), 500):
                chunk = list(sop_uids[i : i + 500])
                query = sa.select(c.sop_uid, c.transfer_syntax_uid, c.header).where(
                    c.sop_uid.in_(chunk),
                    sa.or_(c.transfer_syntax_uid.in_(sorted(LOSSY_ONLY_SYNTAXES)), c.header.like('%"00282110"%')),
                )
                for sop, syntax, header in conn.execute(query):
                    if pixel_data_is_lossy(str(syntax), _lossy_flag(str(header or ""))):
                        out.add(str(sop))
        return out

    def crc32s(self, shas: Sequence[str]) -> dict[str, int]:
        """The CRC-32 of those of the objects ``shas`` (sha256 hex) that have one recorded."""
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(shas))):
                query = sa.select(object_crcs.c.sha256, object_crcs.c.crc32).where(object_crcs.c.sha256.in_(chunk))
                out.update((str(sha), int(crc)) for sha, crc in conn.execute(query))
        return out

    def put_crc32s(self, values: Mapping[str, int]) -> None:
        """Record objects' CRC-32s (``sha256 -> crc``); those recorded already are left as they are."""
        for _attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    self._put_crc32s(conn, values)
                return
            except sa.exc.IntegrityError:
                continue  # another process recorded one of them meanwhile: the same value; look again
        raise DeliveryError("cannot record CRC-32s: the catalog keeps changing under them")

    @staticmethod
    def _put_crc32s(conn: Connection, values: Mapping[str, int]) -> None:
        shas = list(values)
        for chunk in _chunks(shas):
            known = {
                str(r[0]) for r in conn.execute(sa.select(object_crcs.c.sha256).where(object_crcs.c.sha256.in_(chunk)))
            }
            rows = [{"sha256": sha, "crc32": int(values[sha])} for sha in chunk if sha not in known]
            if rows:
                conn.execute(object_crcs.insert(), rows)

    def forget_unreferenced_crc32s(self) -> int:
        """Remove the CRC-32 rows of objects no instance references (``store gc``); returns how many."""
        with self.engine.begin() as conn:
            gone = conn.execute(object_crcs.delete().where(object_crcs.c.sha256.not_in(sa.select(instances.c.sha256))))
        return int(gone.rowcount or 0)

    def study_changed_at(self, study_uid: str) -> float | None:
        """When an instance was last added to or removed from the study (epoch seconds), ``None``
        for an unknown study."""
        validate_uid(study_uid, what="Study Instance UID")
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(studies.c.updated_at).where(studies.c.study_uid == study_uid)).scalar()
        return None if value is None else float(value)

    def instance_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(instances)).scalar() or 0)

    def header_rows(self, page: int = 500) -> Iterator[tuple[str, str, str, str, str]]:
        """``(sop_uid, object path, transfer syntax, header JSON, sha256)`` of every instance (for
        reindex), ``page`` rows at a time: a large store's headers are not all held at once."""
        c = instances.c
        after = ""
        while True:
            query = sa.select(c.sop_uid, c.path, c.transfer_syntax_uid, c.header, c.sha256)
            query = query.where(c.sop_uid > after).order_by(c.sop_uid).limit(page)
            with self.engine.connect() as conn:
                rows = [(str(a), str(b), str(t), str(h), str(x)) for a, b, t, h, x in conn.execute(query)]
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1][0]

    def split_shared_patients(self) -> int:
        """Give each study without a PatientID its own patient row (:func:`patient_key`), for a store
        made before 2026-12-02; name, birth date and sex from the study's first instance header.
        Returns the studies moved (reindex)."""
        moved = 0
        with self.engine.begin() as conn:
            empty_id = (
                conn.execute(sa.select(patients.c.patient_key).where(patients.c.patient_id == "")).scalars().all()
            )
            for key in empty_id:
                issuer = key[1:]
                if "\\" in issuer:  # '\\issuer\\StudyUID': a study's own row already
                    continue
                for study_uid in (
                    conn.execute(sa.select(studies.c.study_uid).where(studies.c.patient_key == key)).scalars().all()
                ):
                    header = conn.execute(
                        sa.select(instances.c.header)
                        .where(instances.c.study_uid == study_uid)
                        .order_by(instances.c.sop_uid)
                        .limit(1)
                    ).scalar()
                    own = patient_key("", issuer, study_uid)
                    self._upsert(conn, patients, "patient_key", {
                        "patient_key": own, "patient_id": "", **_patient_values(header)
                    })  # fmt: skip
                    conn.execute(studies.update().where(studies.c.study_uid == study_uid).values(patient_key=own))
                    moved += 1
                conn.execute(patients.delete().where(patients.c.patient_key == key))
        return moved

    def update_header(self, sop_uid: str, header: str, transfer_syntax: str) -> None:
        """Replace an instance's stored header JSON and transfer syntax (reindex)."""
        with self.engine.begin() as conn:
            conn.execute(
                instances.update()
                .where(instances.c.sop_uid == sop_uid)
                .values(header=header, transfer_syntax_uid=transfer_syntax)
            )

    def series_stats(self, series_uid: str, *, bits_stored: int | None = None,
                     pixel_representation: int | None = None) -> dict[str, Any] | None:  # fmt: skip
        """Aggregated value statistics of a series' compressible instances (for the series mapping);
        ``n_content`` counts the instances with a content range (``px_tissue_min``), ``n_kinds`` the
        distinct (Bits Stored, Pixel Representation) among them: stored values of different kinds
        are different units, so ``bits_stored`` and ``pixel_representation`` keep one kind."""
        validate_uid(series_uid, what="Series Instance UID")
        c = instances.c
        where = [c.series_uid == series_uid, c.compressible.is_(True)]
        if bits_stored is not None:
            where.append(c.bits_stored == bits_stored)
        if pixel_representation is not None:
            where.append(c.pixel_representation == pixel_representation)
        query = sa.select(
            sa.func.count(),
            sa.func.min(c.px_min),
            sa.func.max(c.px_max),
            sa.func.min(c.px_tissue_min),
            sa.func.max(c.px_tissue_max),
            sa.func.sum(c.px_below_floor),
            sa.func.sum(c.rows * c.columns * c.frames),
            sa.func.sum(c.frames),
            sa.func.count(c.px_tissue_min),
            sa.func.count(sa.distinct(c.bits_stored * 2 + c.pixel_representation)),
        ).where(*where)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or not row[0] or row[1] is None:
            return None
        keys = ("n_images", "min", "max", "tissue_min", "tissue_max", "n_below_floor", "n_voxels", "n_frames",
                "n_content", "n_kinds")  # fmt: skip
        return dict(zip(keys, row))

    # ---------------------------------------------------------------- renditions / archives

    def put_rendition(self, values: Mapping[str, Any]) -> None:
        self.put_renditions([values])

    def put_renditions(self, rows: Sequence[Mapping[str, Any]], replaced: list[str] | None = None) -> int:
        """Record renditions (each replacing the one of its instance and preset) in one transaction:
        one commit, one sync to disk, for a batch of pre-computed files already written. A row with
        ``source_sha256`` (the original it was coded from) is recorded only while its instance is
        that original: one deleted meanwhile, or replaced by a corrected file under the same SOP
        Instance UID, is left out (until 2026-12-02 the old content was recorded for the new
        instance, and a deleted one's row failed the batch on its foreign key: an outside audit).
        ``replaced``: the paths of the renditions replaced by other files are appended (the caller
        removes those no row references after the commit, :meth:`.Store.remove_unreferenced`).
        Returns how many rows were recorded."""
        if not rows:
            return 0
        recorded = 0
        with self.engine.begin() as conn:
            _take_write_lock(conn)
            wanted = {str(r["sop_uid"]) for r in rows if r.get("source_sha256") is not None}
            current: dict[str, str] = {}
            for chunk in _chunks(sorted(wanted)):
                query = (sa.select(instances.c.sop_uid, instances.c.sha256).where(instances.c.sop_uid.in_(chunk))
                         .with_for_update(read=True))  # fmt: skip
                current.update({str(r[0]): str(r[1]) for r in conn.execute(query)})
            for row in rows:
                values = {k: v for k, v in row.items() if k != "source_sha256"}
                source = row.get("source_sha256")
                if source is not None and current.get(str(values["sop_uid"])) != source:
                    continue
                where = (renditions.c.sop_uid == values["sop_uid"], renditions.c.preset == values["preset"])
                if replaced is not None:
                    old = conn.execute(sa.select(renditions.c.path).where(*where)).scalar()
                    if old is not None and old != values["path"]:
                        replaced.append(str(old))
                conn.execute(renditions.delete().where(*where))
                conn.execute(renditions.insert().values(**values))
                recorded += 1
        return recorded

    def rendition(self, sop_uid: str, preset: str) -> RenditionRecord | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(renditions).where(renditions.c.sop_uid == sop_uid, renditions.c.preset == preset)
                )
                .mappings()
                .first()
            )
        return None if row is None else RenditionRecord.from_row(row)

    def renditions_of(self, sop_uids: Sequence[str], preset: str) -> dict[str, RenditionRecord]:
        out: dict[str, RenditionRecord] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(sop_uids), 500):
                chunk = list(sop_uids[i : i + 500])
                for row in conn.execute(
                    sa.select(renditions).where(renditions.c.sop_uid.in_(chunk), renditions.c.preset == preset)
                ).mappings():
                    out[row["sop_uid"]] = RenditionRecord.from_row(row)
        return out

    def put_archive(
        self, values: Mapping[str, Any], *, expect: str, revision: int | None = None, replaced: list[str] | None = None
    ) -> bool:
        """Record an archive unless the study changed meanwhile (then nothing is recorded: False);
        a study-level one with the coding ``revision`` it was made under (:data:`archive_builds`).

        ``expect``: :func:`instances_fingerprint` of the instances it was built from, compared with
        the catalog's inside the transaction that records it (the write lock taken first; the
        study row locked on PostgreSQL, which every instance added to it updates). Until
        2026-12-02 only the instance count was compared, and before the transaction began: an
        instance added in between, or one replaced by a corrected file, left an archive without
        it (or with the old content) served as current (an outside audit). The path of the archive
        it replaces is appended to ``replaced`` (the caller removes the file after the commit)."""
        with self.engine.begin() as conn:
            _take_write_lock(conn)
            conn.execute(sa.select(studies.c.study_uid).where(studies.c.study_uid == values["study_uid"])
                         .with_for_update())  # fmt: skip
            q = sa.select(instances.c.sop_uid, instances.c.sha256).where(instances.c.study_uid == values["study_uid"])
            if values["series_uid"]:
                q = q.where(instances.c.series_uid == values["series_uid"])
            if instances_fingerprint(conn.execute(q)) != expect:
                return False
            key = (
                archives.c.study_uid == values["study_uid"],
                archives.c.series_uid == values["series_uid"],
                archives.c.preset == values["preset"],
            )
            old = [r[0] for r in conn.execute(sa.select(archives.c.path).where(*key))]
            conn.execute(archives.delete().where(*key))
            conn.execute(archives.insert().values(**values))
            if replaced is not None:
                replaced.extend(path for path in old if path != values["path"])
            if not values["series_uid"] and revision is not None:
                build = (archive_builds.c.study_uid == values["study_uid"], archive_builds.c.preset == values["preset"])
                conn.execute(archive_builds.delete().where(*build))
                conn.execute(
                    archive_builds.insert().values(
                        study_uid=values["study_uid"], preset=values["preset"], revision=revision
                    )
                )
        return True

    def outdated_archives(
        self, revision: int, presets: Collection[str] | None = None, *, dropped_too: bool = True
    ) -> list[tuple[str, str]]:
        """``(study UID, preset)`` of every study-level archive made under another coding revision
        than ``revision`` (or before revisions were recorded), and (``dropped_too``) of every preset
        a study had an archive for that it has no longer (an ingest or a deletion in the study
        dropped it); ``presets``: only those."""
        a, b = archives.c, archive_builds.c
        stale = (
            sa.select(a.study_uid, a.preset)
            .select_from(archives.outerjoin(archive_builds, (b.study_uid == a.study_uid) & (b.preset == a.preset)))
            .where(a.series_uid == "", sa.or_(b.revision.is_(None), b.revision != revision))
        )
        dropped = (
            sa.select(b.study_uid, b.preset)
            .select_from(
                archive_builds.outerjoin(
                    archives, (a.study_uid == b.study_uid) & (a.preset == b.preset) & (a.series_uid == "")
                )
            )
            .where(a.study_uid.is_(None))
        )
        if presets is not None:
            stale = stale.where(a.preset.in_(list(presets)))
            dropped = dropped.where(b.preset.in_(list(presets)))
        with self.engine.connect() as conn:
            found = {(r[0], r[1]) for q in ((stale, dropped) if dropped_too else (stale,)) for r in conn.execute(q)}
        return sorted(found)

    @classmethod
    def _drop_archives(cls, conn: Connection, study_uid: str) -> list[str]:
        """Remove a study's archive rows (its instances changed), the presets they were made for
        remembered; returns their paths, whose files the caller removes after the commit."""
        cls._remember_presets(conn, study_uid)
        paths = [r[0] for r in conn.execute(sa.select(archives.c.path).where(archives.c.study_uid == study_uid))]
        conn.execute(archives.delete().where(archives.c.study_uid == study_uid))
        return paths

    @staticmethod
    def _remember_presets(conn: Connection, study_uid: str) -> None:
        """Before a study's archives are dropped: a preset they were made for and
        :data:`archive_builds` does not know (archives an older medcodec made) is recorded with
        revision 0 (outdated), so the study is pre-computed for it again."""
        b = archive_builds.c
        known = {r[0] for r in conn.execute(sa.select(b.preset).where(b.study_uid == study_uid))}
        made = conn.execute(
            sa.select(archives.c.preset).where(archives.c.study_uid == study_uid, archives.c.series_uid == "")
        )
        for preset in sorted({r[0] for r in made} - known):
            conn.execute(archive_builds.insert().values(study_uid=study_uid, preset=preset, revision=0))

    def archive_revision(self, study_uid: str, preset: str) -> int | None:
        """The coding revision ``study_uid``'s ``preset`` archives were made under (``None``: not
        recorded, an archive an older medcodec made)."""
        b = archive_builds.c
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(b.revision).where(b.study_uid == study_uid, b.preset == preset)).scalar()
        return None if value is None else int(value)

    def built_presets(self, study_uid: str) -> list[str]:
        """The presets ``study_uid``'s archives were pre-computed for (:data:`archive_builds`, and
        the archives it has)."""
        with self.engine.connect() as conn:
            names = {
                r[0]
                for r in conn.execute(sa.select(archive_builds.c.preset).where(archive_builds.c.study_uid == study_uid))
            }
            names |= {
                r[0]
                for r in conn.execute(
                    sa.select(archives.c.preset).where(archives.c.study_uid == study_uid, archives.c.series_uid == "")
                )
            }
        return sorted(names)

    def archive(self, study_uid: str, series_uid: str | None, preset: str) -> ArchiveRecord | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(archives).where(
                        archives.c.study_uid == study_uid,
                        archives.c.series_uid == (series_uid or ""),
                        archives.c.preset == preset,
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else ArchiveRecord.from_row(row)

    def delete(
        self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> tuple[int, list[str]]:
        """Remove a study, a series or an instance from the catalog in one transaction: its
        instances, their renditions, the study's archives (stale without them, as after an
        ingest into it), and the series / study / patient rows left empty.

        Returns ``(instances removed, object paths nothing references any more)``: the caller
        removes those objects after the commit (a crash between leaves orphans, which
        :meth:`.Store.collect_garbage` finds, never a row without its object).

        Raises
        ------
        InvalidUidError
            A UID that is not one.
        NotFoundError
            Nothing stored under those UIDs.
        """
        validate_uid(study_uid, what="Study Instance UID")
        c = instances.c
        where = [c.study_uid == study_uid]
        if series_uid is not None:
            where.append(c.series_uid == validate_uid(series_uid, what="Series Instance UID"))
        if sop_uid is not None:
            where.append(c.sop_uid == validate_uid(sop_uid, what="SOP Instance UID"))
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(c.sop_uid, c.series_uid, c.path).where(*where)).all()
            if not rows:
                what = "instance" if sop_uid else "series" if series_uid else "study"
                raise NotFoundError(f"no {what} {sop_uid or series_uid or study_uid} in the store")
            sops = [r[0] for r in rows]
            paths = {r[2] for r in rows}
            for chunk in _chunks(sops):
                paths |= {
                    r[0] for r in conn.execute(sa.select(renditions.c.path).where(renditions.c.sop_uid.in_(chunk)))
                }
                conn.execute(renditions.delete().where(renditions.c.sop_uid.in_(chunk)))
                conn.execute(instances.delete().where(c.sop_uid.in_(chunk)))
            paths |= set(self._drop_archives(conn, study_uid))
            for uid in {r[1] for r in rows}:
                if conn.execute(sa.select(c.sop_uid).where(c.series_uid == uid).limit(1)).first() is None:
                    conn.execute(series.delete().where(series.c.series_uid == uid))
            if (
                conn.execute(sa.select(series.c.series_uid).where(series.c.study_uid == study_uid).limit(1)).first()
                is None
            ):
                key = conn.execute(sa.select(studies.c.patient_key).where(studies.c.study_uid == study_uid)).scalar()
                conn.execute(studies.delete().where(studies.c.study_uid == study_uid))
                conn.execute(archive_builds.delete().where(archive_builds.c.study_uid == study_uid))
                if (
                    conn.execute(sa.select(studies.c.study_uid).where(studies.c.patient_key == key).limit(1)).first()
                    is None
                ):
                    conn.execute(patients.delete().where(patients.c.patient_key == key))
                else:  # the patient's values are its first study's: that may be the one just deleted
                    _refresh_patient(conn, key)
            else:  # the study is still there, changed: what is served of it says so (Last-Modified)
                conn.execute(studies.update().where(studies.c.study_uid == study_uid).values(updated_at=time.time()))
                # the patient's first instance may have been among those deleted (a re-check, 2026-12-05)
                key = conn.execute(sa.select(studies.c.patient_key).where(studies.c.study_uid == study_uid)).scalar()
                _refresh_patient(conn, key)
            still = _referenced_among(conn, paths)
        return len(sops), sorted(paths - still)

    def referenced_among(self, paths: Iterable[str]) -> set[str]:
        """Those of ``paths`` a row references now (an instance, a rendition, an archive)."""
        with self.engine.connect() as conn:
            return _referenced_among(conn, set(paths))

    def classes_with_images_up_to_8_bits(self, classes: Iterable[str]) -> set[str]:
        """Those of the SOP Class UIDs ``classes`` of which some stored instance has at most 8 bits
        stored (grey or colour): the classes an 8-bit JPEG Baseline context may be needed for
        (C-GET's negotiation; asked only for the classes it concerns, through the class index)."""
        wanted = sorted(set(classes))
        if not wanted:
            return set()
        query = (
            sa.select(instances.c.sop_class_uid)
            .where(instances.c.sop_class_uid.in_(wanted), instances.c.bits_stored <= 8)
            .distinct()
        )
        with self.engine.connect() as conn:
            return {str(row[0]) for row in conn.execute(query)}

    def referenced(self) -> list[tuple[str, str, int]]:
        """Every object the catalog references: ``(path, sha256 or etag, size)``."""
        with self.engine.connect() as conn:
            out = [tuple(r) for r in conn.execute(sa.select(instances.c.path, instances.c.sha256, instances.c.size))]
            out += [
                tuple(r) for r in conn.execute(sa.select(renditions.c.path, renditions.c.sha256, renditions.c.size))
            ]
            out += [tuple(r) for r in conn.execute(sa.select(archives.c.path, archives.c.etag, archives.c.size))]
        return out

    def colour_passthroughs(self, preset: str) -> list[tuple[str, str, Any]]:
        """``(study UID, manifest entry JSON, instance record)`` of every three-sample instance whose
        ``preset`` rendition is a passthrough: what :meth:`.Store.pending` asks again whether the
        preset now codes it (``lossless`` kept colour as stored until 2026-12-02)."""
        query = (
            sa.select(instances, renditions.c.entry.label("rendition_entry"))
            .select_from(instances.join(renditions, renditions.c.sop_uid == instances.c.sop_uid))
            .where(renditions.c.preset == preset)
            .where(renditions.c.passthrough.is_(True), instances.c.samples_per_pixel == 3)
        )
        with self.engine.connect() as conn:
            rows = list(conn.execute(query).mappings())
        return [(row["study_uid"], row["rendition_entry"], InstanceRecord.from_row(row)) for row in rows]

    def received_studies(self) -> list[str]:
        """Studies holding an instance a server received (STOW-RS or C-STORE: :data:`SOURCE_STOW`,
        :data:`SOURCE_DIMSE`), in UID order."""
        c = instances.c
        query = (
            sa.select(c.study_uid)
            .where(sa.or_(c.source == SOURCE_STOW, c.source.startswith(SOURCE_DIMSE, autoescape=True)))
            .distinct()
            .order_by(c.study_uid)
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def studies_without_archive(self, preset: str) -> list[str]:
        """Studies with no current study-level archive for ``preset`` (never computed, or a new instance came)."""
        have = sa.select(archives.c.study_uid).where(archives.c.preset == preset, archives.c.series_uid == "")
        query = sa.select(studies.c.study_uid).where(studies.c.study_uid.not_in(have)).order_by(studies.c.study_uid)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def study_summaries(self) -> list[dict[str, Any]]:
        """One row per study for a listing: UID, date, patient ID and name, description,
        modalities, series / instance count, bytes of originals, and ``{preset: archive bytes}``
        of its current study-level archives."""
        c = instances.c
        q = (
            sa.select(
                studies.c.study_uid,
                studies.c.study_date,
                studies.c.study_description,
                patients.c.patient_id,
                patients.c.patient_name,
                sa.func.count(sa.distinct(c.series_uid)),
                sa.func.count(c.sop_uid),
                sa.func.sum(c.size),
            )
            .select_from(studies.join(patients, patients.c.patient_key == studies.c.patient_key).join(instances))
            .group_by(
                studies.c.study_uid,
                studies.c.study_date,
                studies.c.study_description,
                patients.c.patient_id,
                patients.c.patient_name,
            )
            .order_by(studies.c.study_date.desc(), studies.c.study_uid)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
            mods: dict[str, set[str]] = {}
            for uid, modality in conn.execute(sa.select(series.c.study_uid, series.c.modality)):
                mods.setdefault(uid, set()).add(modality)
            zips: dict[str, dict[str, int]] = {}
            for uid, preset, size in conn.execute(
                sa.select(archives.c.study_uid, archives.c.preset, archives.c.size).where(archives.c.series_uid == "")
            ):
                zips.setdefault(uid, {})[preset] = int(size)
        keys = ("study_uid", "study_date", "description", "patient_id", "patient_name", "series", "instances", "bytes")
        out = []
        for row in rows:
            item = dict(zip(keys, row))
            item["bytes"] = int(item["bytes"] or 0)
            item["modalities"] = sorted(m for m in mods.get(item["study_uid"], ()) if m)
            item["archives"] = zips.get(item["study_uid"], {})
            out.append(item)
        return out

    def study_uids(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(studies.c.study_uid).order_by(studies.c.study_uid))]

    # ---------------------------------------------------------------- QIDO

    def find(
        self,
        level: str,
        query: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        study_uid: str | None = None,
        series_uid: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        fuzzy: bool = False,
        include: Collection[str] = (),
    ) -> list[dict[str, Any]]:
        """QIDO-RS search at ``level`` (``"study"``, ``"series"``, ``"instance"``) as DICOM JSON objects.

        ``include`` (QIDO-RS ``includefield``): tags (8 hex digits) to add to the level's own
        attributes, taken from the instance's header (at series and study level from its first
        instance's), when present; ``"all"`` adds every attribute of an instance's header (bulk
        data left out) and nothing at series and study level, whose attributes are those listed."""
        if level not in _LEVELS:
            raise InvalidInputError(f"level={level!r}: expected study, series or instance")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit={limit!r}: expected a non-negative integer")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidInputError(f"offset={offset!r}: expected a non-negative integer")
        items = list(query.items()) if isinstance(query, Mapping) else list(query)
        conds: list[sa.ColumnElement[bool]] = []
        if study_uid is not None:
            conds.append(_condition("StudyInstanceUID", study_uid, False))
        if series_uid is not None:
            conds.append(_condition("SeriesInstanceUID", series_uid, False))
        need = _LEVELS[level]
        # a key given more than once (by keyword and by tag too: dicomweb-client sends a list as
        # repeated parameters) matches any of its values; an empty value is universal matching
        values: dict[str, list[str]] = {}
        for raw_key, value in items:
            if raw_key.strip().lower() in _NOT_KEYS:
                continue
            values.setdefault(_key_name(raw_key), []).append("" if value is None else str(value))
        for key, given in values.items():
            if "" in given:
                continue  # universal matching
            if key in _UID_KEYS:  # one list, one IN: values repeated or comma-separated alike
                given = [",".join(given)]
            elif len(given) > MAX_ALTERNATIVES:  # each is a condition of its own (SQLite: depth 1000)
                raise InvalidInputError(f"{key} is given {len(given)} times: at most {MAX_ALTERNATIVES} values")
            alternatives = [_match(key, value, need, fuzzy) for value in given]
            conds.append(alternatives[0] if len(alternatives) == 1 else sa.or_(*alternatives))
        j = studies.join(patients, patients.c.patient_key == studies.c.patient_key)
        if need >= 1:
            j = j.join(series, series.c.study_uid == studies.c.study_uid)
        if need >= 2:
            j = j.join(instances, instances.c.series_uid == series.c.series_uid)
        cols: list[Any] = [studies.c.study_uid, studies.c.attrs.label("study_attrs"),
                           patients.c.patient_name.label("p_name"), patients.c.birth_date.label("p_birth"),
                           patients.c.sex.label("p_sex")]  # fmt: skip
        if need >= 1:
            cols += [series.c.series_uid, series.c.attrs.label("series_attrs"), series.c.series_number]
        if need >= 2:
            cols += [
                instances.c.sop_uid,
                instances.c.header,
                instances.c.instance_number,
                instances.c.transfer_syntax_uid,
                instances.c.position,
            ]
        order = [studies.c.study_date.desc(), studies.c.study_uid]
        if need >= 1:
            order += [series.c.series_number, series.c.series_uid]
        if need >= 2:
            order += [instances.c.instance_number, instances.c.sop_uid]
        # the page's keys first, sorted on the key and order columns alone; then its rows by primary
        # key: sorting whole rows (an instance's header is ~9 KB of JSON) for every page made paging
        # through 23,000 instances take 267 s (outside scale audit, 2026-12-02)
        key_col = {0: studies.c.study_uid, 1: series.c.series_uid, 2: instances.c.sop_uid}[need]
        q = sa.select(key_col).select_from(j).where(*conds).order_by(*order).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            keys = [k for (k,) in conn.execute(q)]
            by_key: dict[str, Mapping[Any, Any]] = {}
            for chunk in _chunks(keys):
                rows_q = sa.select(*cols, key_col.label("_key")).select_from(j).where(key_col.in_(chunk))
                by_key.update((row["_key"], row) for row in conn.execute(rows_q).mappings())
            rows = [by_key[k] for k in keys if k in by_key]  # a row deleted in between is left out
            counts = self._counts(conn, level, rows)
            return [self._with_fields(conn, level, row, self._dicom_json(level, row, counts), include) for row in rows]

    def _counts(self, conn: Connection, level: str, rows: Sequence[Mapping[Any, Any]]) -> dict[str, Any]:
        """The computed attributes of a page of study or series rows, in one grouped query each
        (they were three queries per study): ``{uid: (modalities, series, instances)}`` for
        studies, ``{uid: instances}`` for series."""
        if level == "study":
            uids = [row["study_uid"] for row in rows]
            mods: dict[str, set[str]] = {u: set() for u in uids}
            n_series: dict[str, int] = {}
            n_inst: dict[str, int] = {}
            for chunk in _chunks(uids):
                grouped = sa.select(series.c.study_uid, series.c.modality, sa.func.count()).where(
                    series.c.study_uid.in_(chunk)
                )
                for uid, modality, n in conn.execute(grouped.group_by(series.c.study_uid, series.c.modality)):
                    if modality:
                        mods[uid].add(modality)
                    n_series[uid] = n_series.get(uid, 0) + int(n)
                inst = sa.select(instances.c.study_uid, sa.func.count()).where(instances.c.study_uid.in_(chunk))
                n_inst.update((uid, int(n)) for uid, n in conn.execute(inst.group_by(instances.c.study_uid)))
            return {u: (sorted(mods[u]), n_series.get(u, 0), n_inst.get(u, 0)) for u in uids}
        if level == "series":
            out: dict[str, Any] = {}
            for chunk in _chunks([row["series_uid"] for row in rows]):
                inst = sa.select(instances.c.series_uid, sa.func.count()).where(instances.c.series_uid.in_(chunk))
                out.update((uid, int(n)) for uid, n in conn.execute(inst.group_by(instances.c.series_uid)))
            return out
        return {}

    def _with_fields(
        self, conn: Connection, level: str, row: Mapping[Any, Any], out: dict[str, Any], include: Collection[str]
    ) -> dict[str, Any]:
        wanted = set(include) - set(out)
        if not wanted or (level != "instance" and wanted == {"all"}):
            return out
        if level == "instance":
            text = row["header"]
        else:
            c = instances.c
            where = c.series_uid == row["series_uid"] if level == "series" else c.study_uid == row["study_uid"]
            first = sa.select(c.header).where(where).order_by(c.instance_number, c.sop_uid).limit(1)
            text = conn.execute(first).scalar()
        header = json.loads(text or "{}")
        tags = header.keys() if "all" in wanted and level == "instance" else wanted & header.keys()
        for tag in tags:
            if tag not in out and "BulkDataURI" not in header[tag]:
                out[tag] = header[tag]
        return dict(sorted(out.items()))

    @staticmethod
    def _dicom_json(level: str, row: Mapping[Any, Any], counts: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out.update(json.loads(row["study_attrs"]))
        _patient_entity(out, row)
        if level == "study":
            mods, n_series, n_inst = counts.get(row["study_uid"], ([], 0, 0))
            out["00080061"] = {"vr": "CS", "Value": mods} if mods else {"vr": "CS"}
            out["00201206"] = {"vr": "IS", "Value": [int(n_series or 0)]}
            out["00201208"] = {"vr": "IS", "Value": [int(n_inst or 0)]}
            return out
        out.update(json.loads(row["series_attrs"]))
        if level == "series":
            out["00201209"] = {"vr": "IS", "Value": [int(counts.get(row["series_uid"], 0))]}
            return out
        header = json.loads(row["header"])
        for tag in _INSTANCE_TAGS:
            if tag in header:
                out[tag] = header[tag]
        out["00083002"] = {"vr": "UI", "Value": [row["transfer_syntax_uid"]]}
        return out


def _patient_values(header: str | None) -> dict[str, str]:
    """The patient row's name, birth date and sex from an instance's stored header (DICOM JSON),
    as ingest writes them from the data set."""
    attrs = json.loads(header) if header else {}
    return {
        "patient_name": _pn_json_text(attrs.get("00100010"))[:324],  # every group, as ingest
        "birth_date": plain_da(first_value(attrs, "00100030"))[:16],
        "sex": first_value(attrs, "00100040")[:16],
    }


def _refresh_patient(conn: Connection, key: Any) -> None:
    """Give the patient ``key`` the values of its first instance still stored (ingest order): the
    patient keeps its first study's values (docs/delivery.md), and when that study was deleted its
    name stayed, the remaining studies matched and answered with a name no stored object had (an
    outside audit, 2026-12-05)."""
    header = conn.execute(
        sa.select(instances.c.header)
        .join(studies, studies.c.study_uid == instances.c.study_uid)
        .where(studies.c.patient_key == key)
        .order_by(instances.c.ingested_at, instances.c.sop_uid)
        .limit(1)
    ).scalar()
    if header is not None:
        conn.execute(patients.update().where(patients.c.patient_key == key).values(**_patient_values(header)))


def _pn_json_text(attr: Mapping[str, Any] | None) -> str:
    """A DICOM JSON PN attribute as PN text (``Alphabetic=Ideographic=Phonetic``, several values
    joined by ``\\`` as the catalog keeps them)."""

    def one(value: Any) -> str:
        if isinstance(value, dict):
            return "=".join(value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")).rstrip("=")
        return "" if value is None else str(value)

    return "\\".join(one(v) for v in (attr or {}).get("Value") or [""])


def _patient_entity(out: dict[str, Any], row: Mapping[Any, Any]) -> None:
    """A QIDO-RS answer's Patient's Name, Birth Date and Sex as the patient entity has them, the values
    its keys are matched against (:data:`QUERY_KEYS`). They are the study's own unless another study of
    the same PatientID and issuer came first with other values (a name corrected later, two
    spellings): the patient keeps the first (docs/delivery.md). Until 2026-12-05 such a study was
    answered with its own name, so a study came back whose name did not match the query, found by a
    name it does not show (an outside audit); its own header stays what /metadata and retrieval give."""
    name = str(row["p_name"] or "")
    if _pn_json_text(out.get("00100010"))[:324] != name:
        values = []
        for text in name.split("\\"):
            groups = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), text.split("=")))
            values.append({k: v for k, v in groups.items() if v})
        out["00100010"] = {"vr": "PN", "Value": values} if any(values) else {"vr": "PN"}
    for tag, column, vr, norm in (("00100030", "p_birth", "DA", plain_da), ("00100040", "p_sex", "CS", str.strip)):
        have = str(row[column] or "")
        if norm(first_value(out, tag))[:16] != have:
            out[tag] = {"vr": vr, "Value": [have]} if have else {"vr": vr}


#: Instance-level attributes returned by QIDO-RS (PS3.18 Table 10.6.3-5) besides study and series ones.
_INSTANCE_TAGS = (
    "00080016",
    "00080018",
    "00200013",
    "00280010",
    "00280011",
    "00280100",
    "00280008",
    "00080008",
    "00080023",
    "00080033",
    "00200032",
    "00200037",
    "00280030",
    "00280004",
    "00280101",
    "00280103",
)


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """``items`` in slices short enough for an SQL ``IN`` list on every backend."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _instance_order(row: Any) -> tuple[Any, ...]:
    """Sort key of a row of :meth:`Catalog.instances` (series number, series UID, position,
    instance number, SOP Instance UID; missing values last)."""
    m = row._mapping
    sn = m["series_number"]
    pos = m["position"]
    num = m["instance_number"]
    return (
        sn is None,
        sn if sn is not None else 0,
        m["series_uid"],
        pos is None,
        pos if pos is not None else 0.0,
        num is None,
        num if num is not None else 0,
        m["sop_uid"],
    )


def instances_fingerprint(rows: Iterable[Any]) -> str:
    """One digest of ``(SOP Instance UID, sha256)`` pairs, whatever their order: what an archive
    was built from (:meth:`Catalog.put_archive`)."""
    digest = hashlib.sha256()
    for sop, sha in sorted((str(r[0]), str(r[1])) for r in rows):
        digest.update(f"{sop}\\{sha}\n".encode())
    return digest.hexdigest()


def _take_write_lock(conn: Connection) -> None:
    """Begin the transaction with the database's write lock, so that what it reads next stays
    true until it commits: pysqlite sends BEGIN only before the first write statement (a read
    before it is outside the transaction), and SQLite takes the write lock at a write statement,
    even one that changes nothing. Harmless on PostgreSQL (where the callers lock rows)."""
    conn.execute(sa.update(studies).where(sa.false()).values(study_uid=studies.c.study_uid))


def _referenced_among(conn: Connection, paths: set[str]) -> set[str]:
    still: set[str] = set()
    for chunk in _chunks(sorted(paths)):
        for table in (instances, renditions, archives):
            still |= {r[0] for r in conn.execute(sa.select(table.c.path).where(table.c.path.in_(chunk)))}
    return still


#: Bytes SQLite's write-ahead log is cut back to once checkpointed.
WAL_SIZE_LIMIT = 16 << 20


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    # the log is cut back to this after a checkpoint: one written while checkpoints could not run
    # (a full disk, a long reader) stayed at its largest for good (4 MB beside a 90 kB catalog)
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    # wildcard matching is case-sensitive (PS3.4 C.2.2.2.4) as PostgreSQL's LIKE is; SQLite's LIKE
    # folds ASCII case unless told (person names fold on both, through fold_case)
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.close()
    dbapi_connection.create_function("medcodec_lower", 1, _sqlite_lower, deterministic=True)
    dbapi_connection.create_function("medcodec_name", 1, _sqlite_name, deterministic=True)


def _sqlite_error(context: Any) -> None:
    """What SQLite's errors mean for the store (an outside audit, 2026-12-05):

    * "attempt to write a readonly database": a connection SQLite opened while the files were not
      writable stays read-only for good, and the pool kept it: writes failed at random until a
      restart, long after the store was writable again. Such a connection is now discarded (the
      pool with it) and the next one opens afresh.
    * "database or disk is full", or "disk I/O error" with no space left beside the catalog (SQLite
      cannot make its ``-shm`` file): :class:`StoreFullError`, so that ``store gc`` / ``delete`` and a
      pre-computation say "no space left" (exit 2), not "internal error, please report it".
    * "unable to open database file" while this process can open no file: :class:`OutOfResourcesError`.
    """
    exc = context.original_exception
    text = str(exc)
    if "readonly database" in text:
        context.is_disconnect = True
    if "database or disk is full" in text or ("disk I/O error" in text and _catalog_disk_full(context)):
        raise StoreFullError(errno.ENOSPC, f"no space left for the catalog ({text})") from exc
    if "unable to open database file" in text and cannot_open_files():
        raise OutOfResourcesError(errno.EMFILE, "cannot open the catalog: no file can be opened now; retry") from exc


def _catalog_disk_full(context: Any) -> bool:
    """Whether the filesystem of the SQLite catalog ``context``'s engine opens has (nearly) no space left."""
    import shutil

    try:
        database = context.engine.url.database if context.engine is not None else None
        if not database:
            return False
        return shutil.disk_usage(os.path.dirname(os.path.abspath(database))).free < (1 << 20)
    except Exception:
        return False


def now() -> float:
    return time.time()


#: (0028,2110) Lossy Image Compression in a stored header (ingest's JSON: keys sorted, no spaces).
_LOSSY_FLAG = re.compile(r'"00282110":\{"Value":\["([^"]*)"')


def _lossy_flag(header: str) -> str | None:
    """The Lossy Image Compression value of a stored header JSON (always written by ingest's
    ``_dumps``), ``None`` without one (or with an empty value)."""
    found = _LOSSY_FLAG.search(header)
    return None if found is None else found.group(1)
