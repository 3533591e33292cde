"""On-the-fly archives: read → encode → zip → send, overlapped, in bounded memory.

Seed 000 measured a "physical floor" of 13-18 s because fetching, compressing, zipping and
sending ran one after the other. Here they are stages of one pipeline::

    store.instances() ─▶ worker threads (read original, encode_instance, CRC-32) ─▶ ZipStream ─▶ client
                         at most ``window`` instances in flight, results in order     event loop

* **Overlap.** The workers read and encode instance *k+1..k+window* while instance *k* is
  being sent; the numba kernels release the GIL, so encoding runs on every core while the
  event loop frames and sends. The time is that of the slowest stage, not the sum.
* **Bounded memory.** At most ``window`` instances (original + encoded) are alive per stream,
  whatever the study size; the socket applies back-pressure (``send`` waits while the
  client is slow), so nothing piles up. The ZIP central directory is ~100 bytes per file.
* **Bounded concurrency.** One :class:`LivePool` per server: a fixed thread pool shared by
  all streams and a limit on streams encoding at once (more wait their turn).
* **Cancellation.** When the client goes away, the stream's generator is closed: queued
  work is cancelled, running work (one instance per thread) finishes and is dropped, and no
  thread, temporary file or buffer outlives the request (nothing is written to disk).

The same :meth:`Preset.encode_instance <medcodec.delivery.presets.Preset.encode_instance>`
makes pre-computed renditions, so a live archive holds what a pre-computed one would.
"""

from __future__ import annotations

import asyncio
import collections
import io
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .zipstream import Packed, ZipStream, dicom_header_length, pack

__all__ = ["LivePool", "amap_ordered", "LiveEntry", "stream_zip"]

_T = TypeVar("_T")


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
    """

    def __init__(self, workers: int | None = None, *, max_streams: int = 4, window: int = 8):
        self.workers = workers or os.cpu_count() or 1
        self.window = max(1, window)
        self.max_streams = max(1, max_streams)
        self.executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="medcodec-live")
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

    def close(self) -> None:
        """Stop the threads (queued work is cancelled)."""
        self.executor.shutdown(wait=True, cancel_futures=True)


async def amap_ordered(pool: LivePool, fn: Callable[[Any], _T], items: Iterable[Any]) -> AsyncGenerator[_T, None]:
    """``map(fn, items)`` on the pool's threads, in order, at most ``pool.window`` ahead.

    Closing the generator early (client gone) cancels what is queued; the finally block has no
    ``await``, so it runs to the end even inside a cancelled task.
    """
    pending: collections.deque[asyncio.Future[_T]] = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= pool.window:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for fut in pending:
            fut.cancel()


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
            self.packed = pack(self.data, deflate=dicom_header_length(self.data))


async def stream_zip(
    pool: LivePool,
    produce: Callable[[Any], LiveEntry],
    items: Iterable[Any],
    *,
    finish: Callable[[list[LiveEntry]], list[tuple[str, bytes]]] | None = None,
    zip64_limit: int | None = None,
) -> AsyncIterator[bytes]:
    """A ZIP file's chunks, its entries produced by ``produce(item)`` on the pool's threads.

    Parameters
    ----------
    pool
        Threads and stream limit (waits for a free slot first).
    produce
        ``item -> LiveEntry``: reads and encodes one instance (runs in a worker thread).
    items
        What to produce, in archive order.
    finish
        ``entries -> [(name, bytes)]`` appended last (the ``manifest.json``); the entries
        passed keep their ``manifest`` and ``extra`` but not their data.
    zip64_limit
        For tests: lower the ZIP64 threshold.
    """
    async with pool.slots:
        pool.active += 1
        complete = False
        try:
            z = ZipStream(**({} if zip64_limit is None else {"zip64_limit": zip64_limit}))
            done: list[LiveEntry] = []
            gen = amap_ordered(pool, produce, items)
            try:
                async for entry in gen:
                    assert entry.packed is not None
                    # one chunk per file (header + data): one send, one wake-up of the event loop
                    yield b"".join(z.add(entry.name, entry.packed))
                    entry.data, entry.packed = b"", None  # sent: keep only the manifest row
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


# --------------------------------------------------------------------------- instances under a syntax / preset
# (no HTTP: the service's WADO-RS and archive routes call these from worker threads)

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"


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
) -> tuple[bytes, str, Any]:
    """One instance under a preset, computed now: ``(file bytes, transfer syntax, manifest entry)``.

    ``measure=False`` (live): no decode-back to fill PSNR / max error (``measured: false`` in the
    manifest). The pre-computed rendition is NOT looked up here (see :func:`rendition_or_encode`).
    """
    from .presets import PRESETS

    preset = PRESETS[preset_name]
    if data is None:
        with store.open_original(record) as fh:
            data = fh.read()
    if mapping is None and record.compressible and preset.lossy:
        mapping = store.series_mapping(record.series_uid, preset_name)
    encoded = preset.encode_instance(data, mapping=mapping, measure=measure)
    return encoded.data, encoded.entry.transfer_syntax_uid, encoded.entry


def rendition_or_encode(
    store: Any, record: Any, preset_name: str, *, mapping: Any = None, live: bool = False
) -> tuple[bytes, str, Any]:
    """The instance under ``preset_name``: its pre-computed rendition when stored (and not ``live``),
    else encoded now."""
    if not live:
        rendition = store.rendition(record, preset_name)
        if rendition is not None:
            with store.open_rendition(rendition) as fh:
                data = fh.read()
            return data, rendition.transfer_syntax_uid, rendition
    return encode_with_preset(store, record, preset_name, mapping=mapping)


def instance_bytes(
    store: Any, record: Any, ts: str, preset: str | None = None, strict: bool = True
) -> tuple[bytes, str]:
    """One instance as a DICOM file under transfer syntax ``ts`` (``*`` = as stored).

    Returns ``(bytes, syntax actually used)``. With ``strict`` an instance that cannot take
    ``ts`` raises :class:`~medcodec.errors.NotAcceptableError`; otherwise it comes as stored.
    """
    from ..errors import NotAcceptableError

    if ts in ("*", record.transfer_syntax_uid):
        with store.open_original(record) as fh:
            return fh.read(), record.transfer_syntax_uid
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
    if not names:
        raise NotAcceptableError(
            f"transfer syntax {ts} is not one medcodec produces" + (f" with preset {preset!r}" if preset else "")
        )
    data, got, _ = rendition_or_encode(store, record, names[0])
    if got != ts and strict:
        raise NotAcceptableError(
            f"instance {record.sop_uid} ({record.modality or 'no modality'}, {record.photometric or 'no pixels'}) "
            f"cannot be encoded as {ts} by preset {names[0]!r}: {record.passthrough_reason or 'passed through'}"
        )
    return data, got


def _to_explicit_le(data: bytes) -> bytes:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    if ds.file_meta.get("TransferSyntaxUID") is not None and ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()  # PS3.18: the default syntax is uncompressed Explicit VR LE
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def instance_frames(
    store: Any, record: Any, numbers: list[int], ts: str, preset: str | None = None
) -> tuple[list[bytes], str]:
    """Frames (1-based ``numbers``) of an instance: raw little-endian pixels for Explicit VR LE,
    else the encapsulated fragments of the instance under ``ts`` (``*`` = as stored)."""
    import pydicom
    from pydicom.encaps import generate_frames

    from ..errors import NotAcceptableError

    if ts == EXPLICIT_VR_LE or (ts == "*" and not _is_encapsulated(record.transfer_syntax_uid)):
        with store.open_original(record) as fh:
            ds = pydicom.dcmread(fh, force=True)
        try:
            arr = ds.pixel_array
        except Exception as exc:
            raise NotAcceptableError(f"instance {record.sop_uid}: pixels cannot be decoded: {exc}") from exc
        n = int(ds.get("NumberOfFrames") or 1)
        if n == 1:
            arr = arr[None]
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        return [arr[k - 1].tobytes() for k in numbers], EXPLICIT_VR_LE
    data, got = instance_bytes(store, record, ts, preset, strict=True)
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    n = int(ds.get("NumberOfFrames") or 1)
    frames = list(generate_frames(ds.PixelData, number_of_frames=n))
    return [frames[k - 1] for k in numbers], got


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
            return LiveEntry(archive_name(record), data, manifest=None, extra={"record": record})
        if use_renditions:  # an archive gone stale (a new instance arrived): reuse what is computed
            rendition = store.rendition(record, preset)
            if rendition is not None:
                with store.open_rendition(rendition) as fh:
                    data = fh.read()
                return LiveEntry(
                    archive_name(record),
                    data,
                    manifest=rendition,
                    extra={"record": record, "ts": rendition.transfer_syntax_uid},
                )
        data, ts, entry = encode_with_preset(store, record, preset, mapping=mapping_for(record))
        return LiveEntry(archive_name(record), data, manifest=entry, extra={"record": record, "ts": ts})

    study_uid = records[0].study_uid if records else ""
    series = {r.series_uid for r in records}
    series_uid = next(iter(series)) if len(series) == 1 and series_only else None

    def finish(entries: list[LiveEntry]) -> list[tuple[str, bytes]]:
        return [("manifest.json", manifest_bytes(entries, preset, study_uid, series_uid))]

    return stream_zip(pool, produce, records, finish=finish)


def manifest_bytes(entries: list[LiveEntry], preset: str, study_uid: str, series_uid: str | None) -> bytes:
    """``manifest.json`` of a live archive, in the format of :func:`.manifest.build_manifest`."""
    from .manifest import ManifestEntry, build_manifest
    from .presets import PRESETS

    rows = []
    for e in entries:
        row = e.manifest
        if row is None:  # an original sent as it is
            record = e.extra["record"]
            row = ManifestEntry(
                preset=preset,
                sop_instance_uid=record.sop_uid,
                series_instance_uid=record.series_uid,
                rendition_sop_instance_uid=record.sop_uid,
                sop_class_uid=record.sop_class_uid,
                modality=record.modality,
                transfer_syntax_uid=record.transfer_syntax_uid,
                passthrough=True,
                lossy=False,
                bytes=record.size,
                source_bytes=record.size,
                reason="original",
            )
        elif not isinstance(row, ManifestEntry):  # a stored rendition's row
            row = ManifestEntry.from_json(row.entry)
        rows.append(row.named(e.name))
    p = PRESETS.get(preset)
    return build_manifest(
        rows,
        preset=preset,
        study_uid=study_uid,
        series_uid=series_uid,
        diagnostic=bool(getattr(p, "diagnostic", True)),
        label=str(getattr(p, "label", "")),
    )
