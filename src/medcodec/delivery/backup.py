"""``medcodec store backup``: a consistent copy of a store, taken while it runs, that is itself a store.

What a backup does, in this order::

    1. the catalog, snapshotted by SQLite's online backup API in one read transaction: a state
       the store really was in, even while a server, an ingest or a pre-computation writes
       -> DEST/tmp/<random>.catalog (nothing named catalog.sqlite yet)
    2. every object that snapshot references (originals; renditions and archives unless
       ``originals_only``): read, checked against the catalog's size and sha256 as it is read,
       written atomically (tmp/ + fsync + rename, as the store writes its own); one already in
       DEST with the catalog's size is skipped: objects are content-addressed and never change,
       so a second backup to the same place copies only what is new
    3. last, the snapshot becomes DEST/catalog.sqlite (an atomic rename): a destination holding a
       catalog holds every object that catalog references, whatever stopped the backup midway

A source object the snapshot references may be gone by the time it is read: a rebuilt study
archive (a study receiving instances rebuilds its archives and removes the old ones), a
``store delete``. A missing rendition or archive is dropped from the snapshot (derived data: the
restored server serves that study live, ``medcodec ingest --refresh`` pre-computes it again); a
missing original means its instance was deleted meanwhile, and the backup takes a new snapshot
and goes on (objects copied already are skipped), at most :data:`SNAPSHOTS` times; an original
still missing then is the store's own damage. Such an original, or a referenced object whose
bytes are not the catalog's (a damaged disk), is not copied: it is named in the report, its row
stays in the snapshot, and ``store check`` on the destination names it too; everything else is
backed up.

Restoring: the destination is a store. ``medcodec serve --store DEST`` serves it as it is,
``medcodec store check --store DEST`` checks it, and copying the folder back is a restore.
Objects the source deleted after an earlier backup stay in DEST until ``medcodec store gc
--store DEST`` (a backup that mirrored deletions would not guard against a mistaken delete).

The catalog must be SQLite (the store's own ``catalog.sqlite``, or ``--catalog sqlite:///...``):
a PostgreSQL catalog is backed up by ``pg_dump`` together with the objects (the module docstring
of :mod:`.store` gives the order that keeps them consistent: catalog first, then objects).
The destination is a local folder or any fsspec URL (``s3://bucket/backup``); it must be empty,
absent, or an earlier backup of the same store (its ``medcodec-backup.json``, written first, says
which: a backup stopped before its catalog was in place is run again into the same folder); never
the store, inside it, or the folder of its catalog, by path or by identity (a bind mount).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..errors import DeliveryError, InvalidInputError, NotFoundError, OutputExistsError
from .objects import Objects

if TYPE_CHECKING:
    from .catalog import Catalog

__all__ = ["backup", "BackupReport", "SNAPSHOTS", "CATALOG_NAME"]

#: Snapshots a backup takes at most when originals vanish under it (deleted meanwhile).
SNAPSHOTS = 3
#: The catalog's name in a store (and so in a backup).
CATALOG_NAME = "catalog.sqlite"
#: What a backup writes first into its destination: which store it is a backup of.
MARKER_NAME = "medcodec-backup.json"
#: Bytes read and written at a time.
_CHUNK = 1 << 20
#: Tables whose rows reference objects: (table, path column, sha256 column).
_REFERENCING = (("instances", "path", "sha256"), ("renditions", "path", "sha256"), ("archives", "path", "etag"))


@dataclass
class BackupReport:
    """What :func:`backup` did.

    ``copied`` / ``copied_bytes``: objects written to the destination; ``present``: referenced
    objects the destination had already (an earlier backup); ``dropped``: renditions and archives
    left out of the snapshot (gone from the source while the backup ran, or ``originals_only``);
    ``corrupt``: referenced objects whose bytes in the source are not the catalog's (not copied);
    ``missing``: originals the catalog still referenced, under its last snapshot, that the store
    does not have (a damaged store: ``store check`` names them too);
    ``instances``: instances in the snapshot; ``snapshots``: snapshots taken.
    """

    destination: str
    instances: int = 0
    copied: int = 0
    copied_bytes: int = 0
    present: int = 0
    dropped: int = 0
    corrupt: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    snapshots: int = 0
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Every object the destination's catalog references is there, with its bytes."""
        return not self.corrupt and not self.missing


def backup(
    objects: Objects,
    catalog: Catalog,
    destination: str | os.PathLike[str],
    *,
    originals_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BackupReport:
    """Copy ``store`` to ``destination`` consistently while it may be in use (see the module docstring).

    Parameters
    ----------
    objects, catalog
        The store to back up (:class:`.store.Store`'s ``objects`` and ``catalog``; SQLite only).
    destination
        A local folder or an fsspec URL: absent, empty, or a store an earlier backup made there.
    originals_only
        Copy the originals and the catalog only; renditions and pre-computed archives are left
        out (a third to a half of a store's bytes; ``medcodec ingest --refresh`` on the restored
        store makes them again, and it serves every study live meanwhile).
    progress
        ``(bytes done, bytes to do)`` as objects are copied.

    Raises
    ------
    InvalidInputError
        The catalog is not SQLite, or the destination is the store itself or inside it.
    OutputExistsError
        The destination holds something that is not a store.
    StoreFullError
        The destination filled up: its catalog is the previous backup's (or none), consistent.
    """
    t0 = time.perf_counter()
    source_db = _sqlite_file(catalog)
    dest_text = os.fspath(destination)
    if dest_text.startswith("file://"):  # a local folder by URL: the same checks (they were skipped)
        dest_text = dest_text[len("file://") :]
    source = str(objects.url)
    if "://" not in dest_text:
        dest_text = str(Path(dest_text).expanduser().resolve())
        _refuse_inside(objects, source_db, Path(dest_text))
        folder = Path(dest_text)
        if folder.is_dir():  # before Objects makes its tmp/ in a folder that is not ours
            marker = folder / MARKER_NAME
            _refuse_foreign(dest_text, folder.iterdir(), marker.read_text() if marker.is_file() else None, source)
    dest = Objects(dest_text, create=True)
    if not dest.local:
        marker_text = dest.read(MARKER_NAME).decode() if dest.exists(MARKER_NAME) else None
        _refuse_foreign(dest_text, dest.walk(""), marker_text, source)
    # said first, so that a backup stopped before its catalog is in place can be run again into it
    dest.put(MARKER_NAME, json.dumps({"backup_of": source, "made_by": "medcodec store backup"}).encode())
    report = BackupReport(destination=dest_text)
    snapshot_rel = f"tmp/{uuid.uuid4().hex}.catalog"
    with _local_snapshot_file(dest, snapshot_rel) as snapshot:
        for _ in range(SNAPSHOTS):
            report.snapshots += 1
            copied_before = report.copied
            _snapshot(source_db, snapshot)
            report.dropped = _drop_derived(snapshot) if originals_only else 0
            vanished, present = _copy_objects(objects, dest, snapshot, report, progress)
            report.present = present - copied_before  # what an earlier backup had copied
            derived = [rel for rel in vanished if not rel.startswith("objects/")]
            if derived:
                report.dropped += _drop_rows(snapshot, derived)
            report.missing = [rel for rel in vanished if rel.startswith("objects/")]
            if not report.missing:
                break
        report.instances = _count(snapshot, "instances")
        _put_catalog(dest, snapshot)
    report.seconds = time.perf_counter() - t0
    return report


def _sqlite_file(catalog: Catalog) -> Path:
    engine_url = catalog.engine.url
    if engine_url.get_backend_name() != "sqlite" or not engine_url.database:
        raise InvalidInputError(
            f"the catalog {catalog.url!r} is not a SQLite file: back up a PostgreSQL catalog with "
            "pg_dump, then copy the store's objects (objects/, renditions/, archives/)"
        )
    return Path(engine_url.database)


def _refuse_inside(objects: Objects, source_db: Path, dest: Path) -> None:
    """Not the store, not inside it, not the folder of its catalog (``--catalog`` elsewhere), by path
    or by identity (a bind mount or a symlink of the same folder: an outside audit, 2026-12-03)."""
    checks = [(Path(source_db).parent, [dest], "the folder of its catalog")]
    if objects.local:
        checks.append((Path(objects.root), [dest, *dest.parents], "the store"))
    for place, candidates, what in checks:
        for candidate in candidates:
            same = candidate == place.resolve()
            with contextlib.suppress(OSError):
                same = same or (candidate.exists() and os.path.samefile(candidate, place))
            if same:
                raise InvalidInputError(f"the backup {str(dest)!r} would be (inside) {what} it copies ({str(place)!r})")


def _refuse_foreign(where: str, entries: Iterable[object], marker: str | None, source: str) -> None:
    """An empty destination, or a backup of this very store (its marker says so, complete or
    stopped midway); anything else is refused: a store of its own would lose its catalog (an
    outside audit, 2026-12-03), a backup of another store would be overwritten."""
    if marker is not None:
        try:
            of = json.loads(marker).get("backup_of")
        except (ValueError, AttributeError):
            of = None
        if of == source:
            return
        raise OutputExistsError(
            f"{where!r} is a backup of {of!r}, not of {source!r}: back this store up into another folder"
        )
    names = [str(e) for e in entries]
    foreign = [n for n in names if Path(n).name != "tmp" and not Path(n).as_posix().startswith("tmp/")]
    if any(Path(n).name == CATALOG_NAME for n in foreign):
        raise OutputExistsError(
            f"{where!r} is a store that no backup of this one made: backing up into it would replace its catalog"
        )
    if foreign:
        raise OutputExistsError(
            f"{where!r} holds files (e.g. {Path(foreign[0]).name!r}): back up into an empty folder or into an "
            "earlier backup of this store"
        )


@contextlib.contextmanager
def _local_snapshot_file(dest: Objects, rel: str) -> Iterator[Path]:
    """A local file for the snapshot: in DEST/tmp/ for a local destination (renamed into place at
    the end), in a temporary folder for a remote one (uploaded at the end); removed on failure."""
    if dest.local:
        path = dest.local_path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            yield path
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}{suffix}")
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="medcodec-backup-") as tmp:
        yield Path(tmp, "catalog.sqlite")


def _snapshot(source: Path, target: Path) -> None:
    """SQLite's online backup of ``source`` into ``target`` (replaced), in one step: one read
    transaction, so writers in other connections or processes cannot make it inconsistent."""
    if not source.exists():
        raise NotFoundError(f"the catalog {str(source)!r} does not exist")
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60)
    dst = sqlite3.connect(target)
    try:
        src.execute("PRAGMA busy_timeout=60000")
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, whatever the source's mode
        dst.commit()
    except sqlite3.Error as exc:
        raise DeliveryError(f"cannot snapshot the catalog {str(source)!r}: {exc}") from exc
    finally:
        dst.close()
        src.close()


def _rows(snapshot: Path) -> list[tuple[str, str, int]]:
    con = sqlite3.connect(snapshot)
    try:
        return [
            (str(path), str(sha), int(size))
            for table, path_col, sha_col in _REFERENCING
            for path, sha, size in con.execute(f"SELECT {path_col}, {sha_col}, size FROM {table}")
        ]
    finally:
        con.close()


def _count(snapshot: Path, table: str) -> int:
    con = sqlite3.connect(snapshot)
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        con.close()


def _drop_rows(snapshot: Path, paths: list[str]) -> int:
    """Remove the rendition and archive rows of ``paths`` from the snapshot; returns how many."""
    con = sqlite3.connect(snapshot)
    try:
        dropped = 0
        for table in ("renditions", "archives"):
            for rel in paths:
                dropped += con.execute(f"DELETE FROM {table} WHERE path = ?", (rel,)).rowcount
        con.commit()
        return dropped
    finally:
        con.close()


def _drop_derived(snapshot: Path) -> int:
    """``originals_only``: every rendition and archive row goes (``archive_builds`` stays, so
    ``ingest --refresh`` on the restored store makes every preset each study had)."""
    con = sqlite3.connect(snapshot)
    try:
        dropped = sum(con.execute(f"DELETE FROM {table}").rowcount for table in ("renditions", "archives"))
        con.commit()
        return dropped
    finally:
        con.close()


def _copy_objects(
    source: Objects,
    dest: Objects,
    snapshot: Path,
    report: BackupReport,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[str], int]:
    """Copy what the snapshot references and DEST lacks; returns the paths gone from the source and
    how many DEST had already."""
    rows = _rows(snapshot)
    todo = [(rel, sha, size) for rel, sha, size in rows if not (dest.exists(rel) and dest.size(rel) == size)]
    total = sum(size for _, _, size in todo)
    done = 0
    vanished = []
    for rel, sha, size in todo:
        try:
            fh = source.open(rel)
        except NotFoundError:
            vanished.append(rel)
            continue
        rejected = f"tmp/{uuid.uuid4().hex}.corrupt"  # bytes that are not the catalog's never reach ``rel``
        with fh:
            final, written, _ = dest.put_stream(partial(_name_if, sha, rel, rejected), _chunks(fh))
        if final == rejected:
            dest.remove(rejected)
            if rel not in report.corrupt:
                report.corrupt.append(rel)
        else:
            report.copied += 1
            report.copied_bytes += written
        done += size
        if progress is not None:
            progress(done, total)
    return vanished, len(rows) - len(todo)


def _name_if(sha: str, rel: str, otherwise: str, digest: str) -> str:
    return rel if digest == sha else otherwise


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    while chunk := fh.read(_CHUNK):
        yield chunk


def _put_catalog(dest: Objects, snapshot: Path) -> None:
    """The snapshot becomes DEST/catalog.sqlite, atomically (a rename on a local destination)."""
    if not dest.local:
        with open(snapshot, "rb") as fh:
            dest.put_stream(CATALOG_NAME, _chunks(fh))
        return
    target = dest.local_path(CATALOG_NAME)
    with open(snapshot, "rb+") as fh:
        os.fsync(fh.fileno())
    # a destination served once has the -wal / -shm of its earlier catalog: SQLite would read the
    # new file through them (serving a backup while it is written is not supported: docs/delivery.md)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{target}{suffix}")
    os.replace(snapshot, target)
    with contextlib.suppress(OSError):
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
