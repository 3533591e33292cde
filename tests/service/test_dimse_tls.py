"""DICOM TLS (``serve --dimse-tls-port``, PS3.15 B.9): DCMTK's echoscu / storescu as callers with
and without a certificate the site's CA signed, DCMTK's storescp as a C-MOVE destination over TLS,
and a connection that never says hello (which stopped pynetdicom's accept loop for every caller).

The certificates are made here with openssl: a site CA, the server's, a workstation's, and a
workstation of another CA."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pydicom
import pytest

from medcodec.testing.tools import require_tool

pytestmark = pytest.mark.realdata

SERIES = "mr_head_ge_signa_t1_ctk"


def _pki(folder: Path) -> dict[str, Path]:
    """``ca``, ``other_ca`` and key / certificate pairs ``server``, ``ws`` (signed by ``ca``),
    ``rogue`` (signed by ``other_ca``): paths ``NAME.pem`` and ``NAME.key``."""
    openssl = require_tool("openssl")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    for ca in ("ca", "other_ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / f"{ca}.key"),
            "-out", str(folder / f"{ca}.pem"), "-days", "1", "-subj", f"/CN=test {ca}")  # fmt: skip
    san = folder / "san.cnf"
    san.write_text("subjectAltName=IP:127.0.0.1\n")
    for name, ca in (("server", "ca"), ("ws", "ca"), ("dest", "ca"), ("rogue", "other_ca")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / f"{name}.key"),
            "-out", str(folder / f"{name}.csr"), "-subj", f"/CN={name}")  # fmt: skip
        run("x509", "-req", "-in", str(folder / f"{name}.csr"), "-CA", str(folder / f"{ca}.pem"),
            "-CAkey", str(folder / f"{ca}.key"), "-CAcreateserial", "-out", str(folder / f"{name}.pem"),
            "-days", "1", "-extfile", str(san))  # fmt: skip
    names = ("ca", "other_ca", "server", "ws", "dest", "rogue")
    return {**{n: folder / f"{n}.pem" for n in names}, **{f"{n}.key": folder / f"{n}.key" for n in names}}


def _dcmtk(tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool(tool), *args], capture_output=True, text=True, timeout=timeout)


def test_dicom_tls_port_takes_certified_callers_only(shared_data, tmp_path, spawn_server):
    pki = _pki(tmp_path / "pki")
    plain, tls_port = spawn_server.free_port(), spawn_server.free_port()
    _, url, log = spawn_server(
        tmp_path / "store",
        extra=["--dimse-port", str(plain), "--dimse-tls-port", str(tls_port), "--ae-title", "MEDCODEC",
               "--tls-cert", str(pki["server"]), "--tls-key", str(pki["server.key"]), "--dimse-tls-ca", str(pki["ca"]),
               "--log-level", "info"],
    )  # fmt: skip
    trust = ssl.create_default_context(cafile=str(pki["ca"]))
    assert url.startswith("https://")
    health = httpx.get(url + "/health", verify=trust).json()
    assert (health["dimse_port"], health["dimse_tls_port"]) == (plain, tls_port)
    ws = ["+tls", str(pki["ws.key"]), str(pki["ws"]), "+cf", str(pki["ca"]), "-aet", "WS1", "-aec", "MEDCODEC"]
    # a connection that never says hello, held open: the port still answers everyone else (pynetdicom
    # shakes hands in its accept loop, on a socket without a timeout: it waited for this one for ever)
    with socket.create_connection(("127.0.0.1", tls_port)):
        echo = _dcmtk("echoscu", *ws, "127.0.0.1", str(tls_port), timeout=30)
        assert echo.returncode == 0, echo.stderr
    series = shared_data / SERIES
    files = sorted(series.glob("*.dcm"))[:4]
    push = _dcmtk("storescu", *ws, "127.0.0.1", str(tls_port), *map(str, files))
    assert push.returncode == 0 and "Failed" not in push.stderr, push.stderr[-2000:]
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    found = httpx.get(f"{url}/dicomweb/studies/{first.StudyInstanceUID}/instances", verify=trust).json()
    assert len(found) == len(files)
    # a certificate another CA signed, none at all, plain DICOM: refused before any DICOM is read
    rogue = _dcmtk("echoscu", "+tls", str(pki["rogue.key"]), str(pki["rogue"]), "+cf", str(pki["ca"]),
                   "-aec", "MEDCODEC", "127.0.0.1", str(tls_port), timeout=60)  # fmt: skip
    anonymous = _dcmtk("echoscu", "+tla", "+cf", str(pki["ca"]), "-aec", "MEDCODEC", "127.0.0.1", str(tls_port),
                       timeout=60)  # fmt: skip
    in_clear = _dcmtk("echoscu", "-to", "10", "-aec", "MEDCODEC", "127.0.0.1", str(tls_port), timeout=60)
    assert rogue.returncode != 0 and anonymous.returncode != 0 and in_clear.returncode != 0
    # the plain port is the plain port; the TLS port still answers after what it refused
    assert _dcmtk("echoscu", "-aec", "MEDCODEC", "127.0.0.1", str(plain)).returncode == 0
    assert _dcmtk("echoscu", *ws, "127.0.0.1", str(tls_port)).returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and log.read_text().count("DICOM TLS connection from") < 4:
        time.sleep(0.2)
    text = log.read_text()
    # each refusal one WARNING line with the reason, no traceback; each association's line says TLS and who
    assert text.count("DICOM TLS connection from 127.0.0.1") >= 4, text[-3000:]
    for why in ("certificate was not accepted: unable to get local issuer certificate", "presented no certificate",
                "plain DICOM on the TLS port"):  # fmt: skip
        assert why in text, (why, text[-3000:])
    assert "Traceback" not in text, text[-3000:]
    assert "over TLSv1." in text and "certificate 'CN=ws'" in text, text[-3000:]


def test_c_move_reaches_a_destination_over_tls(shared_data, tmp_path, spawn_server):
    """C-MOVE to a peer declared --dimse-tls-peer: DCMTK's storescp over TLS receives the study;
    one whose certificate the site CA did not sign gets nothing (0xA702, said in the comment)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

    pki = _pki(tmp_path / "pki")
    files = sorted((shared_data / SERIES).glob("*.dcm"))[:3]
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    ingest = subprocess.run(
        [sys.executable, "-m", "medcodec.cli.main", "ingest", *map(str, files),
         "--store", str(tmp_path / "store"), "--no-precompress", "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    good, bad = spawn_server.free_port(), spawn_server.free_port()
    hang = socket.socket()  # a destination that takes the connection and never says a word (TLS or DICOM)
    hang.bind(("127.0.0.1", 0))
    hang.listen(4)
    received = {good: tmp_path / "good", bad: tmp_path / "bad"}
    scps = []
    for port, who in ((good, "dest"), (bad, "rogue")):
        received[port].mkdir()
        scps.append(subprocess.Popen(
            [require_tool("storescp"), "+tls", str(pki[f"{who}.key"]), str(pki[who]), "+cf", str(pki["ca"]),
             "-od", str(received[port]), "-aet", who.upper(), str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
    try:
        plain = spawn_server.free_port()
        _, _, log = spawn_server(
            tmp_path / "store",
            extra=["--dimse-port", str(plain), "--ae-title", "MEDCODEC", "--tls-cert", str(pki["server"]),
                   "--tls-key", str(pki["server.key"]), "--dimse-tls-ca", str(pki["ca"]),
                   "--dimse-tls-peer", f"DEST=127.0.0.1:{good}", "--dimse-tls-peer", f"ROGUE=127.0.0.1:{bad}",
                   "--dimse-tls-peer", f"HANG=127.0.0.1:{hang.getsockname()[1]}", "--dimse-timeout", "5"],
        )  # fmt: skip
        time.sleep(0.5)  # storescp listening
        ae = AE(ae_title="WS1")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        identifier = pydicom.Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = first.StudyInstanceUID
        finals = {}
        took = {}
        for destination in ("DEST", "ROGUE", "HANG"):
            assoc = ae.associate("127.0.0.1", plain, ae_title="MEDCODEC")
            assert assoc.is_established
            t0 = time.monotonic()
            try:
                responses = list(assoc.send_c_move(identifier, destination, StudyRootQueryRetrieveInformationModelMove))
            finally:
                assoc.release()
            finals[destination], took[destination] = responses[-1][0], time.monotonic() - t0
        assert finals["DEST"].Status == 0x0000, finals["DEST"]
        assert int(finals["DEST"].NumberOfCompletedSuboperations) == len(files)
        assert len(list(received[good].iterdir())) == len(files)
        assert finals["ROGUE"].Status == 0xA702, finals["ROGUE"]
        assert "over TLS" in str(finals["ROGUE"].get("ErrorComment", "")), finals["ROGUE"]
        assert list(received[bad].iterdir()) == []
        # a handshake that never comes is over within --dimse-timeout (it held the move for ever)
        assert finals["HANG"].Status == 0xA702 and took["HANG"] < 20, (finals["HANG"], took)
        assert "Traceback" not in log.read_text()
    finally:
        hang.close()
        for scp in scps:
            scp.terminate()
            scp.wait(10)


def test_dicom_tls_settings_are_checked_before_anything_starts(tmp_path):
    from medcodec.errors import InvalidInputError
    from medcodec.service.settings import Settings

    with pytest.raises(InvalidInputError, match="--tls-cert"):
        Settings(store="x", dimse_tls_port=2762)
    with pytest.raises(InvalidInputError, match="not among the DICOM peers"):
        Settings(store="x", dimse_peers=(("WS", "127.0.0.1", 104),), dimse_tls_peers=("OTHER",))
    pki = _pki(tmp_path / "pki")
    with pytest.raises(InvalidInputError, match="do not load"):
        Settings(store="x", tls_certfile=str(pki["server"]), tls_keyfile=str(pki["server.key"]),
                 dimse_tls_ca=str(pki["server.key"]))  # fmt: skip
    cli = [sys.executable, "-m", "medcodec.cli.main", "serve", "--store", str(tmp_path / "s"), "--create"]
    no_cert = subprocess.run([*cli, "--dimse-tls-port", "2762"], capture_output=True, text=True, timeout=60)
    assert no_cert.returncode == 2 and "--tls-cert" in no_cert.stderr and "Traceback" not in no_cert.stderr
    bad_peer = subprocess.run([*cli, "--dimse-tls-peer", "WS"], capture_output=True, text=True, timeout=60)
    assert bad_peer.returncode == 2 and "--dimse-tls-peer" in bad_peer.stderr, bad_peer.stderr


def test_a_stop_does_not_wait_for_connections_still_in_their_handshake(tmp_path, spawn_server):
    """SIGTERM with TCP connections on the TLS port that never say hello: the server stops within
    seconds (it waited out --dimse-timeout for each: an outside re-check, 2026-12-05)."""
    import signal

    pki = _pki(tmp_path / "pki")
    tls_port = spawn_server.free_port()
    proc, _url, log = spawn_server(
        tmp_path / "store",
        extra=["--dimse-tls-port", str(tls_port), "--tls-cert", str(pki["server"]), "--tls-key", str(pki["server.key"]),
               "--dimse-timeout", "60"],
    )  # fmt: skip
    silent = [socket.create_connection(("127.0.0.1", tls_port)) for _ in range(3)]
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)
        assert time.monotonic() - t0 < 15, log.read_text()[-2000:]
    finally:
        for s in silent:
            s.close()


def test_the_tls_contexts_offer_forward_secret_aead_suites_only(tmp_path):
    from medcodec.service.dicom_tls import client_context, server_context

    pki = _pki(tmp_path / "pki")
    for context in (server_context(str(pki["server"]), str(pki["server.key"]), str(pki["ca"])),
                    client_context(str(pki["server"]), str(pki["server.key"]), str(pki["ca"]))):  # fmt: skip
        tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
        assert tls12 and all(c["aead"] and c["kea"] in ("kx-ecdhe", "kx-dhe") for c in tls12), tls12
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
