#!/usr/bin/env python3
"""Delivery benchmark: how long a study takes to reach a client, raw vs pre-computed vs live, vs Orthanc.

Usage (from the repository root)::

    python benchmarks/bench_delivery.py                        # ../shared/data head CT + a ~300 MB study
    python benchmarks/bench_delivery.py --no-big --no-gb       # only the 73 MB head CT
    python benchmarks/bench_delivery.py --markdown docs/benchmarks.md

What it does, all on loopback, bounded in count and time:

1. Studies: the 140-slice head CT of the shared data (73 MB), and a ~300 MB study made of the
   same slices repeated with new Study/Series/SOP Instance UIDs (written to a temp folder,
   never into the repository). Both ingested into a temp store with the ``diagnostic`` preset
   pre-computed. Unless ``--no-more``: also the 64-slice chest CT (implicit VR) and the 100-slice
   256x256 MR of the shared data, where the fixed work per instance weighs more.
2. ``medcodec serve`` in a subprocess; its peak memory (PSS of the server and its encoder
   processes, summed) sampled from ``/proc`` every 100 ms.
3. A TCP proxy (:class:`medcodec.service.demo.ShapingProxy`, asyncio, one thread) shapes the
   server-to-client direction to 100 Mbit/s and 1 Gbit/s (token bucket, 64 kB slices); the client talks to the proxy.
4. Per study and link: ``archive.zip?preset=original&live=1`` (the raw files in a ZIP, headers
   deflated: the "raw download"; the default ``preset=original`` archive is assembled from the
   stored files with the headers stored, 0.3-4.7 % larger on these series, which would flatter
   every ratio to raw), the pre-computed ``diagnostic`` archive, ``diagnostic&live=1`` (compressed on
   the fly), and Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``, started here with a temp
   config, the same files uploaded) sending the study over WADO-RS as 12-bit JPEG (.51),
   transcoded on the fly. Time to last byte, and to decoded pixels (the client then decodes every
   frame with pydicom: download and decode are not overlapped at the client).
5. Unshaped: live ``diagnostic`` server throughput (MB of raw files per second) and the
   server's peak memory while streaming a ~1 GB study (``--gb``, made like the 300 MB one).

Printed: absolute figures and ratios to the raw download and to Orthanc, and the issue's
targets marked met / NOT met. The proxy and the client share the 2 cores with the server, so
figures are lower bounds of what the server alone would do; run twice and compare.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pydicom
from _markdown import put_section  # this folder (benchmarks/) is on sys.path when run as a script

from medcodec.service.demo import ShapingProxy, free_port  # the shaped loopback link, shared with `make demo`
from medcodec.testing.server import stop_server

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
HEAD = "ct_head_phantom_philips_ingenuity"
#: smaller and differently coded series of the shared data (``--more``): where per-instance work weighs more
MORE = {"chest CT 34 MB, implicit VR": "ct_chest_lungpetctdx_A0001_philips",
        "head MR 14 MB, 256x256": "mr_head_ge_signa_t1_ctk"}  # fmt: skip
JPEG_12 = "1.2.840.10008.1.2.4.51"
LINKS = {"100 Mbit/s": 100e6 / 8, "1 Gbit/s": 1e9 / 8}


# --------------------------------------------------------------------------- helpers


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout} s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        stop_server(proc)  # Ctrl-C, killed after 15 s (Orthanc too)


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the server's encoder processes), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its live descendants (/proc/PID/stat), all threads."""
    total = 0.0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class RssSampler:
    """Peak memory of a process and its descendants (the server and its encoder processes): the sum of
    their proportional set sizes (``Pss`` of /proc/PID/smaps_rollup: shared pages counted once in
    all, not once per process as RSS would), sampled every 100 ms (not while throughput is timed)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        # set while throughput is measured: each sample reads every /proc/*/stat and the processes'
        # smaps_rollup, CPU and GIL time (in this, the client's process) that the server would not get
        self.paused = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        total = 0
        for p in tree(self.pid):
            try:
                with open(f"/proc/{p}/smaps_rollup") as fh:
                    for line in fh:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1]) * 1024
                            break
            except OSError:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.paused.is_set():
                self.peak = max(self.peak, self._rss())
            time.sleep(0.1)

    def reset(self) -> int:
        self.peak = self._rss()
        return self.peak

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def make_study(files: list[Path], out: Path, copies: int) -> list[Path]:
    """``copies`` repetitions of ``files`` as ONE new study (new UIDs, one series per copy)."""
    from pydicom.uid import generate_uid

    out.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    written = []
    for c in range(copies):
        series = generate_uid()
        for k, path in enumerate(files):
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesNumber = 1000 + c
            target = out / f"{c:03d}_{k:04d}.dcm"
            ds.save_as(target, enforce_file_format=True)
            written.append(target)
    return written


def decode_zip(data: bytes) -> int:
    """Decode every DICOM file of a ZIP with pydicom; returns the number of frames."""
    n = 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if name.endswith(".dcm"):
                arr = pydicom.dcmread(io.BytesIO(zf.read(name))).pixel_array
                n += 1 if arr.ndim == 2 else arr.shape[0]
    return n


def decode_multipart(data: bytes, content_type: str) -> int:
    boundary = content_type.split("boundary=")[1].split(";")[0].strip().strip('"').encode()
    n = 0
    for part in data.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        _, _, body = part.partition(b"\r\n\r\n")
        arr = pydicom.dcmread(io.BytesIO(body[:-2] if body.endswith(b"\r\n") else body)).pixel_array
        n += 1 if arr.ndim == 2 else arr.shape[0]
    return n


@dataclass
class Result:
    study: str
    link: str
    case: str
    seconds: float
    nbytes: int
    decoded_seconds: float
    frames: int
    extra: dict = field(default_factory=dict)


def timed_get(url: str, headers: dict[str, str] | None = None) -> tuple[float, bytes, httpx.Headers]:
    with httpx.Client(timeout=600) as client:  # made before the clock starts (its SSL context costs ~0.1 s)
        t0 = time.perf_counter()
        with client.stream("GET", url, headers=headers or {}) as r:
            if r.status_code != 200:
                r.read()
                raise RuntimeError(f"GET {url}: HTTP {r.status_code}: {r.text[:300]}")
            chunks = [c for c in r.iter_bytes(1 << 20)]
            dt = time.perf_counter() - t0
        return dt, b"".join(chunks), r.headers


# --------------------------------------------------------------------------- Orthanc


class Orthanc:
    def __init__(self, workdir: Path):
        binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        plugin = next((p for p in ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
                                   "/usr/lib/orthanc/libOrthancDicomWeb.so.1.7") if os.path.exists(p)), None)  # fmt: skip
        if not os.path.exists(binary) or plugin is None:
            raise RuntimeError("Orthanc or its DICOMweb plugin is not installed (Debian orthanc, orthanc-dicomweb)")
        self.port = free_port()
        (workdir / "db").mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "medcodec-bench", "StorageDirectory": str(workdir / "db"), "IndexDirectory": str(workdir / "db"),
            "HttpPort": self.port, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "HttpCompressionEnabled": False, "Plugins": [plugin],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "ConcurrentJobs": 2,
        }  # fmt: skip
        (workdir / "orthanc.json").write_text(json.dumps(config))
        self.log = open(workdir / "orthanc.log", "wb")
        self.proc = subprocess.Popen([binary, str(workdir / "orthanc.json")], stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{self.port}/system", self.proc, "Orthanc")
        r = httpx.get(f"http://127.0.0.1:{self.port}/system").json()
        self.version = r.get("Version", "?")
        self.plugin_version = httpx.get(f"http://127.0.0.1:{self.port}/plugins/dicom-web").json().get("Version", "?")

    def upload(self, files: list[Path]) -> None:
        with httpx.Client(timeout=120) as client:
            for path in files:
                r = client.post(f"http://127.0.0.1:{self.port}/instances", content=path.read_bytes())
                if r.status_code != 200:
                    raise RuntimeError(f"Orthanc upload of {path}: HTTP {r.status_code}")

    def close(self) -> None:
        stop(self.proc)
        self.log.close()


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict:
    data = Path(args.data)
    head_files = sorted((data / HEAD).glob("*.dcm"))
    if len(head_files) < 10:
        raise SystemExit(f"{data / HEAD}: the head CT series is missing")
    tmp = Path(tempfile.mkdtemp(prefix="medcodec-bench-delivery-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: list[Result] = []
    from medcodec.evaluate.timing import cpu_model

    info: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "machine": f"{cpu_model()} ({os.cpu_count()} logical CPUs), {platform.platform()}"}  # fmt: skip
    try:
        from medcodec.delivery import open_store

        studies: dict[str, list[Path]] = {"head CT 73 MB": head_files}
        if args.big and not args.live_only:
            studies["repeated 300 MB"] = make_study(head_files, tmp / "big", 4)
        if args.more:
            for label, folder in MORE.items():
                if files := sorted((data / folder).glob("*.dcm")):
                    studies[label] = files
        store_path = tmp / "store"
        uids: dict[str, str] = {}
        t0 = time.perf_counter()
        with open_store(store_path) as store:
            for name, files in studies.items():
                report = store.ingest(files, presets=["diagnostic"], precompress=not args.live_only)
                if not report.ok:
                    raise RuntimeError(report.summary())
                uids[name] = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        info["ingest_seconds"] = time.perf_counter() - t0
        raw_bytes = {name: sum(p.stat().st_size for p in files) for name, files in studies.items()}

        port = free_port()
        log = open(tmp / "server.log", "wb")
        server = subprocess.Popen([sys.executable, "-m", "medcodec.cli.main", "serve", "--store", str(store_path),
                                   "--port", str(port), "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        procs.append(server)
        wait_http(f"http://127.0.0.1:{port}/health", server, "medcodec serve")
        rss = RssSampler(server.pid)
        proxy = ShapingProxy(port)
        orthanc = None
        if args.orthanc:
            try:
                orthanc = Orthanc(tmp / "orthanc")
                procs.append(orthanc.proc)
                for files in studies.values():
                    orthanc.upload(files)
                info["orthanc"] = f"Orthanc {orthanc.version}, DICOMweb plugin {orthanc.plugin_version}"
                oproxy = ShapingProxy(orthanc.port)
            except RuntimeError as exc:
                print(f"Orthanc skipped: {exc}", file=sys.stderr)
                info["orthanc"] = f"not run: {exc}"
                orthanc = None
        base = f"http://127.0.0.1:{proxy.port}"
        # warm-up (numba kernels load in the server process, page cache): not timed
        timed_get(f"http://127.0.0.1:{port}/studies/{uids['head CT 73 MB']}/archive.zip?preset=diagnostic&live=1")

        def measure(study: str, link: str, case: str, url: str, headers: dict[str, str] | None = None,
                    multipart: bool = False) -> Result:  # fmt: skip
            best = None
            for _ in range(args.repeat):
                rss.reset()
                dt, body, hdrs = timed_get(url, headers)
                t1 = time.perf_counter()
                frames = decode_multipart(body, hdrs["content-type"]) if multipart else decode_zip(body)
                dec = time.perf_counter() - t1
                res = Result(study, link, case, dt, len(body), dt + dec, frames, {"rss": rss.peak})
                if best is None or res.seconds < best.seconds:
                    best = res
            assert best is not None
            print(f"  {study:18s} {link:11s} {case:26s} {best.seconds:7.2f} s  {best.nbytes / 1e6:8.1f} MB  "
                  f"pixels at {best.decoded_seconds:6.2f} s  ({best.frames} frames)", flush=True)  # fmt: skip
            results.append(best)
            return best

        for link, rate in LINKS.items():
            if args.live_only and link != "100 Mbit/s":
                continue
            proxy.rate = rate
            if orthanc is not None:
                oproxy.rate = rate
            for study, uid in uids.items():
                arch = f"{base}/studies/{uid}/archive.zip"
                measure(study, link, "raw (original ZIP)", arch + "?preset=original&live=1")
                if not args.live_only:
                    measure(study, link, "diagnostic pre-computed", arch + "?preset=diagnostic")
                measure(study, link, "diagnostic live", arch + "?preset=diagnostic&live=1")
                if orthanc is not None:
                    try:
                        measure(study, link, "Orthanc WADO-RS .51", f"http://127.0.0.1:{oproxy.port}/dicom-web/studies/{uid}",
                                {"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_12}'},
                                multipart=True)  # fmt: skip
                    except RuntimeError as exc:  # e.g. 16-bit MR: Orthanc cannot make 12-bit JPEG of it
                        print(f"  {study:18s} {link:11s} Orthanc .51 failed: {str(exc)[:160]}", flush=True)
                        info.setdefault("orthanc_failed", {})[study] = str(exc).splitlines()[0][:200]

        # unshaped server throughput (no proxy), live diagnostic; and the server's CPU time per
        # instance, which other work on the machine disturbs far less than wall time
        info["throughput"], info["cpu_ms_per_file"] = {}, {}
        rss.paused.set()  # no memory sampling while the server's throughput is timed
        for study, uid in uids.items():
            best, cpu = 1e9, 0.0
            for _ in range(args.repeat):  # CPU summed over the repeats: the clock ticks are 10 ms
                c0 = cpu_seconds(server.pid)
                dt, _body, _ = timed_get(f"http://127.0.0.1:{port}/studies/{uid}/archive.zip?preset=diagnostic&live=1")
                cpu += (cpu_seconds(server.pid) - c0) / args.repeat
                best = min(best, dt)
            c0 = cpu_seconds(server.pid)
            timed_get(f"http://127.0.0.1:{port}/studies/{uid}/archive.zip?preset=original&live=1")
            cpu_raw = cpu_seconds(server.pid) - c0
            n = len(studies[study])
            info["throughput"][study] = raw_bytes[study] / best / 1e6
            info["cpu_ms_per_file"][study] = {"diagnostic live": 1000 * cpu / n, "original": 1000 * cpu_raw / n,
                                              "file_mb": raw_bytes[study] / n / 1e6}  # fmt: skip
            print(f"  unshaped live diagnostic, {study}: {info['throughput'][study]:.0f} MB/s of raw files "
                  f"({raw_bytes[study] / 1e6:.0f} MB in {best:.2f} s); server CPU {1000 * cpu / n:.1f} ms per "
                  f"instance (original: {1000 * cpu_raw / n:.1f} ms)", flush=True)  # fmt: skip
        rss.paused.clear()
        if args.gb and not args.live_only:
            gb_files = make_study(head_files, tmp / "gb", 14)  # ~1 GB
            with open_store(store_path) as store:
                store.ingest(gb_files, precompress=False)
            gb_uid = str(pydicom.dcmread(gb_files[0], stop_before_pixels=True).StudyInstanceUID)
            gb_raw = sum(p.stat().st_size for p in gb_files)
            start_rss = rss.reset()
            with httpx.Client(timeout=900) as client:
                t0 = time.perf_counter()
                with client.stream("GET", f"http://127.0.0.1:{port}/studies/{gb_uid}/archive.zip?preset=diagnostic&live=1") as r:
                    got = sum(len(c) for c in r.iter_bytes(1 << 20))
                dt = time.perf_counter() - t0
            info["gb"] = {"raw_bytes": gb_raw, "sent_bytes": got, "seconds": dt, "peak_rss": rss.peak,
                          "rss_before": start_rss, "throughput": gb_raw / dt / 1e6}  # fmt: skip
            print(f"  1 GB study live: {gb_raw / 1e9:.2f} GB raw -> {got / 1e6:.0f} MB in {dt:.1f} s "
                  f"({gb_raw / dt / 1e6:.0f} MB/s); server peak PSS (with encoder processes) {rss.peak / 1e6:.0f} MB", flush=True)  # fmt: skip
        info["peak_rss_all"] = max(r.extra["rss"] for r in results)
        info["raw_bytes"] = raw_bytes
        rss.close()
        proxy.close()
        if orthanc is not None:
            oproxy.close()
            orthanc.close()
        info["load"] = os.getloadavg()
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    return {"info": info, "results": [r.__dict__ for r in results]}


def summarize(out: dict) -> tuple[list[str], list[str]]:
    """Table lines and target lines (Markdown)."""
    res = out["results"]
    info = out["info"]

    def get(study: str, link: str, case: str) -> dict | None:
        return next((r for r in res if r["study"] == study and r["link"] == link and r["case"] == case), None)

    lines = ["| study | link | case | last byte s | MB sent | pixels s | vs raw | vs Orthanc .51 | server peak PSS MB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in res:
        raw = get(r["study"], r["link"], "raw (original ZIP)")
        orth = get(r["study"], r["link"], "Orthanc WADO-RS .51")
        vs_raw = f"{r['seconds'] / raw['seconds']:.3f}" if raw else "-"
        vs_o = f"{r['seconds'] / orth['seconds']:.2f}" if orth else "-"
        lines.append(f"| {r['study']} | {r['link']} | {r['case']} | {r['seconds']:.2f} | {r['nbytes'] / 1e6:.1f} | "
                     f"{r['decoded_seconds']:.2f} | {vs_raw} | {vs_o} | {r['extra']['rss'] / 1e6:.0f} |")  # fmt: skip
    targets = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    for study in {r["study"] for r in res}:
        live = get(study, "100 Mbit/s", "diagnostic live")
        raw = get(study, "100 Mbit/s", "raw (original ZIP)")
        orth = get(study, "100 Mbit/s", "Orthanc WADO-RS .51")
        if live and raw:
            q = live["seconds"] / raw["seconds"]
            targets.append(f"- {study}, 100 Mbit/s: live diagnostic / raw = {q:.3f} (target <= 0.125): {verdict(q <= 0.125)}")
        if live and orth:
            q = live["seconds"] / orth["seconds"]
            targets.append(f"- {study}, 100 Mbit/s: live diagnostic / Orthanc .51 = {q:.2f} (target <= 0.5): {verdict(q <= 0.5)}")
        pre = get(study, "1 Gbit/s", "diagnostic pre-computed")
        if pre and "300" in study:
            targets.append(f"- {study}, 1 Gbit/s: pre-computed to last byte {pre['seconds']:.2f} s (target < 1 s for a "
                           f"100 MB-class study; this one is 3x that): {verdict(pre['seconds'] < 1.0)}")  # fmt: skip
        if pre and "head" in study:
            targets.append(f"- {study}, 1 Gbit/s: pre-computed to last byte {pre['seconds']:.2f} s (target < 1 s): "
                           f"{verdict(pre['seconds'] < 1.0)}")  # fmt: skip
    for study, mbs in info.get("throughput", {}).items():
        targets.append(f"- unshaped live diagnostic throughput, {study}: {mbs:.0f} MB/s (target >= 150): {verdict(mbs >= 150)}")
        cpu = info.get("cpu_ms_per_file", {}).get(study)
        if cpu:
            ceiling = (os.cpu_count() or 1) * cpu["file_mb"] / (cpu["diagnostic live"] / 1000)
            targets.append(f"- server CPU per instance (server + encoder processes), {study}: {cpu['diagnostic live']:.1f} ms live diagnostic, "
                           f"{cpu['original']:.1f} ms original; all {os.cpu_count()} cores busy with it alone would "
                           f"give at most {ceiling:.0f} MB/s")  # fmt: skip
    if "gb" in info:
        g = info["gb"]
        targets.append(f"- server peak memory (PSS, server + encoder processes) streaming {g['raw_bytes'] / 1e9:.2f} GB live: {g['peak_rss'] / 1e6:.0f} MB "
                       f"(target < 500 MB): {verdict(g['peak_rss'] < 500e6)}")  # fmt: skip
    return lines, sorted(targets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("MEDCODEC_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--repeat", type=int, default=1, help="best of N per case (default 1)")
    parser.add_argument("--no-big", dest="big", action="store_false", help="skip the ~300 MB study")
    parser.add_argument("--no-gb", dest="gb", action="store_false", help="skip the ~1 GB RSS run")
    parser.add_argument("--no-orthanc", dest="orthanc", action="store_false")
    parser.add_argument("--no-more", dest="more", action="store_false",
                        help="skip the chest CT (implicit VR) and the 256x256 MR series")  # fmt: skip
    parser.add_argument("--live-only", action="store_true",
                        help="only the head CT, only raw / live diagnostic / Orthanc at 100 Mbit/s, and unshaped "
                        "live throughput (no pre-computation, no 300 MB or 1 GB study)")  # fmt: skip
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--markdown", help="replace the delivery section of this Markdown file")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    out = run(args)
    out["info"]["seconds"] = time.perf_counter() - t0
    lines, targets = summarize(out)
    print("\n".join(["", *lines, "", "Targets (issue 9):", *targets]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    if args.markdown:
        write_markdown(Path(args.markdown), out, lines, targets)
    return 0


START, END = "<!-- delivery-benchmark:start -->", "<!-- delivery-benchmark:end -->"


def write_markdown(path: Path, out: dict, lines: list[str], targets: list[str]) -> None:
    info = out["info"]
    section = [
        "## Delivery (`benchmarks/bench_delivery.py`)",
        "",
        "Time for a study to reach a client through a loopback proxy shaped to 100 Mbit/s and 1 Gbit/s "
        "(server to client), medcodec serve vs Orthanc on the same link, same files. `raw` is the original "
        "files in a ZIP (`preset=original&live=1`: each DICOM header deflated, the pixel data stored; the default `original` archive stores the headers, 0.3-4.7 % larger, and is not used here so as not to flatter the ratios); `pixels` adds the client decoding every frame with "
        "pydicom after the last byte. Server, proxy and client share the machine's cores.",
        "",
        f"- Date: {info['date']}; machine: {info['machine']}; run took {info.get('seconds', 0):.0f} s; "
        f"load average at the end {[round(x, 2) for x in info.get('load', [])]}",
        f"- Peer: {info.get('orthanc', 'not run')}",
        f"- Ingest with `diagnostic` pre-computed: {info.get('ingest_seconds', 0):.0f} s for all studies",
        f"- Command: `python benchmarks/bench_delivery.py {' '.join(sys.argv[1:])}`",
        "",
        *lines,
        "",
        "Targets (issue 9):",
        "",
        *targets,
    ]
    put_section(path, START, END, "\n".join(section))


if __name__ == "__main__":
    sys.exit(main())
