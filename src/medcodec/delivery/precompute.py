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
``"host:port"`` is ``"tcp://host:port"`` (Dask's default protocol). A remote scheduler is checked
and connected to within :data:`SCHEDULER_CONNECT_TIMEOUT` seconds (:func:`connect_scheduler`; a
client that failed to connect is closed at once, so nothing hangs at exit).

Failures are said in one line, as a :class:`~medcodec.errors.DeliveryError` naming what failed
and where: the scheduler lost (its address), a task failed on a Dask worker, the store's backend
unreachable (its URL, bucket and endpoint: :mod:`.objects`). Dask's own logging is quieted
while it runs for us (``MEDCODEC_DEBUG=1`` keeps it). With no worker connected to the scheduler
for :data:`NO_WORKERS_WARNING_AFTER` seconds, a warning is logged once (``log``): the tasks wait.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from typing import Any

from ..errors import CodecError, DeliveryError, InvalidInputError, NotFoundError, StoreFullError
from ..registry import pixel_data_compressed
from .catalog import InstanceRecord, instances_fingerprint, now
from .manifest import CODING_REVISION, MANIFEST_NAME, ManifestEntry, build_manifest, current_rules
from .presets import (
    ALREADY_LOSSY,
    DEFAULT_PRESETS,
    PRESETS,
    SMALLER_STORED,
    YCBCR_KEPT,
    is_colour_record,
    series_mapping,
)
from .zipstream import ZipStream, dicom_header_length, pack

__all__ = [
    "precompute",
    "ARCHIVE_TIME",
    "archive_entry_name",
    "rendition_path",
    "archive_path",
    "dask_client",
    "check_scheduler",
    "connect_scheduler",
]

log = logging.getLogger(__name__)

#: Seconds to reach a remote Dask scheduler (:func:`connect_scheduler`) before giving up.
SCHEDULER_CONNECT_TIMEOUT = 10.0

#: Seconds with no Dask worker connected before :func:`precompute` warns (once) that it waits.
NO_WORKERS_WARNING_AFTER = 5.0

#: ``scheduler`` values that start an in-process :class:`distributed.LocalCluster`.
LOCAL_SCHEDULERS = ("threads", "local", "processes")


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


def render_task(
    url: str, original_path: str, original_sha: str, preset_name: str, mapping: Any
) -> dict[str, Any] | None:
    """One (instance, preset) on a Dask worker: encode, write the rendition, return its catalog row;
    ``None`` when the original is gone (its instance deleted, or replaced by a corrected file,
    since the task was planned: nothing to record; until 2026-12-02 the whole pre-computation
    stopped, saying "run again", which would have stored the deleted study again)."""
    storage = _storage(url)
    try:
        data = storage.read(original_path)
    except NotFoundError:
        return None
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
        "source_sha256": original_sha,  # recorded only while the instance is still this original
    }


def _finite(value: float | None) -> float | None:
    import math

    return None if value is None or not math.isfinite(value) else value


# --------------------------------------------------------------------------- Dask


def check_scheduler(scheduler: str | None) -> str | None:
    """The address of the remote Dask scheduler ``scheduler`` names, ``"tcp://host:port"``; ``None``
    for an in-process cluster (``None``, ``"threads"``, ``"local"``, ``"processes"``).

    ``"host:port"`` is taken as ``"tcp://host:port"``, as Dask does. Nothing is connected to.

    Raises
    ------
    InvalidInputError
        Not an address Dask can connect to (unknown scheme, no host, no port).
    """
    if scheduler is None or scheduler in LOCAL_SCHEDULERS:
        return None
    expected = "expected tcp://host:port (or host:port), 'threads' or 'processes'"
    text = scheduler.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    scheme = scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidInputError(f"scheduler={scheduler!r}: unknown scheme {scheme!r} ({expected})")
    host, port = _host_port(rest)
    if not host or port is None:
        tail = rest.rpartition(":")[2] if ":" in rest.rpartition("]")[2] else ""
        problem = (
            f"port {tail!r} is not a number" if tail and not tail.isdigit() else f"no {'port' if host else 'host'}"
        )
        raise InvalidInputError(f"scheduler={scheduler!r}: {problem} ({expected})")
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


#: Protocols a Dask client connects with (``inproc`` is only within one process).
_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")


def _host_port(text: str) -> tuple[str, int | None]:
    from urllib.parse import urlsplit

    if not text or any(c in text for c in "/?#@ "):
        return "", None
    try:
        parts = urlsplit(f"//{text}")
        return parts.hostname or "", parts.port
    except ValueError:  # a port that is not a number, an unbalanced [
        return "", None


@contextlib.contextmanager
def connect_scheduler(scheduler: str, *, timeout: float = SCHEDULER_CONNECT_TIMEOUT) -> Iterator[Any]:
    """A :class:`distributed.Client` of the remote Dask scheduler ``scheduler``, connected within
    ``timeout`` seconds, closed afterwards. A scheduler that is not listening (connection refused)
    fails at once, without Dask's retries; a client that failed to connect is closed before the
    error is raised (Dask would otherwise wait 60 s in its ``__del__`` at exit).

    Raises
    ------
    InvalidInputError
        ``scheduler`` is no remote scheduler address (:func:`check_scheduler`).
    DeliveryError
        The scheduler cannot be reached within ``timeout`` seconds (the message says why).
    """
    address = check_scheduler(scheduler)
    if address is None:
        raise InvalidInputError(f"scheduler={scheduler!r}: not the address of a Dask scheduler (tcp://host:port)")
    with _quiet_dask():
        if address.startswith(("tcp://", "tls://")):
            host, port = _host_port(address.split("://", 1)[1])
            try:  # Dask retries a refused connection until its timeout: said at once here
                socket.create_connection((host, port or 0), timeout=timeout).close()
            except OSError as exc:
                why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
                raise DeliveryError(
                    f"cannot reach the Dask scheduler {address}: {why}"
                    + (f" within {timeout:g} s" if isinstance(exc, TimeoutError) else "")
                    + " (is `dask scheduler` running there?)"
                ) from exc
        try:
            client = _closing_client()(address, timeout=timeout, set_as_default=False)
        except Exception as exc:
            raise DeliveryError(
                f"cannot reach the Dask scheduler {address} within {timeout:g} s: {_one_line(exc)}"
            ) from exc
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):  # (a scheduler lost meanwhile: nothing left to close)
                client.close(timeout=timeout)


@functools.cache
def _closing_client() -> type:
    """:class:`distributed.Client`, closed at once when its constructor fails."""
    from distributed import Client

    class ClosingClient(Client):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            try:
                super().__init__(*args, **kwargs)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.close(timeout=2)
                raise

    return ClosingClient


#: Dask configuration of the clusters medcodec starts: no statistical profiler in the workers.
#: It samples every thread's frame (``sys._current_frames``) every 10 ms, which nobody here reads,
#: and with distributed's GC callback it deadlocked CPython 3.11 (a full test run hung on
#: 2026-12-06: the IO loop held the runtime's thread list inside ``_current_frames`` while a
#: collection ran the callback and waited for the GIL; a thread being started held the GIL and
#: waited for the thread list).
NO_PROFILER = {"distributed.worker.profile.enabled": False}


@contextlib.contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[Any]:
    """A :class:`distributed.Client` (see the module docstring for ``scheduler``)."""
    address = check_scheduler(scheduler)
    if address is not None:
        with connect_scheduler(address) as client:
            yield client
        return
    import dask
    from distributed import Client, LocalCluster

    processes = scheduler == "processes"
    with _quiet_dask(), dask.config.set(NO_PROFILER):
        cluster = LocalCluster(
            processes=processes,
            n_workers=(os.cpu_count() or 1) if processes else 1,
            threads_per_worker=1 if processes else os.cpu_count() or 1,
            dashboard_address=":0",
            silence_logs=logging.WARNING if os.environ.get("MEDCODEC_DEBUG") else logging.CRITICAL,
        )
        try:
            client = Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()
            cluster.close()


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's loggers (``distributed.*``, ``tornado``) silenced while it runs for us, restored afterwards:
    every failure is said once, by our error; ``MEDCODEC_DEBUG=1`` keeps them."""
    if os.environ.get("MEDCODEC_DEBUG"):
        yield
        return
    import distributed  # noqa: F401  (its loggers exist, with the levels its configuration gives them)

    names = ["distributed", "tornado"] + [
        name for name in list(logging.root.manager.loggerDict) if name.startswith(("distributed.", "tornado."))
    ]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _where(client: Any) -> str:
    address = getattr(getattr(client, "scheduler", None), "address", None) or "?"
    return f"the local Dask cluster ({address})" if getattr(client, "cluster", None) is not None else address


def _dask_results(client: Any, futures: list[Any], what: dict[str, str]) -> Iterator[dict[str, Any] | None]:
    """The results of ``futures`` as they complete; what fails, as one :class:`DeliveryError` naming it
    (``what``: future key -> the instance and preset) and where (the scheduler's address)."""
    from distributed import as_completed

    where = _where(client)
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch_workers, args=(client, where, stop), name="medcodec-dask-workers", daemon=True
    )
    watcher.start()
    try:
        try:
            completed = as_completed(futures, loop=client.loop)
        except Exception as exc:
            raise DeliveryError(f"the Dask scheduler {where} failed: {_one_line(exc)}") from exc
        for future in completed:
            try:
                yield future.result()
            except StoreFullError:
                raise  # (says the store and what was written)
            except CodecError as exc:
                if type(exc) is DeliveryError:  # the store's backend, as a worker met it (objects.py)
                    raise DeliveryError(f"on a Dask worker of {where}: {exc}") from exc
                raise
            except concurrent.futures.CancelledError as exc:
                reason = str(getattr(exc, "reason", "") or exc)
                if "scheduler" in reason or client.status not in ("running", "connecting"):
                    raise DeliveryError(f"lost the Dask scheduler {where} ({reason})") from exc
                raise DeliveryError(f"{what.get(future.key, 'a task')} was cancelled by {where} ({reason})") from exc
            except Exception as exc:
                if future.status == "error":  # raised by render_task, on a worker
                    raise DeliveryError(
                        f"{what.get(future.key, 'a task')} failed on a Dask worker of {where}: {_one_line(exc)}"
                    ) from exc
                raise DeliveryError(f"lost the Dask scheduler {where} ({_one_line(exc)})") from exc
    finally:
        stop.set()


def _watch_workers(client: Any, where: str, stop: threading.Event) -> None:
    """Log once when no worker has been connected for :data:`NO_WORKERS_WARNING_AFTER` seconds."""
    since = time.monotonic()
    while not stop.wait(min(1.0, NO_WORKERS_WARNING_AFTER / 4)):
        try:
            workers = len(client.nthreads())
        except Exception:  # (the scheduler lost: said by the results)
            return
        if workers:
            since = time.monotonic()
        elif time.monotonic() - since >= NO_WORKERS_WARNING_AFTER:
            log.warning("no Dask workers connected to %s: waiting (Ctrl-C to stop; the originals are stored)", where)
            return


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
    DeliveryError
        The Dask scheduler lost or unreachable, a task failed on a worker, the store's backend
        unreachable: one line naming what failed and where (what was written before stays valid).
    """
    from .presets import get_preset

    names = list(presets or DEFAULT_PRESETS)
    for name in names:
        get_preset(name)
    studies = list(dict.fromkeys(study_uids))
    jobs_of: dict[str, list[tuple[InstanceRecord, str, Any]]] = {}
    per_study: dict[str, list[InstanceRecord]] = {}
    for study in studies:
        records = store.instances(study)
        per_study[study] = records
        jobs_of[study] = _plan(store, records, names)
    total = sum(len(jobs) for jobs in jobs_of.values())
    units_of = {  # the archives of each study: the whole study and each series, per preset
        study: [(series, name) for name in names for series in [None, *dict.fromkeys(r.series_uid for r in records)]]
        for study, records in per_study.items()
    }
    n_units = sum(len(u) for u in units_of.values())
    written: list[str] = []
    counts = {"precompute": 0, "archive": 0}
    with contextlib.ExitStack() as stack:
        dask = None
        if total and executor is None:
            own = contextlib.nullcontext(client) if client is not None else dask_client(scheduler)
            dask = stack.enter_context(own)
            stack.enter_context(_quiet_dask())
        # studies in groups of about GROUP_TASKS tasks: each group's archives are written when its
        # renditions are, so archives appear as the work goes, an interrupted run keeps them, and
        # the tasks in flight stay bounded (an outside scale audit, 2026-12-02: a refresh of 2,070
        # studies queued 47,000 Dask tasks, reached 1 GB and wrote its first archive after all of them)
        for group in _groups(studies, jobs_of, GROUP_TASKS):
            jobs = [job for study in group for job in jobs_of[study]]
            if jobs:
                _render(store, jobs, dask, executor, counts, total, progress)
            for study in group:
                refused = 0
                for series, name in units_of[study]:
                    records = [r for r in per_study[study] if series is None or r.series_uid == series]
                    if _build_archive(store, study, series, name, records):
                        written.append(f"{name}:{study}" + (f":{series}" if series else ""))
                    else:
                        refused += 1
                    counts["archive"] += 1
                    if progress is not None:
                        progress("archive", counts["archive"], n_units)
                if refused:  # said (until 2026-12-02 an ingest that lost this race exited 0 in silence)
                    log.warning(
                        "study %s changed while its archives were built (another writer added, replaced or "
                        "deleted instances): %d archive(s) not recorded; it is served live until "
                        "`medcodec ingest --refresh` (or the server's refresher) makes them",
                        study, refused,
                    )  # fmt: skip
    return written


def _plan(store: Any, records: list[InstanceRecord], names: list[str]) -> list[tuple[InstanceRecord, str, Any]]:
    """The (instance, preset, series mapping) tasks of one study whose rendition is missing or stale."""
    jobs: list[tuple[InstanceRecord, str, Any]] = []
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
            fresh = old is not None and rendition_fresh(old.entry, mapping, record, name, record.sop_uid in lossy)
            if fresh and store.objects.exists(old.path):
                continue
            jobs.append((record, name, mapping))
    return jobs


def _groups(studies: list[str], jobs_of: Mapping[str, list[Any]], budget: int) -> Iterator[list[str]]:
    """``studies`` in order, cut into groups of about ``budget`` tasks (a study is never split)."""
    group: list[str] = []
    size = 0
    for study in studies:
        if group and size + len(jobs_of[study]) > budget:
            yield group
            group, size = [], 0
        group.append(study)
        size += len(jobs_of[study])
    if group:
        yield group


def _render(store: Any, jobs: list[tuple[InstanceRecord, str, Any]], dask: Any, executor: Executor | None,
            counts: dict[str, int], total: int, progress: Callable[[str, int, int], None] | None) -> None:  # fmt: skip
    """Run ``jobs`` (on ``executor``, else on the Dask client ``dask``) and record their renditions."""
    args = [(store.url, r.path, r.sha256, name, mapping) for r, name, mapping in jobs]

    def put(batch: list[dict[str, Any]]) -> None:
        # the renditions these replace (a series coded again under a new mapping: every slice) go once
        # committed; until 2026-12-05 they stayed until `store gc` (an outside audit: 100 orphans
        # from one 100-slice MR received in four batches)
        replaced: list[str] = []
        store.catalog.put_renditions(batch, replaced)
        if replaced:
            store.remove_unreferenced(replaced)

    unrecorded: list[str] = []  # renditions written whose rows could not be committed (the error)

    def record(rows: Iterator[dict[str, Any] | None]) -> None:  # the one catalog writer: this process
        # rows are committed RECORD_BATCH at a time (one sync to disk each): a crash loses at most
        # that many rows, whose files are then computed again; no row ever names a missing file
        batch: list[dict[str, Any]] = []
        try:
            for row in rows:
                if row is not None:  # (None: the instance went meanwhile)
                    batch.append(row)
                if len(batch) >= RECORD_BATCH:
                    put(batch)
                    batch.clear()
                counts["precompute"] += 1
                if progress is not None:
                    progress("precompute", counts["precompute"], total)
        except BaseException:
            try:  # what was computed before the error is kept; the error to report is the first one
                put(batch)
            except Exception:
                unrecorded.extend(row["path"] for row in batch)
            raise
        put(batch)

    def drop_unrecorded(late: list[concurrent.futures.Future[dict[str, Any] | None]]) -> None:
        # after an error: the files no row names (a full disk refused the rows; tasks that were
        # running finish writing theirs) are removed now, not left to `store gc` an hour later
        # holding the last free space (an outside audit, 2026-12-05: 26 renditions, 1.8 MB)
        done, _ = concurrent.futures.wait(late, timeout=LATE_TASKS_WAIT)
        for future in done:
            with contextlib.suppress(Exception):
                row = future.result()
                if row is not None:
                    unrecorded.append(row["path"])
        if unrecorded:
            with contextlib.suppress(Exception):  # (the catalog may be gone too: gc finds them)
                store.remove_unreferenced(sorted(set(unrecorded)))

    if executor is not None:
        late: list[concurrent.futures.Future[dict[str, Any] | None]] = []
        rows = _bounded(executor, args, late)
        try:
            record(rows)
        except BaseException:
            rows.close()  # (the traceback holds it open) cancels what is queued, lists what runs
            drop_unrecorded(late)
            raise
        return
    keys = [f"render-{a[3]}-{r.sop_uid}-{os.urandom(4).hex()}" for a, (r, _, _) in zip(args, jobs)]
    what = {key: f"the {a[3]} rendition of instance {r.sop_uid}" for key, a, (r, _, _) in zip(keys, args, jobs)}
    futures = [dask.submit(render_task, *a, pure=False, key=key) for a, key in zip(args, keys)]
    try:
        record(_dask_results(dask, futures, what))
    except BaseException:
        with contextlib.suppress(Exception):  # (a scheduler lost: nothing to cancel)
            dask.cancel(futures)
        drop_unrecorded([])
        raise


#: Tasks (instance, preset) of the studies pre-computed together before their archives are
#: written (:func:`precompute`; a larger study is one group of its own).
GROUP_TASKS = 512

#: Renditions recorded in the catalog per transaction (:func:`precompute`).
RECORD_BATCH = 32

#: Seconds a failed pre-computation waits for its running tasks, to remove what they wrote.
LATE_TASKS_WAIT = 60.0

#: Tasks queued at once on a shared executor: the server's encoder processes also serve live
#: archives, which then wait behind at most this many pre-computation tasks, not a whole study's.
EXECUTOR_WINDOW = 4


def _bounded(
    executor: Executor,
    args: list[tuple[Any, ...]],
    late: list[concurrent.futures.Future[dict[str, Any] | None]] | None = None,
) -> Generator[dict[str, Any] | None, None, None]:
    """``render_task(*a)`` for each of ``args`` on ``executor``, at most :data:`EXECUTOR_WINDOW` queued
    at a time; results as they complete. Closing the iterator (an error) cancels what is queued;
    what runs already and cannot be cancelled is put in ``late``, and so is what had finished but
    was not handed over yet (until 2026-12-06 those were forgotten: when one wait returned several
    finished tasks, as it does on a loaded machine, their renditions stayed as orphans after a
    catalog error; a flaky test)."""
    todo = iter(args)
    running: set[concurrent.futures.Future[dict[str, Any] | None]] = set()
    ready: list[concurrent.futures.Future[dict[str, Any] | None]] = []
    try:
        for a in itertools.islice(todo, EXECUTOR_WINDOW):
            running.add(executor.submit(render_task, *a))
        while running:
            done, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            ready = list(done)
            while ready:
                future = ready.pop(0)
                nxt = next(todo, None)
                if nxt is not None:
                    running.add(executor.submit(render_task, *nxt))
                yield future.result()
    finally:
        if late is not None:
            late.extend(ready)
        for future in running:
            if not future.cancel() and late is not None:
                late.append(future)


def rendition_fresh(
    entry_json: str, mapping: Any, record: InstanceRecord | None = None, preset: str = "", stored_lossy: bool = False
) -> bool:
    """Whether a stored rendition still is what ``preset`` makes of ``record``: a lossy one coded
    with the series' mapping as it is now; a passthrough, unless it is a colour image the preset
    now codes (:attr:`.Preset.codes_colour`: stores ingested before 2026-12-01 passed colour through
    every preset, before 2026-12-02 through ``lossless``: pre-computing again upgrades them; a
    colour image that stays passthrough, e.g. a 3x3 one, is tried again).
    ``stored_lossy``: the original is stored lossy-compressed, which ``lossless`` and
    ``diagnostic`` pass through since 2026-12-01 (a rendition that coded it is made again).
    A rendition whose entry carries another :data:`.manifest.CODING_REVISION` is stale too."""
    try:
        entry = json.loads(entry_json)
    except ValueError:
        return False
    if not current_rules(entry):
        return False  # made by other coding rules (an older medcodec): made again
    p = PRESETS.get(preset)
    if entry.get("passthrough"):
        if (
            record is not None
            and is_colour_record(record)
            and not str(entry.get("reason", "")).startswith((ALREADY_LOSSY, SMALLER_STORED))
            and YCBCR_KEPT not in str(entry.get("reason", ""))
        ):
            return not (p is not None and p.codes_colour)
        return True
    if stored_lossy and p is not None and p.diagnostic:
        return False  # coded again by a version before 2026-12-01: now passed through (presets, "Already lossy")
    if not entry.get("lossy"):
        return True
    return mapping is None or entry.get("mapping") == mapping.describe()


#: Time stamp of every entry of a pre-computed archive (local time, as ZIP keeps it): fixed, so an
#: archive rebuilt from the same files has the same bytes and ETag.
ARCHIVE_TIME = time.mktime((2020, 1, 1, 0, 0, 0, 0, 1, -1))


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
        z = ZipStream(mtime=ARCHIVE_TIME)
        for arcname, path in files:
            with store.objects.open(path) as fh:
                data = fh.read()
            yield b"".join(z.add(arcname, pack(data, deflate=dicom_header_length(data))))
        yield b"".join(z.add(MANIFEST_NAME, pack(manifest, deflate=len(manifest))))
        yield from z.finish()

    try:
        path, size, sha = store.objects.put_stream(lambda h: archive_path(name, study, series, h), chunks())
    except NotFoundError:
        return False  # an original or rendition of it went meanwhile (a deletion, a correction)
    replaced: list[str] = []
    recorded = bool(
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
            expect=instances_fingerprint((r.sop_uid, r.sha256) for r in records),
            revision=CODING_REVISION,
            replaced=replaced,
        )
    )
    if not recorded:  # the study changed meanwhile: the file is nobody's (unless the same bytes are)
        store.remove_unreferenced([path])
    elif replaced:  # the archive this one replaces: until 2026-12-02 left to `store gc` (an outside audit)
        store.remove_unreferenced(replaced)
    return recorded
