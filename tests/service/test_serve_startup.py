"""``medcodec serve`` startup: what keeps the server from starting is one ``error:`` line and exit 2,
found before uvicorn runs (outside audit M6); a store that does not exist is refused unless
``--create``; ``--port 0`` prints the port the system chose; SIGTERM stops it, exit 0."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medcodec.delivery import open_store
from medcodec.testing.server import free_port, start_server, stop_server

SERVE = [sys.executable, "-m", "medcodec.cli.main", "serve"]


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    open_store(path).close()  # an empty store, as `medcodec ingest` leaves one
    return path


@pytest.fixture()
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def refused(args: list[str]) -> str:
    """The one ``error:`` line of a serve that must not start."""
    r = subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=60)
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.returncode, r.stderr)
    return lines[0]


def test_port_in_use(store: Path, busy_port: int) -> None:
    line = refused(["--store", str(store), "--port", str(busy_port)])
    assert f"cannot listen on 127.0.0.1:{busy_port}" in line and "in use" in line and "--port" in line


def test_dimse_port_in_use(store: Path, busy_port: int) -> None:
    line = refused(["--store", str(store), "--port", "0", "--dimse-port", str(busy_port)])
    assert f"127.0.0.1:{busy_port}" in line and "in use" in line and "--dimse-port" in line


def test_the_same_port_for_http_and_dicom(store: Path) -> None:
    """Both were bound (SO_REUSEADDR) before either listened, so the check passed and the SCP failed
    after 'Application startup complete', with a traceback (an outside audit, 2026-12-03)."""
    port = free_port()
    line = refused(["--store", str(store), "--port", str(port), "--dimse-port", str(port)])
    assert f"--dimse-port {port} is --port too" in line


def test_answers_on_a_kept_alive_connection_do_not_wait_for_delayed_acks(store: Path) -> None:
    """The listening socket was made with proto 0, and asyncio sets TCP_NODELAY only on accepted
    sockets whose proto is TCP: every answer written in two pieces (head, then body) on a kept-alive
    connection waited for the client's delayed ACK, +40 ms on each request after a connection's
    first (QIDO, metadata, frames, /health; found 2026-12-03). The mechanism, then the server."""
    import asyncio

    from medcodec.cli.serve import _listening

    async def nodelay_of_an_accepted_socket() -> int:
        with _listening("127.0.0.1", 0, "--port") as sock:
            seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

            class Probe(asyncio.Protocol):
                def connection_made(self, transport: asyncio.BaseTransport) -> None:
                    accepted = transport.get_extra_info("socket")
                    seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                    transport.close()

            server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            try:
                return await asyncio.wait_for(seen, 10)
            finally:
                writer.close()
                server.close()

    assert asyncio.run(nodelay_of_an_accepted_socket()) == 1
    proc, url, _ = start_server(store)
    try:
        with httpx.Client() as client:
            client.get(f"{url}/health")  # the connection's first answer was never delayed
            took = []
            for _ in range(15):
                t0 = time.perf_counter()
                assert client.get(f"{url}/health").status_code == 200
                took.append(time.perf_counter() - t0)
        assert sorted(took)[len(took) // 2] < 0.025, took  # ~1 ms; 42-44 ms each before
    finally:
        stop_server(proc)


def test_catalog_that_does_not_open(store: Path) -> None:
    assert "cannot open the catalog 'notaurl://x'" in refused(["--store", str(store), "--port", "0", "--catalog",
                                                               "notaurl://x"])  # fmt: skip


def test_store_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file.dcm").write_bytes(b"not a store")
    assert "is not a folder" in refused(["--store", str(tmp_path / "file.dcm"), "--port", "0"])


def test_store_that_does_not_exist_is_refused_not_created(tmp_path: Path) -> None:
    line = refused(["--store", str(tmp_path / "stroe"), "--port", "0"])
    assert "does not exist" in line and "--create" in line
    assert not (tmp_path / "stroe").exists()
    line = refused(["--store", str(tmp_path), "--port", "0"])  # a folder, but no store
    assert "not a medcodec store" in line
    assert list(tmp_path.iterdir()) == []  # and nothing written there (a tmp/ was, until 2026-12-02)


def test_port_0_names_the_chosen_port_and_sigterm_stops_it(tmp_path: Path) -> None:
    proc = subprocess.Popen([*SERVE, "--store", str(tmp_path / "new"), "--create", "--port", "0", "--log-level",
                             "warning"], stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        match = re.match(r"medcodec serve: http://127\.0\.0\.1:(\d+)/", banner)
        assert match and match.group(1) != "0", banner
        url = f"http://127.0.0.1:{match.group(1)}/health"
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(url, timeout=2).json()["status"] == "ok"
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert (tmp_path / "new" / "catalog.sqlite").exists()  # --create made it
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "error" not in err and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_stops_the_server_while_a_dicom_peer_keeps_its_association(tmp_path: Path) -> None:
    """An outside audit (2026-12-02): HTTP stopped within 5 s of SIGTERM, and the process then lived
    as long as a peer kept its association open (61 s idle, for ever with C-ECHO keep-alives):
    socketserver joined every connection. Now open associations get a grace, then A-ABORT."""
    from pynetdicom import AE

    dimse_port = free_port()
    proc, _, log = start_server(tmp_path / "new", extra=["--dimse-port", str(dimse_port)])
    try:
        ae = AE(ae_title="KEEPER")
        ae.add_requested_context("1.2.840.10008.1.1")  # Verification
        assoc = ae.associate("127.0.0.1", dimse_port, ae_title="MEDCODEC")
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        took = time.monotonic() - started
        err = log.read_text()
        assert proc.returncode == 0 and took < 20, (proc.returncode, took, err)
        assert "aborted" in err and "Traceback" not in err, err
        for _ in range(50):
            if not assoc.is_alive():
                break
            time.sleep(0.1)
        assert assoc.is_aborted  # the peer was told (A-ABORT), not left waiting
    finally:
        stop_server(proc)


def test_sigterm_stops_the_server_while_dicom_peers_stopped_mid_pdu(tmp_path: Path) -> None:
    """Peers that sent part of an A-ASSOCIATE-RQ and stopped: A-ABORT could not wake the threads
    reading the rest, so the server outlived SIGTERM as long as the peers stayed (an outside audit,
    2026-12-05: still running 40 s after it). Their sockets are shut down after the grace."""
    import struct

    dimse_port = free_port()
    proc, _, log = start_server(tmp_path / "new", extra=["--dimse-port", str(dimse_port), "--dimse-timeout", "600"])
    peers = []
    try:
        for _ in range(4):
            peer = socket.create_connection(("127.0.0.1", dimse_port), timeout=30)
            peer.sendall(struct.pack(">BBL", 0x01, 0, 200) + b"\x00\x01\x00\x00" + b"MEDCODEC  ")  # 20 of 206
            peers.append(peer)
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        took = time.monotonic() - started
        assert proc.returncode == 0 and took < 15, (proc.returncode, took, log.read_text())
    finally:
        for peer in peers:
            peer.close()
        stop_server(proc)


def test_an_upload_cut_by_the_stop_is_answered_503_without_a_traceback(tmp_path: Path) -> None:
    """An outside audit (2026-12-02): a STOW-RS still uploading when the 5 s grace after SIGTERM ran
    out was answered 500, the log holding 'Exception in ASGI application' and a CancelledError
    traceback. Now 503 with Retry-After: send it again."""
    proc, url, log = start_server(tmp_path / "new")
    try:
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=30) as sock:
            head = (
                "POST /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                'Content-Type: multipart/related; type="application/dicom"; boundary=b0undary\r\n'
                "Content-Length: 1000000\r\n\r\n--b0undary\r\nContent-Type: application/dicom\r\n\r\n"
            )
            sock.sendall(head.encode() + b"\0" * 1000)  # ... and the rest never comes
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        proc.wait(timeout=30)
        err = log.read_text()
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"retry-after: 10" in answer.lower()
        assert proc.returncode == 0 and "Traceback" not in err and "Exception in ASGI" not in err, err
    finally:
        stop_server(proc)


@pytest.mark.realdata
def test_a_download_cut_by_the_stop_is_one_log_line_not_tracebacks(tmp_path: Path, shared_data: Path) -> None:
    """An outside audit (2026-12-04): SIGTERM while an archive was still being sent stopped the
    server (exit 0) and cut the client, as documented, but uvicorn logged "Exception in ASGI
    application" with two CancelledError tracebacks once the 5 s grace ran out. Now one line."""
    store = tmp_path / "store"
    r = subprocess.run([sys.executable, "-m", "medcodec.cli.main", "ingest", str(shared_data / "ct_chest_lungpetctdx_A0001_philips"),
                        "--store", str(store), "--no-precompress", "--no-progress"], capture_output=True, text=True,
                       timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    proc, url, log = start_server(store)
    try:
        study = httpx.get(f"{url}/dicomweb/studies", timeout=30).json()[0]["0020000D"]["Value"][0]
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(f"GET /studies/{study}/archive.zip?preset=original HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")  # ... and nothing more is read: the answer stalls
            time.sleep(1)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        err = log.read_text()
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "Exception in ASGI" not in err, err
        assert "an answer still being sent was cut" in err, err
    finally:
        stop_server(proc)
