"""On-the-fly archives: read → encode → zip → send, overlapped, in bounded memory.

Seed 000 measured a "physical floor" of 13-18 s because fetching, compressing, zipping and
sending ran one after the other. Here they are stages of one pipeline::

    store.instances() ─▶ worker threads (read original, encode_instance, CRC-32) ─▶ ZipStream ─▶ client
                         at most ``window`` tasks in flight, results in order         event loop

* **Overlap.** The workers read and encode instance *k+1..k+window* while instance *k* is
  being sent; the numba kernels release the GIL, so encoding runs on every core while the
  event loop frames and sends. The time is that of the slowest stage, not the sum.
* **Bounded memory.** At most ``window`` tasks (one instance, or a batch of up to
  :data:`BATCH_FILES` small ones: :func:`_batches`) are alive per stream (original + encoded),
  whatever the study size; the socket applies back-pressure (``send`` waits while the
  client is slow), so nothing piles up. The ZIP central directory is ~100 bytes per file.
* **Bounded concurrency.** One :class:`LivePool` per server: a fixed thread pool shared by
  all streams and a limit on streams encoding at once (more wait their turn).
* **Encoder processes.** The kernels release the GIL, but reading, re-writing and packing a
  DICOM file is Python that holds it (~3 of ~6 ms per 512x512 CT slice): with threads alone two
  cores reached ~1.3 cores of work. With ``processes > 0`` (the server's default on a multi-core
  machine) each instance is read, encoded and packed (:func:`~.zipstream.pack`) in one of
  ``processes`` worker processes (spawned and warmed up when the server starts, killed with it),
  and the server process only frames and sends; its threads just wait for the workers.
* **Cancellation.** When the client goes away, the stream's generator is closed: queued
  work is cancelled, running work (one instance per thread) finishes and is dropped, and no
  thread, temporary file or buffer outlives the request (nothing is written to disk).

The same :meth:`Preset.encode_instance <medcodec.delivery.presets.Preset.encode_instance>`
makes pre-computed renditions, so a live archive holds what a pre-computed one would.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import errno
import io
import json
import logging
import multiprocessing
import os
import re
import signal
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, TypeVar

from ..dicom.iod import rescale_must_be_identity
from ..dicom.write import JPEG_BASELINE, JPEG_EXTENDED
from ..errors import DeliveryError, OutOfResourcesError
from .header import as_part10, baseline_as_extended, read_header, relabel_syntax, stored_syntax
from .precompute import rendition_fresh
from .zipstream import Packed, ZipStream, dicom_header_length, pack

__all__ = ["LivePool", "ReadAhead", "amap_ordered", "LiveEntry", "stream_zip"]

_T = TypeVar("_T")
log = logging.getLogger("medcodec.delivery")

#: zlib level for the DICOM headers of live archive entries. Level 1 against 6, measured on the
#: shared series' live ``diagnostic`` files: 0.14 against 0.26 ms per 256x256 MR file (10.6 kB of
#: header), 0.12 against 0.17 ms per 512x512 CT file (8.6 kB), for 0.2-0.3 % more bytes. A live
#: stream of small images is bound by CPU, not by the link. Pre-computed archives keep level 6.
#: Live entries are deflated by ISA-L (``pack(fast=True)``): its level 1 takes ~30 against ~100 us
#: for zlib's level 1 on a 10.6 kB MR header, for the same size (4193 against 4214 bytes).
LIVE_DEFLATE_LEVEL = 1

#: Seconds a live archive waits for an encoding slot (``--max-live``) before it is answered 503
#: with Retry-After (:class:`~medcodec.errors.OutOfResourcesError`), not left waiting for ever.
SLOT_WAIT = 120.0
#: A live archive's client must take at least this many bytes a second of it, counted over the time
#: the stream waits on the client (not on its own encoding), once it has waited :data:`SLOW_GRACE`
#: seconds: a reader at 1 KB/s held one of the server's few encoding slots for an hour (an outside
#: audit, 2026-12-05). 16 KiB/s, the slowest link a DICOMweb client is on (as STOW bodies).
LIVE_MIN_RATE = 16 * 1024
SLOW_GRACE = 60.0
#: Bytes all streams together may hold read or encoded ahead of what they send (``--read-ahead``).
#: Bounded in instances alone (``live_window``, 8 a stream), a WADO-RS answer of 24 MB instances
#: held ~200 MB for each reader, and WADO-RS streams are not counted by ``--max-live`` (an outside
#: audit, 2026-12-05). Past the budget a stream still keeps one instance in flight, so every stream
#: moves; the budget bounds what is held beyond that.
READ_AHEAD_BYTES = 256 * 1024 * 1024
#: Seconds the server's start waits for its encoder processes to warm up. A warm start takes 4-16 s
#: on 2 busy cores; the first start after an install or upgrade that skipped the warm-up compiles
#: the kernels in each process (55-85 s there): past this the server starts anyway, the processes
#: finish in the background and the first live requests wait for them. Until 2026-12-05 a fixed
#: 120 s limit failed the start with a traceback (an outside audit of upgrades, two servers
#: starting at once on a busy host).
WARM_UP_WAIT = 60.0


class ReadAhead:
    """The byte budget every stream's read-ahead draws on (:func:`amap_ordered`).

    Called from the event loop and the tests' threads alike, so locked. ``held`` is what is charged
    now, ``peak`` the most ever charged (for ``/health`` and the tests).
    """

    def __init__(self, capacity: int = READ_AHEAD_BYTES):
        self.capacity = max(0, int(capacity))
        self.held = 0
        self.peak = 0
        self._lock = threading.Lock()

    def take(self, n: int, *, force: bool = False) -> bool:
        """Charge ``n`` bytes if they fit (or ``force``: the one item a stream always has); True if charged."""
        with self._lock:
            if not force and self.held + n > self.capacity:
                return False
            self.held += n
            self.peak = max(self.peak, self.held)
            return True

    def give(self, n: int) -> None:
        """Return ``n`` charged bytes."""
        with self._lock:
            self.held -= n


def _held_bytes(result: Any) -> int:
    """The bytes a produced result holds: its data, or the sum over a batch / a (data, label) pair."""
    if isinstance(result, (bytes, bytearray, memoryview)):
        return len(result)
    if isinstance(result, LiveEntry):
        return len(result.data)
    if isinstance(result, (list, tuple)):
        return sum(_held_bytes(part) for part in result)
    return 0


class LivePool:
    """The server's encoding threads and its limit on live streams encoding at once.

    Parameters
    ----------
    workers
        Threads (default: CPU count); the kernels release the GIL, so one per core.
    max_streams
        Live streams encoding at once; the others wait (bounded CPU and memory).
    window
        Instances in flight per stream (read or encoded ahead of the one being sent).
    read_ahead_bytes
        Bytes all streams together may hold ahead of what they send (:class:`ReadAhead`).
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        max_streams: int = 4,
        window: int = 8,
        processes: int = 0,
        objects_url: str | None = None,
        read_ahead_bytes: int = READ_AHEAD_BYTES,
    ):
        self.workers = workers or os.cpu_count() or 1
        self.window = max(1, window)
        self.read_ahead = ReadAhead(read_ahead_bytes)
        self.max_streams = max(1, max_streams)
        self.processes = max(0, processes) if objects_url is not None else 0
        self.objects_url = objects_url
        # threads read the catalog and stored files, and (WADO-RS) wait on the processes
        threads = max(self.workers, 2 * self.processes)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="medcodec-live")
        self._procs: ProcessPoolExecutor | None = None
        self._procs_lock = threading.Lock()
        self._slots: asyncio.Semaphore | None = None
        self._lock = threading.Lock()
        self.active = 0  # streams encoding now (for /health and the tests)
        self.in_flight = 0  # work items submitted and not yet finished
        self.completed = 0  # streams sent to the end
        self.cancelled = 0  # streams closed early (client gone, error)

    @property
    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:  # created on the event loop that uses it
            self._slots = asyncio.Semaphore(self.max_streams)
        return self._slots

    def _track(self, fn: Callable[[Any], _T]) -> Callable[[Any], _T]:
        def run(item: Any) -> _T:
            try:
                return fn(item)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return run

    def submit(self, fn: Callable[[Any], _T], item: Any) -> asyncio.Future[_T]:
        with self._lock:
            self.in_flight += 1
        fut = self.executor.submit(self._track(fn), item)

        def undo(f: Any) -> None:  # a queued item cancelled before it ran never reaches the finally
            if f.cancelled():
                with self._lock:
                    self.in_flight -= 1

        fut.add_done_callback(undo)
        return asyncio.wrap_future(fut)

    def start(self, wait: float = WARM_UP_WAIT) -> None:
        """Start the encoder processes (if any) and warm them up: each encodes a small image once, so
        the first request does not pay for imports and kernel loading. Waits at most ``wait``
        seconds (then logs that they are still loading); a process that failed raises
        :class:`DeliveryError`. Idempotent."""
        procs = self._processes()
        if procs is None:
            return
        futures = [procs.submit(_warm_up) for _ in range(self.processes)]
        done, pending = concurrent.futures.wait(futures, timeout=min(wait, 10.0))
        if pending and wait > 10.0:
            log.info("the encoder processes are loading the codec kernels (compiled once after an install or "
                     "upgrade that did not run `python -m medcodec.codec.warmup`: a minute or more)")  # fmt: skip
            done, pending = concurrent.futures.wait(futures, timeout=wait - 10.0)
        if pending:
            log.warning("%d of %d encoder process(es) still loading the codec kernels after %.0f s: the server "
                        "starts, the first live requests wait for them", len(pending), len(futures), wait)  # fmt: skip
        for fut in done:
            try:
                fut.result()
            except Exception as exc:  # (BrokenProcessPool: a worker died while it started)
                raise DeliveryError(f"the encoder processes did not start: {type(exc).__name__}: {exc}") from exc

    def _processes(self) -> ProcessPoolExecutor | None:
        if not self.processes:
            return None
        with self._procs_lock:
            if self._procs is None:
                # spawn, not fork: the server has threads (fork would copy their locks), and a spawned
                # worker is the server's own child, so it can be told to die with it (_worker_init)
                self._procs = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_init,
                    initargs=(self.objects_url, os.getpid()),
                )
            return self._procs

    def run_in_process(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in an encoder process, waited for (call it from a pool thread). A crashed
        worker (``BrokenProcessPool``) is replaced for the next call and raises ``DeliveryError``."""
        procs = self._processes()
        if procs is None:
            return fn(*args)
        try:
            return self._submit(procs, fn, *args).result()
        except BrokenProcessPool as exc:
            raise self._broken(procs, exc) from exc

    async def in_process(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in an encoder process, awaited on the event loop (no thread waits for it).
        Cancelling the await cancels the work if it has not started. A crashed worker is replaced
        for the next call and raises ``DeliveryError``."""
        procs = self._processes()
        if procs is None:
            return await asyncio.wrap_future(self.submit_thread(fn, *args))
        try:
            return await asyncio.wrap_future(self._submit(procs, fn, *args))
        except BrokenProcessPool as exc:
            raise self._broken(procs, exc) from exc

    def submit_job(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """``fn(*args)`` in an encoder process (or on the threads, without processes), not awaited:
        background batch work such as pre-computing what STOW-RS brought (:meth:`job_executor`).
        A pool whose worker died is replaced for the next call."""
        procs = self._processes()
        if procs is None:
            return self.executor.submit(fn, *args)
        try:
            return self._submit(procs, fn, *args)
        except BrokenProcessPool as exc:
            raise self._broken(procs, exc) from exc

    def job_executor(self) -> Executor:
        """An :class:`~concurrent.futures.Executor` over :meth:`submit_job` (for
        :func:`~medcodec.delivery.precompute.precompute`'s ``executor``)."""
        return _JobExecutor(self)

    def submit_thread(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """``fn(*args)`` on the pool's threads (catalog queries, stored files)."""
        return self.executor.submit(fn, *args)

    def _submit(self, procs: ProcessPoolExecutor, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """Submit to the processes, counted in :attr:`in_flight` until done (or cancelled)."""
        fut: Future[_T] = procs.submit(fn, *args)  # BrokenProcessPool when a worker died before
        with self._lock:
            self.in_flight += 1

        def done(_: Any) -> None:
            with self._lock:
                self.in_flight -= 1

        fut.add_done_callback(done)
        return fut

    def _broken(self, procs: ProcessPoolExecutor, exc: BaseException) -> Exception:
        """Forget a pool whose worker died (the next call starts a new one); the error to raise."""
        with self._procs_lock:
            if self._procs is procs:
                self._procs = None
        procs.shutdown(wait=False, cancel_futures=True)
        return DeliveryError(f"a live encoder process stopped unexpectedly: {exc}")

    def close(self) -> None:
        """Stop the threads and the encoder processes (queued work is cancelled)."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        with self._procs_lock:
            procs, self._procs = self._procs, None
        if procs is not None:
            procs.shutdown(wait=True, cancel_futures=True)


class _JobExecutor(Executor):
    """:meth:`LivePool.submit_job` as an executor (shutting it down leaves the pool running)."""

    def __init__(self, pool: LivePool):
        self._pool = pool

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        if kwargs:  # a programming error, in the hierarchy like the others (InvalidInputError is a ValueError)
            from ..errors import InvalidInputError

            raise InvalidInputError("LivePool jobs take positional arguments only")
        return self._pool.submit_job(fn, *args)


# --------------------------------------------------------------------------- encoder processes

_WORKER_OBJECTS: Any = None
#: threads an encoder process gives the frames of one multi-frame instance: a study that is one
#: large object (an enhanced CT, a tomosynthesis) would otherwise code on one core
_WORKER_JOBS = os.cpu_count() or 1


def _worker_init(objects_url: str | None, server_pid: int) -> None:
    """In each encoder process: ignore Ctrl-C (the server stops the pool), die with the server even
    when it is killed (``kill -9`` would otherwise leave the workers blocked on their queue), open
    the store's objects."""
    global _WORKER_OBJECTS
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(server_pid)
    if objects_url is not None:
        from .objects import Objects

        _WORKER_OBJECTS = Objects(objects_url, create=False)
    # the garbage collector: everything imported so far (codec, pydicom, numba) is permanent, and a
    # collection every 100k allocations instead of 700 (a file's pydicom objects are freed by
    # reference counting; the default threshold spent ~1 ms of a 256x256 MR instance's ~8 ms)
    import gc

    from . import presets  # noqa: F401  (imported before the freeze)

    gc.set_threshold(100_000, 50, 1000)
    gc.freeze()


def _die_with_parent(parent_pid: int) -> None:
    """Exit this process soon after ``parent_pid`` (its parent) is gone: a daemon thread polls the
    parent PID twice a second (an orphan is re-parented). Not ``prctl(PR_SET_PDEATHSIG)``: that
    fires when the parent *thread* that started the worker ends, and the pool starts workers from
    short-lived threads."""
    import time

    if os.getppid() != parent_pid:
        os._exit(0)  # the server died before this worker got here

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="medcodec-parent-watch").start()


def _warm_up() -> int:
    """Encode a small synthetic CT once (numba kernels loaded from their cache, code paths imported)."""
    import numpy as np

    from .. import codec
    from ..dicom._mapping_kernels import warm
    from ..spec import PixelSpec

    warm()
    ramp = (np.add.outer(np.arange(64), np.arange(64)) * 16).astype(np.uint16)
    return len(codec.encode(ramp, bits_stored=12, signed=False, format="jpeg", quality=75, spec=PixelSpec(12, False)))


@dataclass(frozen=True)
class WorkerFailure:
    """What an encoder process returns instead of raising: the exception's class name and message
    (not every error class pickles)."""

    kind: str
    message: str


def _encode_file_in_process(
    path: str, preset_name: str, mapping: Any, syntax: str | None = None, recode: bool = False, size: int | None = None
) -> tuple[bytes, Any] | WorkerFailure:
    """One instance under a preset, in an encoder process: the original read from the store and
    encoded (:meth:`Preset.encode_instance`, ``measure=False``; ``syntax``: the ``lossless``
    preset's syntax; ``recode``: as there): ``(file bytes, manifest entry)``. ``size``: the
    catalog's, checked as the server's own reads check it (a truncated original was passed through
    whole-looking, as if undecodable: an outside audit, 2026-12-03)."""
    from .presets import PRESETS
    from .template import encode_live

    try:
        assert _WORKER_OBJECTS is not None, "the encoder process has no store"
        with _WORKER_OBJECTS.open(path, size) as fh:
            data = fh.read()
        preset = PRESETS[preset_name]
        if syntax is None and not recode:  # the series' template when it has one (the same bytes, less work)
            encoded = encode_live(preset, data, mapping, jobs=_WORKER_JOBS)
        else:
            encoded = preset.encode_instance(
                data, mapping=mapping, measure=False, jobs=_WORKER_JOBS, syntax=syntax, recode=recode
            )
        return encoded.data, encoded.entry
    except Exception as exc:
        return WorkerFailure(type(exc).__name__, str(exc))


def _encode_in_process(
    path: str, preset_name: str, mapping: Any, size: int | None = None
) -> tuple[Packed, Any] | WorkerFailure:
    """:func:`_encode_file_in_process`, then packed for the ZIP (:func:`~.zipstream.pack`) in the
    worker too: ``(packed entry with its chunks joined into one, manifest entry)``."""
    result = _encode_file_in_process(path, preset_name, mapping, size=size)
    if isinstance(result, WorkerFailure):
        return result
    data, entry = result
    packed = pack(data, deflate=dicom_header_length(data), level=LIVE_DEFLATE_LEVEL, fast=True)
    return replace(packed, chunks=(b"".join(packed.chunks),)), entry  # memoryviews do not pickle


def _encode_batch_in_process(
    tasks: list[tuple[str, Any, int | None]], preset_name: str
) -> list[tuple[Packed, Any] | WorkerFailure]:
    """:func:`_encode_in_process` for each ``(path, mapping, catalog size)`` of a batch of small
    instances: one task, one result to pickle, one wake-up of the server's event loop for all of them."""
    return [_encode_in_process(path, preset_name, mapping, size) for path, mapping, size in tasks]


def _raise_worker_error(record: Any, failure: WorkerFailure) -> NoReturn:
    raise DeliveryError(f"instance {record.sop_uid}: {failure.kind}: {failure.message}")


async def amap_ordered(
    pool: LivePool,
    fn: Callable[[Any], _T],
    items: Iterable[Any],
    *,
    submit: Callable[[Any], asyncio.Future[_T]] | None = None,
) -> AsyncGenerator[_T, None]:
    """``map(fn, items)`` on the pool's threads, in order, at most ``pool.window`` ahead.

    ``submit(item)``, when given, starts an item instead (e.g. a task awaiting an encoder process)
    and returns its future. Closing the generator early (client gone) cancels what is queued; the
    finally block has no ``await``, so it runs to the end even inside a cancelled task.

    Read-ahead is bounded in bytes too (``pool.read_ahead``, shared by every stream): each item
    in flight is charged the largest result this stream has produced so far, and a further item
    starts only while the charge fits. The first result is waited for before reading further
    (its size is not known before), and a stream always keeps one item in flight, so none stalls
    for want of budget.
    """
    pending: collections.deque[tuple[asyncio.Future[_T], int]] = collections.deque()
    start = submit if submit is not None else (lambda item: pool.submit(fn, item))
    budget = pool.read_ahead
    largest: int | None = None  # bytes of the largest result so far; None before the first

    async def first() -> _T:
        nonlocal largest
        fut, charge = pending.popleft()
        try:
            result = await fut
        finally:
            budget.give(charge)
        size = _held_bytes(result)
        largest = size if largest is None else max(largest, size)
        return result

    try:
        for item in items:
            while pending:  # room for one more in flight ahead of the first?
                if largest is not None and len(pending) < pool.window and budget.take(largest):
                    charge = largest
                    break
                yield await first()
            else:  # nothing in flight: this stream's one item, charged whether or not it fits
                charge = largest or 0
                budget.take(charge, force=True)
            try:
                pending.append((start(item), charge))
            except BaseException:
                budget.give(charge)
                raise
        while pending:
            yield await first()
    finally:
        for fut, charge in pending:
            fut.cancel()
            budget.give(charge)


@dataclass
class LiveEntry:
    """One file of a live archive, produced by a worker: name, bytes, manifest row, and the bytes
    as they go into the ZIP (:func:`~.zipstream.pack`: the DICOM header deflated, pixel data stored)."""

    name: str
    data: bytes
    manifest: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    packed: Packed | None = None

    def __post_init__(self) -> None:
        if self.packed is None:  # in the worker thread: zlib releases the GIL for CRC and deflate
            self.packed = pack(self.data, deflate=dicom_header_length(self.data), level=LIVE_DEFLATE_LEVEL, fast=True)


async def stream_zip(
    pool: LivePool,
    produce: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    finish: Callable[[list[LiveEntry]], list[tuple[str, bytes]]] | None = None,
    zip64_limit: int | None = None,
    submit: Callable[[Any], asyncio.Future[Any]] | None = None,
    sent: Callable[[LiveEntry], None] | None = None,
) -> AsyncIterator[bytes]:
    """A ZIP file's chunks, its entries produced by ``produce(item)`` on the pool's threads.

    Parameters
    ----------
    pool
        Threads and stream limit (waits for a free slot first).
    produce
        ``item -> LiveEntry`` (or a list of them, for an item that is a batch): reads and encodes
        (runs in a worker thread).
    items
        What to produce, in archive order.
    finish
        ``entries -> [(name, bytes)]`` appended last (the ``manifest.json``); the entries
        passed keep their ``manifest`` and ``extra`` but not their data.
    zip64_limit
        For tests: lower the ZIP64 threshold.
    submit
        ``item -> future of LiveEntry`` (or of a list of them), to start an item another way than
        ``produce`` on a thread (:func:`live_archive`: a batch in an encoder process, awaited on
        the event loop).
    sent
        Called with each entry once its bytes are handed to the client (its data dropped), while
        the next ones are encoded: :func:`live_archive` renders its manifest row there, so the
        manifest at the end costs little.
    """
    try:
        await asyncio.wait_for(pool.slots.acquire(), SLOT_WAIT)
    except TimeoutError:
        raise OutOfResourcesError(
            errno.EBUSY,
            f"all {pool.max_streams} live archives the server codes at once are taken (--max-live) and none "
            f"came free in {SLOT_WAIT:g} s; retry later",
        ) from None
    try:
        pool.active += 1
        complete = False
        loop = asyncio.get_running_loop()
        waited = 0.0  # seconds this stream spent waiting on its client (in yield)
        given = 0  # bytes handed to the client
        try:
            z = ZipStream(**({} if zip64_limit is None else {"zip64_limit": zip64_limit}))
            done: list[LiveEntry] = []
            gen = amap_ordered(pool, produce, items, submit=submit)
            try:
                async for produced in gen:
                    batch = produced if isinstance(produced, list) else [produced]
                    for entry in batch:
                        assert entry.packed is not None
                    # one chunk per file or batch (headers + data): one send, one wake-up of the event loop
                    chunk = b"".join(part for entry in batch for part in z.add(entry.name, entry.packed))
                    t0 = loop.time()
                    yield chunk
                    waited += loop.time() - t0
                    given += len(chunk)
                    if waited > SLOW_GRACE and given < LIVE_MIN_RATE * waited:
                        raise OutOfResourcesError(
                            errno.ETIMEDOUT,
                            f"the client took {given} bytes in {waited:.0f} s (at least {LIVE_MIN_RATE} a second are "
                            "needed to keep a live archive's encoding slot): cut",
                        )
                    for entry in batch:
                        entry.data, entry.packed = b"", None  # sent: keep only the manifest row
                        if sent is not None:
                            sent(entry)
                        done.append(entry)
            finally:
                await gen.aclose()
            for name, data in finish(done) if finish is not None else []:
                yield b"".join(z.add(name, pack(data, deflate=len(data))))
            for chunk in z.finish():
                yield chunk
            complete = True
        finally:
            pool.active -= 1
            if complete:
                pool.completed += 1
            else:
                pool.cancelled += 1
    finally:
        pool.slots.release()


# --------------------------------------------------------------------------- instances under a syntax / preset
# (no HTTP: the service's WADO-RS and archive routes call these from worker threads)

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
#: What :func:`instance_bytes` takes in place of a transfer syntax for "the preset's own rendition,
#: in whatever syntax the preset codes this instance": a WADO request with ``preset=`` that names
#: no syntax (until 2026-12-04 such a request got the original decompressed, the preset ignored).
AS_PRESET = "(preset)"  # not a UID: no client can name it (WADO-RS skips it if sent, WADO-URI validates UIDs)


def preset_syntaxes() -> dict[str, list[str]]:
    """``{preset name: transfer syntax UIDs it produces}`` (8-bit and 12-bit samples), for the
    presets that change the syntax (``original`` keeps each file's own)."""
    from .presets import PRESETS

    out: dict[str, list[str]] = {}
    for name, preset in PRESETS.items():
        uids = sorted({u for u in (preset.transfer_syntax_for(8), preset.transfer_syntax_for(12)) if u})
        if uids:
            out[name] = uids
    return out


def lossless_transcodes(wanted: str | None = None) -> list[str]:
    """Syntaxes an instance is coded into losslessly on request (WADO-RS, DIMSE) besides the
    presets' own: those the ``lossless`` preset can write here (:func:`.presets.lossless_syntaxes`),
    and JPEG 2000 .91 / HTJ2K .203, which carry the same lossless codestream
    (:data:`.presets.LOSSLESS_UNDER`), when no preset or ``lossless`` is asked for."""
    from .presets import lossless_syntaxes, with_lossless_aliases

    return with_lossless_aliases(lossless_syntaxes()) if wanted in (None, "lossless") else []


def presets_for_syntax(ts: str, wanted: str | None = None) -> list[str]:
    """Presets producing ``ts``, ``wanted`` only when given, ``diagnostic`` first."""
    names = [n for n, uids in preset_syntaxes().items() if ts in uids and (wanted is None or n == wanted)]
    return sorted(names, key=lambda n: (n != "diagnostic", n))


def encode_with_preset(
    store: Any,
    record: Any,
    preset_name: str,
    *,
    mapping: Any = None,
    data: bytes | None = None,
    measure: bool = False,
    pool: LivePool | None = None,
    syntax: str | None = None,
    recode: bool = False,
) -> tuple[bytes, str, Any]:
    """One instance under a preset, computed now: ``(file bytes, transfer syntax, manifest entry)``.
    ``syntax``: the ``lossless`` preset's transfer syntax (:func:`.presets.lossless_syntaxes`);
    ``recode``: code it even where the preset would deliver the stored file (:meth:`.Preset.encode_instance`).

    ``measure=False`` (live): no decode-back to fill PSNR / max error (``measured: false`` in the
    manifest). The pre-computed rendition is NOT looked up here (see :func:`rendition_or_encode`).
    With a ``pool`` that has encoder processes (and the same store) the encoding runs in one of
    them (call this from a thread: it waits).
    """
    from .presets import PRESETS

    preset = PRESETS[preset_name]
    if mapping is None and record.compressible and preset.lossy:
        mapping = store.series_mapping(record.series_uid, preset_name)
    if _in_process(pool, store, record) and data is None and not measure:
        assert pool is not None
        result = pool.run_in_process(
            _encode_file_in_process, record.path, preset_name, mapping, syntax, recode, record.size
        )
        if isinstance(result, WorkerFailure):
            _raise_worker_error(record, result)
        file_bytes, entry = result
        return file_bytes, entry.transfer_syntax_uid, entry
    if data is None:
        with store.open_original(record) as fh:
            data = fh.read()
    encoded = preset.encode_instance(data, mapping=mapping, measure=measure, syntax=syntax, recode=recode)
    return encoded.data, encoded.entry.transfer_syntax_uid, encoded.entry


def _in_process(pool: LivePool | None, store: Any, record: Any) -> bool:
    """Encode ``record`` in one of ``pool``'s encoder processes? (They read the same store.)"""
    return bool(
        pool is not None
        and pool.processes
        and record.compressible
        and getattr(getattr(store, "objects", None), "url", None) == pool.objects_url
    )


def read_rendition(store: Any, rendition: Any, record: Any, preset_name: str) -> bytes | None:
    """A pre-computed file's bytes, or ``None`` when its file is missing or damaged (its length
    not the catalog's): a cache lost, which the caller encodes again from the original; said once
    as a warning naming ``store check`` (an outside audit, 2026-12-03: a deleted rendition cut
    WADO-RS answers whose originals were intact)."""
    from ..errors import NotFoundError

    try:
        with store.open_rendition(rendition) as fh:
            return bytes(fh.read())
    except (NotFoundError, DeliveryError) as exc:
        if rendition.path not in _LOST_RENDITIONS:  # once per file and process, not at every request
            _LOST_RENDITIONS.add(rendition.path)
            log.warning(
                "instance %s, preset %s: %s; encoded from the original instead (`medcodec store check` names "
                "damaged objects)", record.sop_uid, preset_name, exc,
            )  # fmt: skip
        return None


#: Renditions found lost or damaged (their warning said once per server process).
_LOST_RENDITIONS: set[str] = set()


def rendition_or_encode(
    store: Any, record: Any, preset_name: str, *, mapping: Any = None, live: bool = False, pool: LivePool | None = None
) -> tuple[bytes, str, Any]:
    """The instance under ``preset_name``: its pre-computed rendition when stored (and not ``live``)
    and readable (:func:`read_rendition`), else encoded now."""
    if not live:
        rendition = store.rendition(record, preset_name)
        if rendition is not None and (data := read_rendition(store, rendition, record, preset_name)) is not None:
            return data, rendition.transfer_syntax_uid, rendition
    return encode_with_preset(store, record, preset_name, mapping=mapping, pool=pool)


def instance_bytes(
    store: Any, record: Any, ts: str, preset: str | None = None, strict: bool = True, pool: LivePool | None = None
) -> tuple[bytes, str]:
    """One instance as a DICOM file under transfer syntax ``ts`` (``*`` = as stored,
    :data:`AS_PRESET` = as ``preset`` codes it: its rendition, or the original it passes through).

    Returns ``(bytes, syntax actually used)``. With ``strict`` an instance that cannot take
    ``ts`` raises :class:`~medcodec.errors.NotAcceptableError`; otherwise it comes as stored.
    """
    from ..errors import NotAcceptableError

    if ts == AS_PRESET:
        assert preset is not None, "AS_PRESET is what a request with a preset and no syntax asks for"
        data, got, _ = rendition_or_encode(store, record, preset, pool=pool)
        if got == record.transfer_syntax_uid and data[128:132] != b"DICM":  # passed through as stored
            return instance_bytes(store, record, "*")
        return data, got
    if ts in ("*", record.transfer_syntax_uid):
        with store.open_original(record) as fh:
            data = fh.read()
        if data[128:132] == b"DICM":
            return data, record.transfer_syntax_uid
        # a preamble-less dataset: DICOMweb and DIMSE send PS3.10 files, its syntax read off its
        # bytes (a store made before 2026-12-01 catalogued them all as Implicit VR LE)
        syntax = stored_syntax(read_header(data, record.sop_uid))
        return as_part10(data, record.sop_class_uid, record.sop_uid, syntax), syntax
    if ts == EXPLICIT_VR_LE:
        with store.open_original(record) as fh:
            data = fh.read()
        try:
            return _to_explicit_le(data), EXPLICIT_VR_LE
        except Exception as exc:  # a pixel codec missing or failing: this instance cannot be decompressed
            if strict:
                raise NotAcceptableError(f"instance {record.sop_uid} cannot be sent as {ts}: {exc}") from exc
            return data, record.transfer_syntax_uid
    names = presets_for_syntax(ts, preset)
    coded_as = ts  # the syntax the codestream is written in: ts, or for .91 / .203 its lossless sibling
    if names:
        name, lossless_syntax = names[0], None
        data, got, made = rendition_or_encode(store, record, name, pool=pool)
        how = f" by preset {name!r}"
    elif ts in lossless_transcodes(preset):  # a lossless syntax no preset stores (JPEG 2000, JPEG-LS...)
        from .presets import LOSSLESS_UNDER

        coded_as = LOSSLESS_UNDER.get(ts, ts)
        name, lossless_syntax = "lossless", coded_as
        data, got, made = encode_with_preset(store, record, name, pool=pool, syntax=coded_as)
        how = " losslessly"
    else:
        raise NotAcceptableError(
            f"transfer syntax {ts} is not one medcodec produces" + (f" with preset {preset!r}" if preset else "")
        )
    if got == JPEG_BASELINE and ts == JPEG_EXTENDED:  # 8-bit samples, coded (or stored) baseline: SOF1
        from ..errors import InvalidInputError

        try:
            data, got = baseline_as_extended(data), ts
        except InvalidInputError as exc:  # a stored baseline file whose frames are not walkable JPEG
            if strict:
                raise NotAcceptableError(f"instance {record.sop_uid} cannot be sent as {ts}: {exc}") from exc
    elif got != coded_as and _stored_by_choice(made) and _may_give(record, name, ts):
        # an original stored lossy-compressed (a preset does not code it a second time), or stored
        # smaller than the preset codes it: this client asked for the syntax, so it is coded for it,
        # unless the preset cannot give it that syntax either (then the stored file stays the answer)
        again, syntax_again, _ = encode_with_preset(store, record, name, pool=pool, syntax=lossless_syntax, recode=True)
        if syntax_again == coded_as:
            data, got = again, syntax_again
    if got == coded_as != ts:  # the lossless .90 / .201 codestream is a valid .91 / .203 one: labelled so
        data, got = relabel_syntax(data, ts), ts
    if got != ts and strict:
        if got != record.transfer_syntax_uid:  # coded, in the syntax its samples take (8-bit: .50, not .51)
            from pydicom.uid import UID

            why = f"it codes this image as {got} ({UID(got).name})"
        elif not _may_give(record, name, ts):  # colour, which this preset codes in other syntaxes or not at all
            colour = _colour_syntaxes(name)
            why = f"colour images are coded in {', '.join(colour)} only" if colour else "it delivers colour as stored"
        else:
            why = getattr(made, "reason", "") or record.passthrough_reason or "it delivers this image as stored"
        raise NotAcceptableError(
            f"instance {record.sop_uid} ({record.modality or 'no modality'}, {record.photometric or 'no pixels'}) "
            f"cannot be encoded as {ts}{how}: {why}"
        )
    if got != ts:
        # a study or series retrieve: this instance cannot take the syntax asked for, so it goes as
        # stored (its part says which), never a preset's lossy file in a syntax nobody asked for
        # (16-bit CT asked for baseline .50 was sent as the diagnostic .51: QIDO/WADO audit, 2026-12-01)
        return instance_bytes(store, record, "*")
    return data, got


def _colour_syntaxes(preset_name: str) -> list[str]:
    """The syntaxes ``preset_name`` codes a colour image in: baseline JPEG under a lossy preset that
    codes colour (and extended .51, the same frames as SOF1: :func:`.header.baseline_as_extended`),
    the lossless ones of :data:`medcodec.external.COLOUR_LOSSLESS` (and .91 / .203 through them)
    under ``lossless``, none where colour goes as stored."""
    from ..external import COLOUR_LOSSLESS
    from .presets import PRESETS, with_lossless_aliases

    preset = PRESETS[preset_name]
    if not preset.codes_colour:
        return []
    return [JPEG_BASELINE, JPEG_EXTENDED] if preset.lossy else with_lossless_aliases(list(COLOUR_LOSSLESS))


def _may_give(record: Any, preset_name: str, ts: str) -> bool:
    """Whether coding ``record`` under ``preset_name`` can give ``ts`` at all: a colour image only
    in :func:`_colour_syntaxes`, so a request for another syntax does not pay for a colour encode it
    would not use."""
    from .presets import is_colour_record

    return not is_colour_record(record) or ts in _colour_syntaxes(preset_name)


def _stored_by_choice(made: Any) -> bool:
    """Whether a preset passed an instance through that it could code: stored lossy-compressed
    already, or smaller than the preset's file (``made``: the :class:`.manifest.ManifestEntry` of
    an encoding, or a stored rendition's record)."""
    from .presets import ALREADY_LOSSY, SMALLER_STORED

    reason = getattr(made, "reason", None)
    if reason is None:  # a rendition record: its manifest entry as JSON
        try:
            reason = json.loads(getattr(made, "entry", "") or "{}").get("reason", "")
        except ValueError:
            return False
    return str(reason).startswith((ALREADY_LOSSY, SMALLER_STORED))


def _to_explicit_le(data: bytes) -> bytes:
    """``data`` (any syntax pydicom decodes) as an Explicit VR Little Endian PS3.10 file: compressed
    pixel data decompressed; a Big Endian dataset's samples and other binary words (OW, OF, OL, OD,
    OV values, which pydicom keeps as read) swapped to little endian, its planar colour interleaved."""
    import numpy as np
    import pydicom
    from pydicom.pixels import pack_bits, pixel_array
    from pydicom.uid import UID, ExplicitVRLittleEndian

    from ..dicom.write import keep_lossy_history, native_icons, stamp_writer, untyped_private_as_un

    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    if ds.file_meta.get("TransferSyntaxUID") is None:  # a preamble-less file: the syntax of its bytes
        ds.file_meta.TransferSyntaxUID = UID(stored_syntax(ds))
    source = ds.file_meta.TransferSyntaxUID
    if source.is_compressed:  # PS3.18: the default syntax is uncompressed Explicit VR LE
        refuse_too_large(ds)
        # pixels lossy by their syntax or own headers, the header silent: said now (a JPEG-LS NEAR > 0
        # frame, once decompressed, would no longer show it)
        keep_lossy_history(ds, ds, source)
        native_icons(ds, source)  # an icon's pixel data are in the data set's syntax too (audit 2026-12-02)
        ds.decompress(generate_instance_uid=False)  # the same instance, in another syntax
    elif not source.is_little_endian:  # Explicit VR Big Endian (retired, still in old archives)
        samples = pixel_array(ds, raw=True) if "PixelData" in ds else None
        _swap_words(ds)
        if samples is not None:
            bits = int(ds.BitsAllocated)
            le = samples.astype(samples.dtype.newbyteorder("<"), copy=False)
            ds.PixelData = pack_bits(samples) if bits == 1 else np.ascontiguousarray(le).tobytes()
            ds["PixelData"].VR = "OW" if bits > 8 else "OB"
            if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
                ds.PlanarConfiguration = 0  # pixel_array gives (..., samples) interleaved
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    stamp_writer(ds.file_meta)
    untyped_private_as_un(ds)  # a private value that is no valid value of its dictionary VR goes as UN
    # a data set encoded Implicit VR whatever its file meta says (pydicom's SC_rgb_jpeg: JPEG with an
    # implicit VR data set, read so with a warning) has elements without a VR until they are read,
    # which the explicit VR writer needs: reading them takes it from the dictionary (UN when unknown).
    # Only then: reading every element doubles the time of this answer (2.5 -> 5.2 ms a CT slice)
    first = next(iter(ds.keys()), None)
    if first is not None and getattr(ds.get_item(first), "VR", "") is None:
        for _ in ds.iterall():
            pass
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return buf.getvalue()


#: Bytes per word of the binary VRs pydicom keeps as raw bytes in the dataset's byte order.
_WORD_BYTES = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def require_pixel_data(ds: Any, sop_uid: str) -> None:
    """:class:`NotFoundError` (404) for an instance without pixel data: an image IOD whose Pixel
    Data was left out (Rows and Columns present) is answered as an RT plan is, not with a decoder's
    406 (an outside audit, 2026-12-03: pydicom's "no 'Pixel Data'" text reached the viewer)."""
    from ..errors import NotFoundError

    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise NotFoundError(f"instance {sop_uid} has no pixel data")


def require_stored_pixel_data(store: Any, record: Any) -> None:
    """:func:`require_pixel_data` of the stored original (read whole: for error paths only)."""
    import pydicom

    with store.open_original(record) as fh:
        require_pixel_data(pydicom.dcmread(fh, force=True), record.sop_uid)


def refuse_too_large(ds: Any) -> None:
    """:class:`NotAcceptableError` (406) for an instance whose pixels would be too large decoded
    (:mod:`medcodec.dicom.limits`): an uncompressed answer needs them whole in memory."""
    from ..dicom.limits import check_dataset_decoded_size
    from ..errors import ImageTooLargeError, NotAcceptableError

    try:
        check_dataset_decoded_size(ds, path=f"instance {ds.get('SOPInstanceUID', '?')}")
    except ImageTooLargeError as exc:
        raise NotAcceptableError(f"{exc}; retrieve it as stored (transfer-syntax=*)") from None


def _swap_words(ds: Any) -> None:
    """Byte-swap, in place and through sequences, every OW / OF / OL / OD / OV value of a dataset
    read as big endian (pixel data excepted: the caller re-encodes it from the decoded samples)."""
    import numpy as np

    for element in list(ds):
        if element.VR == "SQ":
            for item in element.value or ():
                _swap_words(item)
        elif element.VR in _WORD_BYTES and element.tag != 0x7FE00010 and isinstance(element.value, bytes):
            width = _WORD_BYTES[element.VR]
            raw = element.value
            usable = len(raw) - len(raw) % width
            words = np.frombuffer(raw[:usable], dtype=f">u{width}")
            element.value = words.astype(f"<u{width}").tobytes() + raw[usable:]


def instance_frames(
    store: Any, record: Any, numbers: list[int], ts: str, preset: str | None = None
) -> tuple[list[bytes], str]:
    """Frames (1-based ``numbers``) of an instance: raw little-endian pixels for Explicit VR LE,
    else the encapsulated fragments of the instance under ``ts`` (``*`` = as stored).

    Raises :class:`~medcodec.errors.NotAcceptableError` when the instance coded under ``ts``
    changes what turns its samples into values (Pixel Representation, rescale): the frames route
    then tries the client's next choice, else answers 406."""
    import pydicom
    from pydicom.encaps import generate_frames

    from ..errors import NotAcceptableError

    if ts == EXPLICIT_VR_LE or (ts == "*" and not _is_encapsulated(record.transfer_syntax_uid)):
        stored, _ = instance_bytes(store, record, "*")  # PS3.10, so pydicom knows a preamble-less file's syntax
        ds = pydicom.dcmread(io.BytesIO(stored), force=True)
        frames = _native_frames(ds, record)
        return [frames[k - 1] for k in numbers], EXPLICIT_VR_LE
    try:
        data, got = instance_bytes(store, record, ts, preset, strict=True)
    except NotAcceptableError:  # an image without Pixel Data is a 404, as on the other pixel routes
        require_stored_pixel_data(store, record)
        raise
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    if got != record.transfer_syntax_uid:
        with store.open_original(record) as fh:
            header = pydicom.dcmread(fh, force=True, stop_before_pixels=True)
        was, now = _value_description(header), _value_description(ds)
        if was[1:] != now[1:]:
            raise NotAcceptableError(
                f"instance {record.sop_uid}: its frames as {got} hold values its metadata does not describe "
                f"(coded with {_describe(now)}, the instance has {_describe(was)}), and a frame carries no "
                "header; ask for the whole instance in this syntax, or frames as application/octet-stream, "
                "JPEG 2000 or HTJ2K"
            )
    n = int(ds.get("NumberOfFrames") or 1)
    frames = list(generate_frames(ds.PixelData, number_of_frames=n))
    return [frames[k - 1] for k in numbers], got


def _value_description(ds: Any) -> tuple[Any, ...]:
    """What turns a frame's coded samples into the values the instance's metadata describes: the
    rescale (top level, shared and first per-frame functional groups). A syntax without a sign
    (JPEG-LS, JPEG) codes a signed series with negative values shifted, its intercept moved in the
    file's header: right for the whole instance, wrong for a frame read against the stored
    metadata (an outside audit, 2026-12-03: CT frames 1000 HU too high). Pixel Representation
    is shown, not compared: 1 -> 0 without a shift (no negative value) leaves every value as it is.
    The windows and VOI LUT descriptors too: where an IOD fixes the rescale, they carry the mapping."""

    def number(value: Any, default: float) -> float | str:
        if value is None or str(value).strip() == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value)  # unreadable: compared as written

    def rescale(item: Any) -> tuple[float | str, float | str]:
        return number(item.get("RescaleSlope"), 1.0), number(item.get("RescaleIntercept"), 0.0)

    def group(seq_name: str) -> tuple[float | str, float | str] | None:
        seq = ds.get(seq_name)
        item = seq[0] if seq else None
        pvt = item.get("PixelValueTransformationSequence") if item is not None else None
        return rescale(pvt[0]) if pvt else None

    def voi() -> tuple[Any, ...]:
        # a DX / mammography copy keeps the rescale its IOD fixes at 1 / 0 and carries the series
        # mapping in its windows and VOI LUTs instead (dicom.write.fold_rescale_into_voi): its frames
        # are not described by the original's metadata either
        def numbers(keyword: str) -> tuple[float | str, ...]:
            value = ds.get(keyword)
            if value is None or value == "":
                return ()
            values = [value] if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") else list(value)
            return tuple(number(v, 0.0) for v in values)

        luts = tuple(tuple(item.get("LUTDescriptor") or ()) for item in ds.get("VOILUTSequence") or [])
        return numbers("WindowCenter"), numbers("WindowWidth"), luts

    # where the rescale cannot change, a copy coded in fewer bits changed its values while the rescale
    # and (without a VOI) everything else stayed: its Bits Stored tells (an outside re-check,
    # 2026-12-04: .51 frames of a 15-bit DX For Processing came, up to 21,204 off its metadata)
    depth = int(ds.get("BitsStored", 0) or 0) if rescale_must_be_identity(ds) else None
    return (
        int(ds.get("PixelRepresentation", 0) or 0),
        rescale(ds),
        group("SharedFunctionalGroupsSequence"),
        group("PerFrameFunctionalGroupsSequence"),
        (*voi(), depth),
    )


def _describe(description: tuple[Any, ...]) -> str:
    signed, top, shared, first, (centers, widths, luts, depth) = description
    text = (
        f"Pixel Representation {signed}, rescale {top[0]:g} x + {top[1]:g}"
        if all(isinstance(v, float) for v in top)
        else f"Pixel Representation {signed}, rescale {top}"
    )
    for label, pair in ((" (shared groups)", shared), (" (frame 1)", first)):
        if pair is not None:
            text += f", rescale{label} {pair[0]} x + {pair[1]}"
    if centers and widths:
        text += f", window {centers[0]} / {widths[0]}"
    for lut in luts:
        text += f", VOI LUT from {lut[1] if len(lut) > 1 else '?'}"
    if depth is not None:
        text += f", Bits Stored {depth}"
    return text


def original_units(store: Any, record: Any, preset: str | None, ds: Any) -> tuple[float, float] | None:
    """Slope and intercept that turn the samples of ``ds``, ``preset``'s copy of ``record``, into the
    original's output values, where the copy's own rescale does not: a DX, mammography or intra-oral
    copy keeps the rescale 1 / 0 its IOD fixes and carries its series mapping in its own VOI
    (:func:`medcodec.dicom.write.set_rescale`). ``None`` for the original itself, a passthrough (the
    same SOP Instance UID), another IOD or an identity mapping: the copy's rescale is right there.
    Used wherever a copy's values meet the original's metadata (a window in its units, the viewer)."""
    if preset in (None, "original") or not rescale_must_be_identity(ds):
        return None
    if str(ds.get("SOPInstanceUID", "")) == str(record.sop_uid):
        return None
    mapping = store.series_mapping(record.series_uid, preset)
    if mapping is None or mapping.is_identity:
        return None
    slope = float(record.rescale_slope if record.rescale_slope is not None else 1.0)
    intercept = float(record.rescale_intercept if record.rescale_intercept is not None else 0.0)
    return mapping.rescale(slope, intercept)


def _native_frames(ds: Any, record: Any) -> list[bytes]:
    """Every frame of ``ds`` (read whole) as native little-endian samples, laid out as the
    instance's metadata describes them.

    Pixel data stored native (little endian, whole bytes) is cut into frames as stored: the stored
    Photometric Interpretation and Planar Configuration hold for them (YBR_FULL stays YBR_FULL,
    YBR_FULL_422 keeps its two bytes a pixel, a colour-by-plane frame stays by plane). Until
    2026-12-02 they went through pydicom's ``pixel_array``, which converts YCbCr to RGB and
    interleaves planes: a frame the metadata mis-described (a YBR_FULL_422 frame 1.5x its size).
    Compressed pixel data is decoded as every DICOM decoder does (YCbCr JPEG to RGB: DCMTK and
    Orthanc answer so too), by plane when the stored Planar Configuration says so (RLE colour);
    big-endian data through pydicom, kept by plane when stored by plane.
    """
    import numpy as np

    from ..errors import NotAcceptableError

    require_pixel_data(ds, record.sop_uid)
    if "PixelData" not in ds:  # float pixel data: no uncompressed integer frames to send
        raise NotAcceptableError(f"instance {record.sop_uid}: float pixel data is not sent as frames")
    refuse_too_large(ds)
    count = int(ds.get("NumberOfFrames") or 1)
    bits = int(ds.get("BitsAllocated") or 0)
    syntax = ds.file_meta.get("TransferSyntaxUID")
    native = syntax is not None and not _is_encapsulated(str(syntax))
    if native and ds.original_encoding[1] is not False and bits % 8 == 0 and bits:
        from pydicom.pixels.utils import get_expected_length

        try:
            size = get_expected_length(ds, unit="bytes") // count
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise NotAcceptableError(f"instance {record.sop_uid}: pixel attributes unusable: {exc}") from exc
        raw = ds.PixelData
        if size <= 0 or len(raw) < size * count:
            raise NotAcceptableError(
                f"instance {record.sop_uid}: {len(raw)} bytes of pixel data, {count} frames need {size * count}"
            )
        return [bytes(raw[k * size : (k + 1) * size]) for k in range(count)]
    try:
        if native:
            from pydicom.pixels import pixel_array

            arr = pixel_array(ds, raw=True)  # no colour conversion for data stored uncompressed
        else:
            arr = ds.pixel_array
    except Exception as exc:
        raise NotAcceptableError(f"instance {record.sop_uid}: pixels cannot be decoded: {exc}") from exc
    if count == 1:
        arr = arr[None]
    if bits == 1:  # 8 pixels a byte (PS3.5 §8.1.1), each frame on its own:
        from pydicom.pixels import pack_bits  # 8x the size the metadata says until 2026-12-02 (an audit)

        return [pack_bits(frame.ravel()) for frame in arr]
    if arr.ndim == 4 and int(ds.get("PlanarConfiguration") or 0) == 1:
        # pixel_array interleaves; the metadata says by plane (RLE colour, by plane as GDCM writes it:
        # the frames of a compressed one were interleaved until 2026-12-06, an outside audit; DCMTK's
        # dcmdrle keeps the planes too)
        arr = arr.transpose(0, 3, 1, 2)
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return [np.ascontiguousarray(frame).tobytes() for frame in arr]


def instance_bulk_data(store: Any, record: Any, path: str) -> tuple[bytes, str]:
    """The bulk data at ``path`` (:func:`.header.bulk_path`, as in the instance's metadata) of an
    instance, and its media type: ``application/octet-stream`` (little endian), or for an
    Encapsulated Document the document's own MIME type (PS3.18 §8.7.3.3). Pixel data comes as
    native pixels (decompressed when stored compressed: PS3.18's octet-stream is uncompressed).

    Raises
    ------
    InvalidInputError
        A malformed path.
    NotFoundError
        No binary element at ``path``.
    NotAcceptableError
        Compressed pixel data that cannot be decoded here.
    """
    import pydicom

    from .header import bulk_path, bulk_value

    steps = bulk_path(path)
    pixels = len(steps) == 1 and steps[0][0] == 0x7FE00010
    if steps[0][0] < 0x7FE00000:  # an element before the pixel data: the header is enough
        with store.open_original(record) as fh:
            ds = pydicom.dcmread(fh, force=True, stop_before_pixels=True)
    else:
        stored, _ = instance_bytes(store, record, "*")  # PS3.10, so pydicom knows a preamble-less file's syntax
        ds = pydicom.dcmread(io.BytesIO(stored), force=True)
    if pixels and "PixelData" in ds and (_is_encapsulated(record.transfer_syntax_uid) or not ds.original_encoding[1]):
        return b"".join(_native_frames(ds, record)), "application/octet-stream"
    if steps[0][0] == 0x00880200 and steps[-1][0] == 0x7FE00010 and _is_encapsulated(record.transfer_syntax_uid):
        _native_icon_pixels(ds, record, path)  # an icon's pixel data, encapsulated as the instance's: decoded
    value, _vr = bulk_value(ds, path)
    if steps[0][0] == 0x00420011 and len(steps) == 1:
        mime = document_media_type(ds.get("MIMETypeOfEncapsulatedDocument"))
        if mime is not None:
            return value, mime
    return value, "application/octet-stream"


#: A media type as RFC 6838 §4.2 names them: ``type/subtype``, restricted-name characters only.
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def document_media_type(value: Any) -> str | None:
    r"""The media type an Encapsulated Document declares (0042,0012), lower case, without
    parameters, or ``None`` when it is not one (RFC 6838 §4.2): then the bytes go as
    ``application/octet-stream``. A line break in it crashed the answer (an outside audit,
    2026-12-05); what a browser would run (HTML, SVG) is sent as declared, under the service's
    ``sandbox`` policy (:mod:`medcodec.service.security`).

    >>> document_media_type("application/pdf"), document_media_type("text/plain; charset=utf-8")
    ('application/pdf', 'text/plain')
    >>> document_media_type("text/plain\r\nX-Injected: yes"), document_media_type("pdf"), document_media_type(None)
    (None, None, None)
    """
    text = str(value or "").split(";", 1)[0].strip().lower()
    return text if _MEDIA_TYPE.fullmatch(text) else None


def _native_icon_pixels(ds: Any, record: Any, path: str) -> None:
    """Decode ``ds``'s Icon Image Sequence pixel data in place (:func:`..dicom.write.native_icons`),
    as the octet-stream of a bulk data request must be; an icon pydicom cannot decode is a 406,
    not the encapsulated bytes (which were sent as 'octet-stream' until 2026-12-02).

    Raises
    ------
    NotAcceptableError
        The icon's pixel data do not decode here.
    """
    from ..dicom.write import native_icons
    from ..errors import NotAcceptableError

    before = len(ds.get("IconImageSequence") or ())
    native_icons(ds, record.transfer_syntax_uid)
    if len(ds.get("IconImageSequence") or ()) != before:
        raise NotAcceptableError(f"bulk data {path}: the icon's compressed pixel data cannot be decoded here")


def _is_encapsulated(ts: str) -> bool:
    from pydicom.uid import UID

    return UID(ts).is_encapsulated


# --------------------------------------------------------------------------- the live archive


def archive_name(record: Any) -> str:
    """Path of an instance inside an archive."""
    try:
        from .precompute import archive_entry_name  # the pre-computed archives' naming, so both agree
    except ImportError:
        return f"{record.series_uid}/{record.sop_uid}.dcm"
    return archive_entry_name(record)


def live_archive(
    store: Any,
    records: list[Any],
    preset: str,
    pool: LivePool,
    *,
    series_only: bool = False,
    use_renditions: bool = False,
) -> AsyncIterator[bytes]:
    """The chunks of a ZIP of ``records`` under ``preset``, made now (see the module docstring).

    Instances are encoded with one series mapping per series, computed once from the catalog;
    with ``use_renditions`` an instance whose rendition is stored is read instead (the study's
    archive is missing or stale, but most of its files are computed). ``manifest.json`` is the
    last entry.
    """
    mappings: dict[str, Any] = {}
    lock = threading.Lock()
    lossy: list[set[str]] = []  # the originals whose pixels are lossy, asked once (original preset)

    def is_lossy(record: Any) -> bool:
        with lock:
            if not lossy:
                lossy.append(store.catalog.lossy_instances([r.sop_uid for r in records]))
            return record.sop_uid in lossy[0]

    def mapping_for(record: Any) -> Any:
        if preset == "original" or not record.compressible:
            return None
        with lock:
            if record.series_uid not in mappings:
                mappings[record.series_uid] = store.series_mapping(record.series_uid, preset)
            return mappings[record.series_uid]

    def produce(record: Any) -> LiveEntry:
        if preset == "original":
            with store.open_original(record) as fh:
                data = fh.read()
            return LiveEntry(
                archive_name(record), data, manifest=None, extra={"record": record, "lossy": is_lossy(record)}
            )
        if use_renditions:  # an archive gone stale (a new instance arrived): reuse what is computed
            rendition = store.rendition(record, preset)
            # ... under the series mapping of now: a new instance that widened the range changed
            # it (until 2026-12-02 such an archive mixed two mappings in one series: an audit)
            if (
                rendition is not None
                and rendition_fresh(rendition.entry, mapping_for(record), record, preset)
                and (data := read_rendition(store, rendition, record, preset)) is not None
            ):
                return LiveEntry(
                    archive_name(record),
                    data,
                    manifest=rendition,
                    extra={"record": record, "ts": rendition.transfer_syntax_uid},
                )
        data, ts, entry = encode_with_preset(store, record, preset, mapping=mapping_for(record), pool=pool)
        return LiveEntry(archive_name(record), data, manifest=entry, extra={"record": record, "ts": ts})

    async def in_process(batch: list[Any]) -> list[LiveEntry]:
        tasks = []
        for record in batch:
            if record.series_uid not in mappings:  # a catalog query, once per series: on a thread
                await asyncio.wrap_future(pool.submit_thread(mapping_for, record))
            tasks.append((record.path, mappings[record.series_uid], record.size))
        results = await pool.in_process(_encode_batch_in_process, tasks, preset)
        entries = []
        for record, result in zip(batch, results):
            if isinstance(result, WorkerFailure):
                _raise_worker_error(record, result)
            packed, entry = result
            entries.append(
                LiveEntry(
                    archive_name(record),
                    b"",
                    manifest=entry,
                    extra={"record": record, "ts": entry.transfer_syntax_uid},
                    packed=packed,
                )
            )
        return entries

    def encoded_in_process(record: Any) -> bool:
        return preset != "original" and not use_renditions and _in_process(pool, store, record)

    def submit(batch: list[Any]) -> asyncio.Future[Any]:
        if encoded_in_process(batch[0]):  # a batch holds only such records (_batches)
            return asyncio.ensure_future(in_process(batch))
        return pool.submit(produce, batch[0])

    study_uid = records[0].study_uid if records else ""
    series = {r.series_uid for r in records}
    series_uid = next(iter(series)) if len(series) == 1 and series_only else None

    def finish(entries: list[LiveEntry]) -> list[tuple[str, bytes]]:
        return [("manifest.json", manifest_bytes(entries, preset, study_uid, series_uid))]

    def sent(entry: LiveEntry) -> None:
        entry.extra["row"] = manifest_row(entry, preset)

    return stream_zip(pool, produce, _batches(records, encoded_in_process), finish=finish, submit=submit, sent=sent)


#: Small instances go to the encoder processes in batches (consecutive, at most BATCH_FILES files
#: and BATCH_BYTES of originals): one task, one result and one wake-up of the event loop per batch.
#: Per task the process pool and the event loop cost the server about 0.3-0.5 ms, next to ~2 ms of
#: encoding a 256x256 MR slice; a 512x512 CT slice (0.5 MB) stays one task. A run of small
#: instances starts with batches of 1, 2, 4 (the first bytes leave after one instance, not after a
#: full batch) and ends with batches of at most a quarter of what is left (the encoder processes
#: finish together instead of one waiting on the other's last full batch): :func:`_batches`.
BATCH_FILES = 8
BATCH_BYTES = 1 << 20


def _batches(records: list[Any], batchable: Callable[[Any], bool]) -> list[list[Any]]:
    """``records`` in order, as lists: consecutive small ``batchable`` ones grouped (sizes as
    :data:`BATCH_FILES` says), others alone."""
    out: list[list[Any]] = []
    run: list[Any] = []  # consecutive small ones, not yet cut
    for record in records:
        if int(getattr(record, "size", 0) or 0) * 2 <= BATCH_BYTES and batchable(record):
            run.append(record)
            continue
        out.extend(_cut(run))
        run = []
        out.append([record])
    out.extend(_cut(run))
    return out


def _cut(run: list[Any]) -> list[list[Any]]:
    """A run of small instances as batches: 1, 2, 4, then BATCH_FILES, at most a quarter of what
    is left, and at most BATCH_BYTES of originals each."""
    out: list[list[Any]] = []
    i = 0
    while i < len(run):
        size = min(BATCH_FILES, 1 << len(out), max(1, (len(run) - i) // 4))
        batch, held = [run[i]], int(getattr(run[i], "size", 0) or 0)
        while len(batch) < size and i + len(batch) < len(run):
            nxt = int(getattr(run[i + len(batch)], "size", 0) or 0)
            if held + nxt > BATCH_BYTES:
                break
            batch.append(run[i + len(batch)])
            held += nxt
        out.append(batch)
        i += len(batch)
    return out


def manifest_row(entry: LiveEntry, preset: str) -> Any:
    """The ``manifest.json`` line of a live archive's file (:func:`.manifest.render_row`)."""
    from .manifest import ManifestEntry, render_row

    row = entry.manifest
    if row is None:  # an original sent as it is
        row = ManifestEntry.original(entry.extra["record"], preset, lossy=bool(entry.extra.get("lossy")))
    elif not isinstance(row, ManifestEntry):  # a stored rendition's row
        row = ManifestEntry.from_json(row.entry)
    return render_row(row.named(entry.name))


def manifest_bytes(entries: list[LiveEntry], preset: str, study_uid: str, series_uid: str | None) -> bytes:
    """``manifest.json`` of a live archive, in the format of :func:`.manifest.build_manifest`
    (rows rendered already, in ``extra["row"]``, or now)."""
    from .manifest import build_manifest
    from .presets import PRESETS

    p = PRESETS.get(preset)
    return build_manifest(
        [e.extra.get("row") or manifest_row(e, preset) for e in entries],
        preset=preset,
        study_uid=study_uid,
        series_uid=series_uid,
        diagnostic=bool(getattr(p, "diagnostic", True)),
        label=str(getattr(p, "label", "")),
    )
