"""The store: objects on an fsspec filesystem plus the catalog.

Layout (any fsspec URL; a local folder by default)::

    STORE/
      catalog.sqlite                              the catalog (local stores; ``catalog=`` overrides)
      objects/sha256/ab/abcdef....dcm             originals, byte for byte, content-addressed
      renditions/<preset>/sha256/ab/....dcm       pre-computed files per preset (content-addressed)
      archives/<preset>/<study>/<series|study>-<sha256[:16]>.zip   pre-computed ZIPs
      tmp/                                        staging for atomic writes

Atomicity. An object is written to ``tmp/``, flushed and fsync'ed, then renamed to its final
name (and the folder fsync'ed), so a final name always holds a complete object. The catalog
row that references an object is inserted, in one transaction, only after the object is in
place: a crash or a full disk at any point leaves either nothing or an unreferenced object
(:meth:`Store.check` lists those; :meth:`Store.collect_garbage` removes them), never a row
whose object is missing or partial. Objects never change once written (content addressing),
so a reader can never see one half-replaced. On object stores (``s3://``) a PUT is atomic
already and is used as is.

``ENOSPC``/``EDQUOT`` become :class:`~medcodec.errors.StoreFullError` with the temporary file
removed; what was ingested before stays.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import threading
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import DeliveryError, InvalidInputError, NotFoundError, OutputError, StoreFullError
from .catalog import ArchiveRecord, Catalog, InstanceRecord, RenditionRecord
from .objects import Objects, is_full
from .reserve import RESERVE_NAME, keep_reserve, release_reserve
from .uids import validate_uid

#: Series mappings a store remembers (Store.series_mapping); the oldest goes first.
_MAPPINGS_KEPT = 256
#: ``store gc`` leaves unreferenced objects younger than this alone (seconds): an ingest writes an
#: object a moment before its catalog row, and a pre-computation an archive before its row.
GC_MIN_AGE = 3600.0
#: ... except a ``tmp/*.part`` whose writer is known to be gone (:meth:`Objects.abandoned`): removed
#: after this many seconds (a killed ingest's ``.part`` held its space for an hour).
GC_ABANDONED_AGE = 60.0
#: :meth:`Store.original_archive` reads at most this many bytes of originals whose CRC-32 is not
#: recorded (a store made before 2026-12-03) before it answers; past it, the archive is live.
ASSEMBLE_CRC_BUDGET = 1 << 30

if TYPE_CHECKING:
    from .assembled import AssembledArchive
    from .backup import BackupReport
    from .ingest import IngestReport, InstanceOutcome

__all__ = [
    "Store",
    "open_store",
    "check_store_folder",
    "local_store_path",
    "StoreCheck",
    "StoreDeletion",
    "GC_MIN_AGE",
    "GC_ABANDONED_AGE",
    "ASSEMBLE_CRC_BUDGET",
]


@dataclass
class StoreCheck:
    """What :meth:`Store.check` found.

    ``missing``: referenced objects that do not exist; ``corrupt``: referenced objects whose
    size or sha256 differs from the catalog; ``orphans``: objects nothing references
    (harmless leftovers of an interrupted write); ``checked``: referenced objects checked.
    """

    checked: int
    missing: list[str]
    corrupt: list[str]
    orphans: list[str]

    @property
    def consistent(self) -> bool:
        return not self.missing and not self.corrupt


@dataclass
class StoreDeletion:
    """What :meth:`Store.delete` removed: instances from the catalog, objects from storage."""

    instances: int
    objects: int


class Store:
    """A delivery store: originals, renditions, archives and their catalog.

    Use :func:`open_store`. Thread-safe for concurrent readers and writers in one process;
    several processes may share a store (SQLite WAL, content-addressed objects).
    """

    def __init__(self, objects: Objects, catalog: Catalog, *, reserve_root: Path | None = None,
                 use_reserve: bool = False):  # fmt: skip
        self.objects = objects
        self.catalog = catalog
        self.url = objects.url
        #: The folder of a local store whose catalog lives there (:mod:`.reserve`), else None.
        self.reserve_root = reserve_root
        #: Whether maintenance may give up the reserve when the catalog cannot be written (``store`` commands).
        self.use_reserve = use_reserve
        self._lock = threading.Lock()
        self._mappings: dict[tuple[Any, ...], Any] = {}  # (series, preset, statistics) -> mapping
        self._crc_locks: dict[str, threading.Lock] = {}  # study -> lock of its CRC-32 reading (original_archive)

    def close(self) -> None:
        self.catalog.close()
        if self.reserve_root is not None:  # made again once there is room (a delete, a gc freed some)
            keep_reserve(self.reserve_root)

    def _with_reserve(self, work: Callable[[], Any]) -> Any:
        """``work()``; when it finds no space for the catalog and this store may (``use_reserve``),
        again after giving up the reserve (:mod:`.reserve`): what a delete or a gc needs to free space."""
        try:
            return work()
        except StoreFullError:
            if not (self.use_reserve and self.reserve_root is not None and release_reserve(self.reserve_root)):
                raise
        return work()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- ingest

    def ingest(
        self,
        paths: Any,
        *,
        precompress: bool = True,
        presets: Iterable[str] | None = None,
        scheduler: str | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        client: Any = None,
    ) -> IngestReport:
        """Ingest files, folders, ZIPs and DICOMDIRs (see :func:`medcodec.delivery.ingest.ingest`)."""
        from .ingest import ingest

        return ingest(
            self, paths, precompress=precompress, presets=presets, scheduler=scheduler, progress=progress, client=client
        )

    def ingest_bytes(
        self, data: bytes, *, source: str = "<bytes>", expect: tuple[str, str] | None = None
    ) -> InstanceOutcome:
        """Ingest one DICOM file given as bytes (STOW-RS, C-STORE; ``expect``: the SOP Class and
        Instance UID a C-STORE request names).

        See :func:`medcodec.delivery.ingest.ingest_bytes`.
        """
        from .ingest import ingest_bytes

        return ingest_bytes(self, data, source=source, expect=expect)

    def precompute(
        self,
        study_uid: str,
        *,
        presets: Iterable[str] | None = None,
        scheduler: str | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Pre-compute renditions and archives of a study (see :mod:`medcodec.delivery.precompute`)."""
        from .precompute import precompute

        precompute(
            self,
            [validate_uid(study_uid, what="Study Instance UID")],
            presets=presets,
            scheduler=scheduler,
            progress=progress,
        )

    def pending(self, presets: Iterable[str] | None = None) -> list[str]:
        """Studies whose archives for ``presets`` are missing or stale (:meth:`pending_work`)."""
        return sorted(self.pending_work(presets))

    def pending_work(self, presets: Iterable[str] | None = None) -> dict[str, list[str]]:
        """``{study UID: presets to pre-compute}`` for the studies whose archives are missing or
        stale: never computed for a default preset, dropped by a new instance (every preset the
        study had, not only the default ones: ``lossless`` and ``original`` stayed live until
        2026-12-02), made under other coding rules (:data:`.manifest.CODING_REVISION`: a store an
        older medcodec made), or holding a colour image passed through by a preset that now codes
        colour. ``presets``: only those (default: the default presets for every study, and the
        other presets where a study had them)."""
        from .manifest import CODING_REVISION
        from .precompute import rendition_fresh
        from .presets import DEFAULT_PRESETS, get_preset

        names = list(presets) if presets is not None else list(DEFAULT_PRESETS)
        found: dict[str, set[str]] = {}
        for name in names:
            for study in self.catalog.studies_without_archive(name):
                found.setdefault(study, set()).add(name)
            if get_preset(name).codes_colour:
                for study, entry, record in self.catalog.colour_passthroughs(name):
                    if not rendition_fresh(entry, None, record, name):
                        found.setdefault(study, set()).add(name)
        for study, name in self.catalog.outdated_archives(CODING_REVISION, None if presets is None else names):
            found.setdefault(study, set()).add(name)
        return {study: sorted(found[study]) for study in sorted(found)}

    def refresh(
        self,
        *,
        presets: Iterable[str] | None = None,
        scheduler: str | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        client: Any = None,
    ) -> list[str]:
        """Pre-compute every :meth:`pending_work` study (after STOW / C-STORE brought new
        instances, or after an upgrade), each for its presets.

        Only renditions that are missing or stale are coded again. Returns the archives written.
        ``client``: a connected ``distributed.Client`` instead of ``scheduler``.
        """
        from .precompute import precompute

        work = self.pending_work(presets)
        by_presets: dict[tuple[str, ...], list[str]] = {}
        for study, names in work.items():
            by_presets.setdefault(tuple(names), []).append(study)
        written: list[str] = []
        for group, studies in by_presets.items():
            written += precompute(
                self, studies, presets=list(group), scheduler=scheduler, progress=progress, client=client
            )
        return written

    # ---------------------------------------------------------------- queries

    def find_studies(
        self,
        query: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        fuzzy: bool = False,
        include: Collection[str] = (),
    ) -> list[dict[str, Any]]:
        """QIDO-RS study search; DICOM JSON objects (PS3.18 F.2) with the computed study attributes
        (``include``: QIDO-RS ``includefield``, :meth:`.Catalog.find`)."""
        return self.catalog.find("study", query or {}, limit=limit, offset=offset, fuzzy=fuzzy, include=include)

    def find_series(
        self,
        study_uid: str | None,
        query: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        fuzzy: bool = False,
        include: Collection[str] = (),
    ) -> list[dict[str, Any]]:
        """QIDO-RS series search (within a study when ``study_uid`` is given)."""
        return self.catalog.find(
            "series", query or {}, study_uid=study_uid, limit=limit, offset=offset, fuzzy=fuzzy, include=include
        )

    def find_instances(
        self,
        study_uid: str | None,
        series_uid: str | None,
        query: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        fuzzy: bool = False,
        include: Collection[str] = (),
    ) -> list[dict[str, Any]]:
        """QIDO-RS instance search (within a study/series when given)."""
        return self.catalog.find(
            "instance",
            query or {},
            study_uid=study_uid,
            series_uid=series_uid,
            limit=limit,
            offset=offset,
            fuzzy=fuzzy,
            include=include,
        )

    def instances(
        self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> list[InstanceRecord]:
        """Stored instances of a study (series, instance), sorted by series then position.

        Raises
        ------
        InvalidUidError
            A UID that is not one.
        NotFoundError
            Nothing matches.
        """
        found = self.catalog.instances(study_uid, series_uid, sop_uid)
        if not found:
            what = "instance" if sop_uid else "series" if series_uid else "study"
            uid = sop_uid or series_uid or study_uid
            raise NotFoundError(f"no {what} {uid} in the store")
        return found

    def metadata(self, record: InstanceRecord, instance_url: str | None = None) -> dict[str, Any]:
        """The instance's header as DICOM JSON (PS3.18 F.2): every attribute, binary ones over
        768 bytes (pixel data included) as a ``BulkDataURI`` under ``instance_url``
        (``.../instances/{sop}``; without it the URIs stay relative to the instance,
        ``bulkdata/{path}``: :func:`.header.bulk_path`). A header stored before 2026-12-01 names
        no bulk data until ``medcodec store reindex``."""
        from .header import absolute_bulk_uris

        header: dict[str, Any] = json.loads(absolute_bulk_uris(self.catalog.header(record.sop_uid), instance_url or ""))
        return header

    def open_original(self, record: InstanceRecord) -> BinaryIO:
        """The original file, byte for byte, open for reading (binary, seekable); one whose length is
        not the catalog's is a :class:`DeliveryError` (damaged: ``medcodec store check``)."""
        return self.objects.open(record.path, record.size)

    def rendition(self, record: InstanceRecord, preset: str) -> RenditionRecord | None:
        """The pre-computed file of ``record`` under ``preset``, or ``None`` (compute it live): none
        made, or made under other coding rules than this medcodec's (:data:`.manifest.CODING_REVISION`,
        a store an older release made: served by the rules of now until ``medcodec ingest --refresh``)."""
        from .manifest import current_rules

        found = self.catalog.rendition(record.sop_uid, preset)
        return found if found is not None and current_rules(found.entry) else None

    def open_rendition(self, rendition: RenditionRecord) -> BinaryIO:
        """A pre-computed file, open for reading (its length checked against the catalog's)."""
        return self.objects.open(rendition.path, rendition.size)

    def archive(self, study_uid: str, series_uid: str | None, preset: str) -> ArchiveRecord | None:
        """The pre-computed ZIP of a study (``series_uid=None``) or series, or ``None``: not computed,
        stale (an instance came since), or made under other coding rules than this medcodec's
        (:data:`.manifest.CODING_REVISION`: a store an older release made, until ``medcodec ingest
        --refresh``; served live meanwhile, by the rules of now)."""
        from .manifest import CODING_REVISION

        validate_uid(study_uid, what="Study Instance UID")
        if series_uid is not None:
            validate_uid(series_uid, what="Series Instance UID")
        record = self.catalog.archive(study_uid, series_uid, preset)
        if record is not None and self.catalog.archive_revision(study_uid, preset) != CODING_REVISION:
            return None
        return record

    def open_archive(self, archive: ArchiveRecord | AssembledArchive) -> BinaryIO:
        """The ZIP open for reading (seekable, for Range requests)."""
        from .assembled import AssembledArchive

        if isinstance(archive, AssembledArchive):
            return archive.open(self.objects)
        return self.objects.open(archive.path, archive.size)

    def original_archive(self, study_uid: str, series_uid: str | None = None) -> AssembledArchive | None:
        """The ``original`` ZIP of a study or series assembled from the stored files
        (:mod:`.assembled`: length, ETag and ranges known, nothing copied), or ``None``: objects
        without a recorded CRC-32 (a store made before 2026-12-03) hold more than
        :data:`ASSEMBLE_CRC_BUDGET` bytes, which this request does not read first (it is streamed
        live; ``medcodec store reindex`` records them all). Fewer are read now and recorded.

        Raises
        ------
        InvalidUidError, NotFoundError
            As :meth:`instances`.
        """
        from .assembled import assemble

        records = self.instances(study_uid, series_uid)
        crcs = self.catalog.crc32s([r.sha256 for r in records])
        if any(r.sha256 not in crcs for r in records):
            with self._crc_lock(study_uid):  # concurrent first requests: one reads, the others wait
                crcs = self.catalog.crc32s([r.sha256 for r in records])
                missing = {r.sha256: r for r in records if r.sha256 not in crcs}
                if sum(int(r.size) for r in missing.values()) > ASSEMBLE_CRC_BUDGET:
                    return None
                found = {sha: self._verified_crc32(record) for sha, record in missing.items()}
                self.catalog.put_crc32s(found)
                crcs.update(found)
        lossy = self.catalog.lossy_instances([r.sop_uid for r in records])
        changed = self.catalog.study_changed_at(study_uid)  # moved by every ingest into it and every delete
        if changed is None:  # the study went between the two queries: its instances' own times
            changed = max(float(r.ingested_at) for r in records)
        return assemble(records, crcs, lossy, study_uid=study_uid, series_uid=series_uid, changed_at=changed)

    def _crc_lock(self, study_uid: str) -> threading.Lock:
        with self._lock:
            return self._crc_locks.setdefault(study_uid, threading.Lock())

    def _verified_crc32(self, record: InstanceRecord) -> int:
        """The CRC-32 of an original read whole, checked against its catalog size and sha256 (a
        CRC recorded from damaged bytes would make the damage pass every later check: an outside
        audit, 2026-12-03)."""
        crc, digest, size = 0, hashlib.sha256(), 0
        with self.open_original(record) as fh:
            while chunk := fh.read(1 << 20):
                crc = zlib.crc32(chunk, crc)
                digest.update(chunk)
                size += len(chunk)
        if size != int(record.size) or digest.hexdigest() != record.sha256:
            raise DeliveryError(
                f"the stored original {record.path} (instance {record.sop_uid}) is not the file ingested "
                f"({size} bytes, sha256 {digest.hexdigest()[:16]}...; the catalog says {record.size} bytes, "
                f"{record.sha256[:16]}...): the store is damaged (`medcodec store check`; restore it from a backup)"
            )
        return crc

    def series_mapping(self, series_uid: str, preset: str) -> Any:
        """The series-wide value mapping ``preset`` uses for a series (from catalog statistics), or ``None``.

        Remembered per (series, preset, statistics): the statistics are one SQL aggregate, and a
        series whose instances change changes them (a new instance adds to the count), so a
        remembered mapping is never stale; what is saved is the first instance's record and
        header read (~3 ms per live archive and per WADO-RS instance coded now)."""
        from .presets import PRESETS, series_mapping

        if preset not in PRESETS:
            raise InvalidInputError(f"preset={preset!r} is unknown, expected one of {sorted(PRESETS)}")
        stats = self.catalog.series_stats(series_uid)
        key = (series_uid, preset, None if stats is None else tuple(sorted(stats.items())))
        with self._lock:
            if key in self._mappings:
                return self._mappings[key]
        mapping = series_mapping(self, series_uid, PRESETS[preset], stats=stats) if stats is not None else None
        with self._lock:
            if len(self._mappings) >= _MAPPINGS_KEPT:
                self._mappings.pop(next(iter(self._mappings)))  # the oldest
            self._mappings[key] = mapping
        return mapping

    # ---------------------------------------------------------------- maintenance

    def check(self, *, verify_hashes: bool = True) -> StoreCheck:
        """Check that every object the catalog references exists with its size and sha256."""
        missing: list[str] = []
        corrupt: list[str] = []
        referenced = self.catalog.referenced()
        known = set()
        for rel, sha, size in referenced:
            known.add(rel)
            if not self.objects.exists(rel):
                missing.append(rel)
                continue
            if self.objects.size(rel) != size:
                corrupt.append(rel)
                continue
            if verify_hashes:
                digest = hashlib.sha256()
                with self.objects.open(rel) as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
                if digest.hexdigest() != sha:
                    corrupt.append(rel)
        orphans = [
            rel
            for prefix in ("objects", "renditions", "archives", "tmp")
            for rel in self.objects.walk(prefix)
            if rel not in known
        ]
        return StoreCheck(len(referenced), missing, corrupt, orphans)

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Bring every instance's stored header up to what the catalog keeps now
        (:func:`.ingest.reindex`); returns the instances updated."""
        from .ingest import reindex

        return reindex(self, progress)

    def delete(self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None) -> StoreDeletion:
        """Remove a study, a series of it or one instance: catalog rows first, in one transaction
        (:meth:`.Catalog.delete`), then the objects nothing references any more (originals,
        renditions, the study's archives). Safe beside a running server: a download of that
        study in progress may fail; the study's remaining instances are downloaded live until
        pre-computed again (``medcodec ingest --refresh``).

        Raises
        ------
        InvalidUidError
            A UID that is not one.
        NotFoundError
            Nothing stored under those UIDs.
        """
        count, paths = self._with_reserve(lambda: self.catalog.delete(study_uid, series_uid, sop_uid))
        return StoreDeletion(count, len(self.remove_unreferenced(paths)))

    def backup(
        self,
        destination: str | os.PathLike[str],
        *,
        originals_only: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> BackupReport:
        """A consistent copy of this store, taken while it is in use, that is itself a store
        (:func:`.backup.backup`: the catalog snapshotted, the objects it references copied and
        checked, the catalog put in place last; a second backup to the same place copies what is new)."""
        from .backup import backup

        return backup(self.objects, self.catalog, destination, originals_only=originals_only, progress=progress)

    def remove_unreferenced(self, paths: list[str]) -> list[str]:
        """Remove those of ``paths`` no catalog row references, safely beside a writer that
        catalogues one of them meanwhile (an ingest of the same file, reusing the object): each is
        moved aside, the references are read again, what became referenced goes back, the rest is
        removed; the writer checks its object after its commit and writes it again if missing
        (:func:`.ingest.ingest_bytes`). Either the re-read sees the writer's row, or the writer's
        check comes after the move and sees the object gone. Until 2026-12-02 an instance ingested
        during a ``store delete`` (or a ``store gc``) of the same bytes was reported stored and
        left without its object (an outside audit). Returns the paths removed."""
        aside = {rel: moved for rel in paths if (moved := self.objects.move_aside(rel)) is not None}
        wanted = self.catalog.referenced_among(aside) if aside else set()
        removed = []
        for rel, moved in aside.items():
            if rel in wanted:
                self.objects.restore(moved, rel)
            else:
                self.objects.remove(moved)
                removed.append(rel)
        return removed

    def collect_garbage(self, *, min_age: float = GC_MIN_AGE) -> list[str]:
        """Remove unreferenced objects (left by interrupted writes or rebuilt archives); returns them.

        An object is written a moment before its catalog row, so beside a running ingest it looks
        unreferenced: only objects older than ``min_age`` seconds are removed (an outside audit,
        2026-12-01, ran ``store gc`` beside an ingest and lost an original). An object whose age
        cannot be read is kept. A local ``tmp/*.part`` whose writer died (its lock is free,
        :meth:`Objects.abandoned`) goes after :data:`GC_ABANDONED_AGE` seconds, whatever ``min_age``.
        """
        old = [
            rel
            for rel in self.check(verify_hashes=False).orphans
            if (age := self.objects.age(rel)) >= min_age
            or (age >= min(min_age, GC_ABANDONED_AGE) and self.objects.abandoned(rel))
        ]
        removed = self.remove_unreferenced(old)
        self._with_reserve(self.catalog.forget_unreferenced_crc32s)
        return removed


#: The catalog of a local store and SQLite's side files.
_CATALOG_FILES = ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "catalog.sqlite-journal")
#: What a local store's folder holds (the catalog with SQLite's side files, the object prefixes).
STORE_ENTRIES = frozenset({*_CATALOG_FILES, RESERVE_NAME, "objects", "renditions", "archives", "tmp"})


def _is_catalog(path: Path) -> bool:
    """``path`` is an SQLite database (its header; an empty file among a user's files is not one)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return head == b"SQLite format 3\x00"


def check_store_folder(text: str, root: Path) -> None:
    """A folder that holds other files and no catalog is not made into a store around them
    (``--store ~/studies`` pointed at the inputs' folder would scatter ``objects/``, ``tmp/`` and a
    catalog among a user's files): :class:`InvalidInputError` naming a few of them. Hidden entries
    and ``lost+found`` (a mount point's) do not count; a ``catalog.sqlite`` that is not an SQLite
    database does not make a folder a store. Called by :func:`open_store` before anything is
    written (and by ``medcodec demo`` before its codec part)."""
    if not root.is_dir() or _is_catalog(root / "catalog.sqlite"):
        return
    try:
        foreign = sorted(
            e.name
            for e in os.scandir(root)
            if e.name not in STORE_ENTRIES and not e.name.startswith(".") and e.name != "lost+found"
        )
    except OSError:
        return  # unreadable: Objects says why
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise InvalidInputError(
            f"store {text!r} is a folder that holds other files ({shown}) and no medcodec catalog: it is not "
            "a medcodec store, and one is not made around them; give a new or empty folder, or an existing store"
        )


def _require_catalog(text: str, root: Path) -> None:
    path = root / "catalog.sqlite"
    if not path.exists():
        raise NotFoundError(f"store {text!r} has no catalog.sqlite: not a medcodec store")
    if not _is_catalog(path):
        raise NotFoundError(f"store {text!r}: its catalog.sqlite is not an SQLite database: not a medcodec store")


def local_store_path(text: str) -> Path | None:
    """The absolute local folder a store argument names, whether a path or a ``file:`` / ``local:``
    URL (``file:///d``, ``file://localhost/d``, ``file:/d``, ``local:///d``), or ``None`` for another
    filesystem's URL (``s3://``, ``memory://``). fsspec read ``file://localhost/d`` and ``file:/d`` as
    relative paths (a store made under the current folder: an outside re-check, 2026-12-03), and every
    local check (a folder of other files, one that cannot be written) must see the folder itself."""
    import urllib.parse

    if "://" not in text and not text.startswith(("file:", "local:")):
        return Path(text).expanduser().resolve()
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("file", "local"):
        return None
    if parts.netloc not in ("", "localhost"):
        raise InvalidInputError(f"store {text!r}: a file URL on host {parts.netloc!r} is not a local folder")
    return Path(urllib.parse.unquote(parts.path)).expanduser().resolve()


def open_store(
    url: str | os.PathLike[str], *, catalog: str | None = None, create: bool = True, use_reserve: bool = False
) -> Store:
    """Open (or create) a store.

    Parameters
    ----------
    url
        A local folder or an fsspec URL (``s3://bucket/prefix`` needs s3fs).
    catalog
        SQLAlchemy URL of the catalog; default ``sqlite:///STORE/catalog.sqlite`` for a local
        store. Required for a remote store (SQLite cannot live in an object store).
    create
        Create the folder and the catalog tables when missing.
    use_reserve
        Maintenance (``medcodec store ...``): on a full disk, give up the room a local store keeps
        beside its catalog (:mod:`.reserve`) to open the catalog, and to write a delete or a gc.

    Raises
    ------
    NotFoundError
        ``create=False`` and there is no store.
    InvalidInputError
        A remote store without ``catalog``; with ``create``, a local folder that holds other
        files and no catalog (it is not made into a store around them).
    StoreFullError
        No space to open the catalog (with ``use_reserve``: not even in the reserve).
    DeliveryError
        The filesystem or the catalog cannot be opened.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder, open_store(folder) as store:
    ...     store.find_studies({})
    []
    """
    text = os.fspath(url)
    local = local_store_path(text)
    if local is not None:  # every local spelling becomes one absolute folder, for fsspec and the checks
        text = str(local)
    if catalog is None and not create and local is not None and local.is_dir():
        _require_catalog(text, local)  # before Objects makes its tmp/ in a folder that is not a store
    if create and local is not None:
        check_store_folder(text, local)
    objects = Objects(text, create=create)
    if catalog is None:
        if not objects.local:
            raise InvalidInputError(
                f"store {text!r} is not a local folder: give the catalog's SQLAlchemy URL (--catalog), "
                "e.g. postgresql+psycopg://host/db or sqlite:////var/lib/medcodec/catalog.sqlite"
            )
        db = Path(objects.root, "catalog.sqlite")
        if not create:
            _require_catalog(text, Path(objects.root))
        if not os.access(objects.root, os.W_OK):  # a read-only mount (EROFS) or no permission
            raise OutputError(
                "the store folder cannot be written: every command writes there (SQLite's journal of "
                "the catalog; the server also the renditions it codes and what it receives); mount it "
                "read-write, or run as its owner",
                path=Path(objects.root),
            )
        catalog = f"sqlite:///{db}"
        reserve_root: Path | None = Path(objects.root)
    else:
        reserve_root = None
    made_here = reserve_root is not None and not (reserve_root / "catalog.sqlite").exists()
    try:
        opened = _open_catalog(catalog, create, use_reserve, reserve_root)
    except BaseException:
        if made_here and reserve_root is not None:  # an empty file left by a failed creation (a full
            _remove_empty_catalog(reserve_root)  # disk) made the folder "not a medcodec store" after
        raise
    if reserve_root is not None:
        keep_reserve(reserve_root)
    return Store(objects, opened, reserve_root=reserve_root, use_reserve=use_reserve)


def _open_catalog(catalog: str, create: bool, use_reserve: bool, reserve_root: Path | None) -> Catalog:
    """The catalog at ``catalog``; on a full disk, with ``use_reserve``, in the store's reserve."""
    for attempt in (1, 2):
        try:
            return Catalog(catalog, create=create)
        except StoreFullError:
            if attempt == 1 and use_reserve and reserve_root is not None and release_reserve(reserve_root):
                continue  # the maintenance commands open the catalog in the store's reserve
            if use_reserve:
                raise
            raise StoreFullError(
                errno.ENOSPC,
                "no space left for the store's catalog: free space on its disk; `medcodec store delete` and "
                "`medcodec store gc` can run on a full disk (they use the room the store keeps for them)",
            ) from None
        except DeliveryError:
            raise
        except Exception as exc:
            if is_full(exc):
                raise StoreFullError(errno.ENOSPC, f"no space left creating the catalog {catalog!r}") from exc
            raise DeliveryError(f"cannot open the catalog {catalog!r}: {type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable")  # (the second attempt returns or raises)


def _remove_empty_catalog(root: Path) -> None:
    """Remove ``catalog.sqlite`` and its side files from ``root`` when the catalog is empty (0 bytes)."""
    with contextlib.suppress(OSError):
        if (root / _CATALOG_FILES[0]).stat().st_size == 0:
            for name in _CATALOG_FILES:
                with contextlib.suppress(OSError):
                    (root / name).unlink()
