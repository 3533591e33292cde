"""Pre-computation: every instance of a study under each preset, then one ZIP per study and per series.

Flow (per call; studies x presets)::

    catalog ─ instances, series mappings (one SQL aggregate per series)
      └─ Dask tasks, one per (instance, preset) missing or stale ──▶ workers:
            read original ─ Preset.encode_instance (measure=True) ─ write rendition (atomic,
            content-addressed) ─ return the catalog row          (workers need only the storage)
      └─ client: rendition rows into the catalog (one writer), then per (study | series, preset):
            ZIP (headers deflated, pixels stored) + manifest.json ─ atomically, under its sha256 ─
            archive row, recorded only if the study did not change meanwhile

A rendition is stale when the series mapping it was coded with differs from the one the
catalog gives now (a later instance widened the series' range). A passthrough rendition
references the original object (no copy). An archive is removed from the catalog in the same
transaction that stores a new instance of its study (STOW, C-STORE, ingest): it is then
served live until the next pre-computation.

Dask: ``scheduler=None`` runs an in-process :class:`distributed.LocalCluster` (threads; the
codec's numba kernels release the GIL); ``"processes"`` a LocalCluster of worker processes;
``"tcp://host:8786"`` an existing cluster, whose workers must reach the same store URL (a
shared folder or ``s3://``). The catalog is only ever written by the calling process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from typing import Any

from ..errors import DeliveryError, InvalidInputError, StoreFullError
from ..registry import pixel_data_compressed
from .catalog import InstanceRecord, now
from .manifest import MANIFEST_NAME, ManifestEntry, build_manifest
from .presets import ALREADY_LOSSY, DEFAULT_PRESETS, PRESETS, SMALLER_STORED, is_colour_record, series_mapping
from .zipstream import ZipStream, dicom_header_length, pack

__all__ = ["precompute", "archive_entry_name", "rendition_path", "archive_path", "dask_client"]


def archive_entry_name(record: InstanceRecord) -> str:
    """Path of an instance inside an archive: ``<series UID>/<instance number:05d>_<SOP UID>.dcm``.

    The live archives use the same names (:func:`medcodec.delivery.live.archive_name`).
    UIDs are validated at ingest, so the name holds only digits, dots, ``_`` and ``/``.
    """
    number = record.instance_number if record.instance_number is not None and record.instance_number >= 0 else 0
    return f"{record.series_uid}/{number:05d}_{record.sop_uid}.dcm"


def rendition_path(preset: str, sha256: str) -> str:
    """Where a rendition with this content lives, relative to the store root."""
    return f"renditions/{preset}/sha256/{sha256[:2]}/{sha256}.dcm"


def archive_path(preset: str, study_uid: str, series_uid: str | None, sha256: str) -> str:
    """Where an archive with this content lives (content-addressed: never replaced under a reader)."""
    return f"archives/{preset}/{study_uid}/{series_uid or 'study'}-{sha256[:16]}.zip"


# --------------------------------------------------------------------------- worker side

_STORAGES: dict[str, Any] = {}
_STORAGES_LOCK = threading.Lock()


def _storage(url: str) -> Any:
    from .objects import Objects

    with _STORAGES_LOCK:
        if url not in _STORAGES:
            _STORAGES[url] = Objects(url, create=False)
        return _STORAGES[url]


def render_task(url: str, original_path: str, original_sha: str, preset_name: str, mapping: Any) -> dict[str, Any]:
    """One (instance, preset) on a Dask worker: encode, write the rendition, return its catalog row."""
    storage = _storage(url)
    data = storage.read(original_path)
    encoded = PRESETS[preset_name].encode_instance(data, mapping=mapping, measure=True)
    entry = encoded.entry
    if entry.passthrough and encoded.data == data:  # the stored file itself (not a preamble-less one)
        path, size, sha = original_path, len(data), original_sha
    else:
        path, size, sha = storage.put_stream(lambda h: rendition_path(preset_name, h), [encoded.data])
    return {
        "sop_uid": entry.sop_instance_uid,
        "preset": preset_name,
        "path": path,
        "sha256": sha,
        "size": size,
        "transfer_syntax_uid": entry.transfer_syntax_uid,
        "ratio": entry.ratio if entry.ratio is not None else 1.0,
        "psnr": _finite(entry.psnr),
        "max_error": entry.max_error,
        "max_error_hu": entry.max_error_hu,
        "passthrough": entry.passthrough,
        "new_sop_uid": entry.rendition_sop_instance_uid,
        "entry": entry.to_json(),
        "created_at": now(),
    }


def _finite(value: float | None) -> float | None:
    import math

    return None if value is None or not math.isfinite(value) else value


# --------------------------------------------------------------------------- Dask


@contextlib.contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[Any]:
    """A :class:`distributed.Client` (see the module docstring for ``scheduler``)."""
    from distributed import Client, LocalCluster

    if scheduler is None or scheduler in ("threads", "local"):
        cluster = LocalCluster(
            processes=False, n_workers=1, threads_per_worker=os.cpu_count() or 1, dashboard_address=":0"
        )
    elif scheduler == "processes":
        cluster = LocalCluster(
            processes=True, n_workers=os.cpu_count() or 1, threads_per_worker=1, dashboard_address=":0"
        )
    elif "://" in scheduler:
        cluster = None
    else:
        raise InvalidInputError(f"scheduler={scheduler!r}: expected tcp://host:port, 'threads' or 'processes'")
    try:
        client = Client(cluster if cluster is not None else scheduler, set_as_default=False)
    except Exception as exc:
        if cluster is not None:
            cluster.close()
        raise DeliveryError(f"cannot reach the Dask scheduler {scheduler!r}: {type(exc).__name__}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------- client side


def precompute(
    store: Any,
    study_uids: Iterable[str],
    *,
    presets: Iterable[str] | None = None,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    client: Any = None,
    executor: Executor | None = None,
) -> list[str]:
    """Pre-compute renditions and archives of ``study_uids`` under ``presets``.

    Parameters
    ----------
    store
        A :class:`~medcodec.delivery.Store`.
    study_uids
        Studies to process.
    presets
        Default :data:`~medcodec.delivery.presets.DEFAULT_PRESETS`.
    scheduler
        See the module docstring; ignored when ``client`` is given.
    progress
        ``progress("precompute", done, total)`` per (instance, preset), then
        ``progress("archive", done, total)`` per archive.
    client
        An existing :class:`distributed.Client` to use.
    executor
        A :class:`concurrent.futures.Executor` to run the (instance, preset) tasks on instead of
        Dask (the server's encoder processes, when it pre-computes what STOW-RS or C-STORE
        brought: :mod:`.refresher`); ``client`` and ``scheduler`` are then ignored.

    Returns
    -------
    list[str]
        ``"preset:study UID[:series UID]"`` of every archive written.

    Raises
    ------
    NotAcceptableError
        An unknown preset.
    StoreFullError
        No space left (what was written before stays valid).
    """
    from .presets import get_preset

    names = list(presets or DEFAULT_PRESETS)
    for name in names:
        get_preset(name)
    studies = list(dict.fromkeys(study_uids))
    jobs: list[tuple[InstanceRecord, str, Any]] = []
    per_study: dict[str, list[InstanceRecord]] = {}
    for study in studies:
        records = store.instances(study)
        per_study[study] = records
        lossy = {r.sop_uid for r in records if pixel_data_compressed(r.transfer_syntax_uid)}
        lossy &= store.catalog.lossy_instances(sorted(lossy)) if lossy else set()
        for name in names:
            if name == "original":
                continue
            mappings: dict[str, Any] = {}
            existing = store.catalog.renditions_of([r.sop_uid for r in records], name)
            for record in records:
                if record.series_uid not in mappings:
                    mappings[record.series_uid] = series_mapping(store, record.series_uid, name)
                mapping = mappings[record.series_uid] if record.compressible else None
                old = existing.get(record.sop_uid)
                fresh = old is not None and _fresh(old.entry, mapping, record, name, record.sop_uid in lossy)
                if fresh and store.objects.exists(old.path):
                    continue
                jobs.append((record, name, mapping))
    total = len(jobs)
    if total:
        args = [(store.url, r.path, r.sha256, name, mapping) for r, name, mapping in jobs]

        def record(rows: Iterator[dict[str, Any]]) -> None:  # the one catalog writer: this process
            # rows are committed RECORD_BATCH at a time (one sync to disk each): a crash loses at most
            # that many rows, whose files are then computed again; no row ever names a missing file
            batch: list[dict[str, Any]] = []
            try:
                for done, row in enumerate(rows, 1):
                    batch.append(row)
                    if len(batch) >= RECORD_BATCH:
                        store.catalog.put_renditions(batch)
                        batch.clear()
                    if progress is not None:
                        progress("precompute", done, total)
            except BaseException:
                with contextlib.suppress(Exception):  # what was computed before the error is kept;
                    store.catalog.put_renditions(batch)  # the error to report is the first one
                raise
            store.catalog.put_renditions(batch)

        if executor is not None:
            record(_bounded(executor, args))
        else:
            own = contextlib.nullcontext(client) if client is not None else dask_client(scheduler)
            with own as dask:
                from distributed import as_completed

                dask_futures = [
                    dask.submit(render_task, *a, pure=False, key=f"render-{a[3]}-{r.sop_uid}-{os.urandom(4).hex()}")
                    for a, (r, _, _) in zip(args, jobs)
                ]
                try:
                    record(f.result() for f in as_completed(dask_futures, loop=dask.loop))
                except BaseException:
                    for f in dask_futures:
                        f.cancel()
                    raise
    written: list[str] = []
    units = [
        (study, series, name)
        for study in studies
        for name in names
        for series in [None, *dict.fromkeys(r.series_uid for r in per_study[study])]
    ]
    for k, (study, series, name) in enumerate(units, 1):
        records = [r for r in per_study[study] if series is None or r.series_uid == series]
        if _build_archive(store, study, series, name, records):
            written.append(f"{name}:{study}" + (f":{series}" if series else ""))
        if progress is not None:
            progress("archive", k, len(units))
    return written


#: Renditions recorded in the catalog per transaction (:func:`precompute`).
RECORD_BATCH = 32

#: Tasks queued at once on a shared executor: the server's encoder processes also serve live
#: archives, which then wait behind at most this many pre-computation tasks, not a whole study's.
EXECUTOR_WINDOW = 4


def _bounded(executor: Executor, args: list[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    """``render_task(*a)`` for each of ``args`` on ``executor``, at most :data:`EXECUTOR_WINDOW` queued
    at a time; results as they complete. Closing the iterator (an error) cancels what is queued."""
    todo = iter(args)
    running: set[concurrent.futures.Future[dict[str, Any]]] = set()
    try:
        for a in itertools.islice(todo, EXECUTOR_WINDOW):
            running.add(executor.submit(render_task, *a))
        while running:
            done, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                nxt = next(todo, None)
                if nxt is not None:
                    running.add(executor.submit(render_task, *nxt))
                yield future.result()
    finally:
        for future in running:
            future.cancel()


def _fresh(
    entry_json: str, mapping: Any, record: InstanceRecord | None = None, preset: str = "", stored_lossy: bool = False
) -> bool:
    """Whether a stored rendition still is what ``preset`` makes of ``record``: a lossy one coded
    with the series' mapping as it is now; a passthrough, unless it is a colour image a lossy
    preset now codes (stores ingested before 2026-12-01 passed colour through: pre-computing
    again upgrades them; a colour image that stays passthrough, e.g. a 3x3 one, is tried again).
    ``stored_lossy``: the original is stored lossy-compressed, which ``lossless`` and
    ``diagnostic`` pass through since 2026-12-01 (a rendition that coded it is made again)."""
    try:
        entry = json.loads(entry_json)
    except ValueError:
        return False
    p = PRESETS.get(preset)
    if entry.get("passthrough"):
        if (
            record is not None
            and is_colour_record(record)
            and not str(entry.get("reason", "")).startswith((ALREADY_LOSSY, SMALLER_STORED))
        ):
            return not (p is not None and p.lossy)
        return True
    if stored_lossy and p is not None and p.diagnostic:
        return False  # coded again by a version before 2026-12-01: now passed through (presets, "Already lossy")
    if not entry.get("lossy"):
        return True
    return mapping is None or entry.get("mapping") == mapping.describe()


#: Time stamp of every entry of a pre-computed archive (local time, as ZIP keeps it): fixed, so an
#: archive rebuilt from the same files has the same bytes and ETag.
_ARCHIVE_TIME = time.mktime((2020, 1, 1, 0, 0, 0, 0, 1, -1))


def _build_archive(store: Any, study: str, series: str | None, name: str, records: list[InstanceRecord]) -> bool:
    """Write one archive and record it; False when the study changed meanwhile (nothing recorded)."""
    preset = PRESETS[name]
    sops = [r.sop_uid for r in records]
    rend = {} if name == "original" else store.catalog.renditions_of(sops, name)
    lossy = store.catalog.lossy_instances(sops) if name == "original" else set()
    entries: list[ManifestEntry] = []
    files: list[tuple[str, str]] = []  # (archive name, object path)
    for record in records:
        arcname = archive_entry_name(record)
        if name == "original":
            entry = ManifestEntry.original(record, name, lossy=record.sop_uid in lossy)
            files.append((arcname, record.path))
        else:
            r = rend.get(record.sop_uid)
            if r is None:
                return False  # an instance arrived after the renditions were made: stays live
            entry = ManifestEntry.from_json(r.entry)
            files.append((arcname, r.path))
        entries.append(entry.named(arcname))
    manifest = build_manifest(
        entries, preset=name, study_uid=study, series_uid=series, diagnostic=preset.diagnostic, label=preset.label
    )

    def chunks() -> Iterator[bytes]:
        # the live archive's writer: each DICOM header deflated, pixel data stored (zipstream.pack);
        # a fixed time stamp, so the same files give the same bytes (and ETag)
        z = ZipStream(mtime=_ARCHIVE_TIME)
        for arcname, path in files:
            with store.objects.open(path) as fh:
                data = fh.read()
            yield b"".join(z.add(arcname, pack(data, deflate=dicom_header_length(data))))
        yield b"".join(z.add(MANIFEST_NAME, pack(manifest, deflate=len(manifest))))
        yield from z.finish()

    try:
        path, size, sha = store.objects.put_stream(lambda h: archive_path(name, study, series, h), chunks())
    except StoreFullError:
        raise
    return bool(
        store.catalog.put_archive(
            {
                "study_uid": study,
                "series_uid": series or "",
                "preset": name,
                "path": path,
                "size": size,
                "etag": sha,
                "files": len(files),
                "created_at": now(),
            },
            expect_instances=len(records),
        )
    )
