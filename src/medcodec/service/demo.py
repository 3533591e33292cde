"""Delivery end to end, the second part of ``medcodec demo``: ingest real images, serve them,
download raw and compressed.

``medcodec demo`` runs it after the codec part; on its own:
``python -m medcodec.service.demo [--store DIR] [--mbit 100] [--input FILE_OR_FOLDER ...]``:

1. ingests real images of the ``pydicom-data`` package (NEMA WG04 CT, MR, CR, US, NM and a
   10-frame enhanced MR; or the ``--input`` files and folders) into a store, pre-computing the
   ``diagnostic`` and ``preview`` presets;
2. starts ``medcodec serve`` on 127.0.0.1 (a subprocess, a free port);
3. downloads the largest study as the original files (``preset=original``), as the pre-computed
   ``diagnostic`` archive and as ``diagnostic`` compressed on the fly (``live=1``), through a
   loopback proxy shaped to ``--mbit`` Mbit/s (a hospital link), and prints sizes and times;
4. tells how to serve the store again and open the viewer at ``/viewer/``.

:class:`ShapingProxy` (the shaped link) is shared with ``benchmarks/bench_delivery.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from ..errors import DeliveryError
from .settings import DEFAULT_PORT

__all__ = ["ShapingProxy", "free_port", "main"]

#: pydicom-data files of the demo (uncompressed originals; variants sharing a SOP Instance UID left out).
SAMPLES = (
    "693_UNCR.dcm",
    "MR2_UNCR.dcm",
    "RG1_UNCR.dcm",
    "RG3_UNCR.dcm",
    "US1_UNCR.dcm",
    "JPEG2000_UNC.dcm",
    "MR-SIEMENS-DICOM-WithOverlays.dcm",
    "emri_small.dcm",
)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ShapingProxy:
    """A loopback TCP proxy whose server-to-client direction is limited to ``rate`` bytes/s.

    A token bucket on 64 kB slices in one asyncio thread; client-to-server is not shaped.
    Set :attr:`rate` (0 = unshaped) at any time; :meth:`close` stops it.

    Each slice is due ``len / rate`` after the previous one's due time, not after "now": a sleep
    that wakes late (asyncio timers overshoot by ~0.1-1 ms) is caught up on the next slice, so a
    busy link runs at ``rate`` on average. (Scheduling from "now" lost the overshoot on every
    slice: 74.7 MB took 7.3 s, 82 % of 100 Mbit/s, where a real link, like the shaped link of
    the issue's Orthanc figures, carries 73 MB in ~6.0 s.) An idle link banks at most one
    slice (:attr:`BURST` bytes, 5 ms at 100 Mbit/s), as a NIC queue would.
    """

    BURST = 65536

    def __init__(self, target_port: int, rate: float = 0.0):
        self.target_port = target_port
        self.port = free_port()
        self.rate = rate
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="shaping-proxy")
        self._thread.start()
        if not self._ready.wait(10):
            raise DeliveryError("the shaping proxy did not start within 10 s")

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:  # close the listener and every open connection, then the loop itself
            server.close()
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(server.wait_closed())
            self.loop.run_until_complete(asyncio.sleep(0.01))  # closed transports release their sockets
            self.loop.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, shaped: bool) -> None:
        due = time.monotonic()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if shaped and self.rate > 0:
                    due = max(due, time.monotonic() - self.BURST / self.rate) + len(data) / self.rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(self._pipe(reader, up_writer, False), self._pipe(up_reader, writer, True))
        except (OSError, asyncio.CancelledError):
            pass
        finally:  # also when cancelled before a pipe ever ran (proxy closing)
            for w in (writer, up_writer):
                if w is not None:
                    w.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def _samples() -> list[Path]:
    try:
        import data_store  # the pydicom-data package
    except ImportError:
        raise SystemExit("the demo needs pydicom-data: pip install pydicom-data (or give --input FILE)") from None
    folder = Path(data_store.__file__).parent / "data"
    return [folder / name for name in SAMPLES if (folder / name).exists()]


def input_files(given: list[str] | list[Path]) -> tuple[list[Path], str]:
    """The DICOM files of the demos' ``--input`` (folders walked as ``medcodec ingest`` walks them)
    and a note on what is left out: DICOM files inside ZIP archives (the download times are set
    against the files' sizes), ``""`` when nothing is. Raises :class:`~medcodec.errors.DicomError`
    for an input that does not exist or an unreadable ZIP."""
    from ..dicom.sources import iter_sources

    found = list(iter_sources(given))
    files = [p for p in found if isinstance(p, Path)]
    zipped = len(found) - len(files)
    note = (f"{zipped} DICOM file(s) inside ZIP archives are left out: the demo reads files and folders; "
            "unzip them first (`medcodec ingest` reads ZIP archives as they are)") if zipped else ""  # fmt: skip
    return files, note


def _inputs(given: list[str]) -> list[Path]:
    """:func:`input_files`, its errors and note said on stderr."""
    from ..errors import DicomError

    try:
        files, note = input_files(given)
    except DicomError as exc:  # an input that does not exist, an unreadable ZIP
        raise SystemExit(str(exc)) from None
    if not files:
        raise SystemExit(f"no files to ingest in {', '.join(given)}{note and f' ({note})'}")
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)
    return files


def _download(url: str) -> tuple[float, bytes]:
    import httpx

    with httpx.Client(timeout=300) as client:  # made before the clock starts (its SSL context costs ~0.1 s)
        t0 = time.perf_counter()
        r = client.get(url)
    if r.status_code != 200:
        raise SystemExit(f"GET {url}: HTTP {r.status_code}: {r.text[:200]}")
    return time.perf_counter() - t0, r.content


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(description="medcodec delivery demo (ingest, serve, download)")
    parser.add_argument("--store", help="store folder (default: a new temporary folder, kept)")
    parser.add_argument("--mbit", type=float, default=100.0, help="link speed for the downloads (default 100)")
    parser.add_argument("--input", action="append", default=[], help="DICOM files or folders instead of the "
                        "pydicom-data samples (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.mbit > 0:
        parser.error(f"--mbit {args.mbit}: a link speed is > 0")
    import httpx

    from ..delivery import open_store

    files = _inputs(args.input) if args.input else _samples()
    store_path = Path(args.store).absolute() if args.store else Path(tempfile.mkdtemp(prefix="medcodec-demo-store-"))
    origin = "given file(s)" if args.input else "real images of pydicom-data"
    print(
        f"1. ingest {len(files)} {origin} into {store_path} "
        "(originals kept byte for byte; diagnostic and preview pre-computed)",
        flush=True,
    )
    t0 = time.perf_counter()
    with open_store(store_path) as store:
        report = store.ingest(files)
    print(f"   {report.summary()} in {time.perf_counter() - t0:.1f} s", flush=True)
    studies: dict[str, list[Path]] = {}  # what the store holds of the inputs (a --store used before: duplicates)
    held = {o.sop_uid: o for o in report.stored + report.duplicates}  # one file per instance, as the store has
    for outcome in held.values():
        studies.setdefault(outcome.study_uid, []).append(Path(outcome.source))
    if not studies:
        raise SystemExit("nothing was stored, so there is nothing to serve")
    files = [p for group in studies.values() for p in group]
    raw = sum(p.stat().st_size for p in files)

    port = free_port()
    # the server's log in the temporary folder (the store's parent may not be writable: a re-audit),
    # kept only when the server fails to start
    fd, log_name = tempfile.mkstemp(prefix="medcodec-demo-server-", suffix=".log")
    log = Path(log_name)
    with os.fdopen(fd, "wb") as fh:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "medcodec.cli.main",
                "serve",
                "--store",
                str(store_path),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    proxy = None
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"medcodec serve did not start; see {log}")
            time.sleep(0.2)
        print(f"2. medcodec serve --store {store_path} --port {port}: http://127.0.0.1:{port}/ (loopback only)",
              flush=True)  # fmt: skip
        proxy = ShapingProxy(port, rate=args.mbit * 1e6 / 8)
        first = next(iter(studies))
        _download(f"http://127.0.0.1:{port}/studies/{first}/archive.zip?preset=preview&live=1")  # warm-up, not timed
        print(
            f"3. download the {len(studies)} {'study' if len(studies) == 1 else 'studies'} ({len(files)} "
            f"file(s), {raw / 1e6:.1f} MB) one ZIP each, "
            f"over a {args.mbit:g} Mbit/s link:"
        )
        rows = []
        for label, query in (
            ("original (raw files)", "preset=original"),
            ("diagnostic, pre-computed", "preset=diagnostic"),
            ("diagnostic, compressed live", "preset=diagnostic&live=1"),
        ):
            seconds, size, passthrough = 0.0, 0, 0
            for study in studies:
                dt, body = _download(f"http://127.0.0.1:{proxy.port}/studies/{study}/archive.zip?{query}")
                with zipfile.ZipFile(io.BytesIO(body)) as zf:
                    bad = zf.testzip()
                    manifest = json.loads(zf.read("manifest.json"))
                assert bad is None, bad
                seconds, size = seconds + dt, size + len(body)
                passthrough += sum(1 for f in manifest["files"] if f["passthrough"])
            rows.append((label, seconds, size, passthrough))
        t_raw = rows[0][1]
        for label, seconds, size, passthrough in rows:
            note = f", {passthrough} file(s) passed through as stored" if passthrough and "diagnostic" in label else ""
            print(
                f"   {label:30s} {seconds:6.2f} s  {size / 1e6:7.2f} MB  {t_raw / seconds:5.1f}x faster than raw{note}"
            )
        base = f"http://127.0.0.1:{DEFAULT_PORT}"
        print(f"4. look at it: medcodec serve --store {store_path}   then open {base}/viewer/ in a browser")
        print(
            f"   DICOMweb: {base}/dicomweb/studies ; archives: "
            f"{base}/studies/{{study}}/archive.zip?preset=diagnostic ; "
            f"download with resume: medcodec fetch {base} --study UID --preset diagnostic -o DIR"
        )
    finally:
        if proxy is not None:
            proxy.close()
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
    log.unlink(missing_ok=True)  # started and stopped: nothing to look at
    return 0


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    from ..errors import CodecError

    try:
        sys.exit(main())
    except CodecError as exc:  # a store that cannot be made, an input that cannot be read: one line
        sys.exit(f"error: {exc}")
