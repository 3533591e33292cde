"""``medcodec serve`` as a real subprocess for tests: a uvicorn server on a free loopback port.

Importable from any test folder (a ``conftest`` module is not: each folder may have its own):
``tests/service`` starts its servers with it, and so do the delivery tests that need one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import DeliveryError

__all__ = ["free_port", "start_server", "stop_server", "stow_body"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(store: Path | str, *, extra: list[str] | None = None, env: dict[str, str] | None = None,
                 host: str = "127.0.0.1") -> tuple[subprocess.Popen[bytes], str, Path]:  # fmt: skip
    """``medcodec serve --store STORE`` on a free port, ``extra`` arguments appended; returns when
    ``GET /health`` answers 200: ``(process, base URL, log file)``. The log (stdout and stderr) is
    ``server-PORT.log`` beside the store (``--create`` is added for a store that does not exist)."""
    import httpx

    args = extra or []
    taken = {args[i + 1] for i, arg in enumerate(args[:-1]) if arg in ("--dimse-port", "--dimse-tls-port")}
    port = free_port()
    while str(port) in taken:  # the test chose its DICOM port the same way a moment ago: not the same one
        port = free_port()
    # a store URL (s3://...) has no folder beside it: its log goes to a temporary folder
    logs = store.parent if isinstance(store, Path) else Path(tempfile.mkdtemp(prefix="medcodec-server-"))
    log = logs / f"server-{port}.log"
    # `serve` refuses a store that does not exist; a test that starts on a fresh one says --create
    create = ["--create"] if isinstance(store, Path) and not store.exists() else []
    cmd = [sys.executable, "-m", "medcodec.cli.main", "serve", "--store", str(store), "--host", host,
           "--port", str(port), "--log-level", "warning", *create, *(extra or [])]  # fmt: skip
    with open(log, "wb") as fh:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    if not isinstance(store, Path):  # the temporary log folder goes with the server (stop_server)
        _TEMPORARY_LOGS[proc.pid] = logs
    # with a certificate, HTTPS: the URL says so (the caller trusts its certificate; this wait does not check it)
    url = f"{'https' if '--tls-cert' in args else 'http'}://{host}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeliveryError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2, verify=False).status_code == 200:
                return proc, url, log
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise DeliveryError(f"server did not answer /health within 60 s:\n{log.read_text()[-3000:]}")


#: Log folders start_server made for servers of remote stores, by process id: removed by stop_server
#: (each test run left one in the temporary folder: an outside audit, 2026-12-05).
_TEMPORARY_LOGS: dict[int, Path] = {}


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a person would stop it; killed after 15 s. A log folder of its own is removed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    logs = _TEMPORARY_LOGS.pop(proc.pid, None)
    if logs is not None:
        shutil.rmtree(logs, ignore_errors=True)


def stow_body(*files: bytes, boundary: str = "medcodec-test-0123") -> tuple[bytes, str]:
    """A STOW-RS request body of ``files`` (one ``application/dicom`` part each) and its Content-Type."""
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + f + b"\r\n" for f in files)
    return body + f"--{boundary}--\r\n".encode(), f'multipart/related; type="application/dicom"; boundary={boundary}'
