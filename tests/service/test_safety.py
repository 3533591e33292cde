"""Binding, bearer token, upload limit: the server refuses what it must, before touching the store."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pydicom
import pytest

from medcodec.errors import InvalidInputError
from medcodec.service.settings import Settings

pytestmark = pytest.mark.realdata


def test_settings_refuse_public_bind_without_token():
    with pytest.raises(InvalidInputError, match="token"):
        Settings(store="x", host="0.0.0.0")
    with pytest.raises(InvalidInputError, match="16 characters"):
        Settings(store="x", host="0.0.0.0", token="short")
    assert Settings(store="x", host="0.0.0.0", token="t" * 32).token
    assert Settings(store="x", host="::1").token is None


def test_cli_refuses_public_bind_without_token(tmp_path):
    r = subprocess.run([sys.executable, "-m", "medcodec.cli.main", "serve", "--store", str(tmp_path / "s"),
                        "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert r.returncode == 2 and "token" in r.stderr and "Traceback" not in r.stderr


def test_token_is_required_when_set(tmp_path, spawn_server):
    token = "s3cret-token-for-tests-0123456789"
    _, url, _ = spawn_server(tmp_path / "store", env={"MEDCODEC_TOKEN": token})
    assert httpx.get(url + "/health").status_code == 200  # probes need no token
    r = httpx.get(url + "/dicomweb/studies")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(url + "/dicomweb/studies", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url + "/dicomweb/studies", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # the viewer's static files need no token (a browser cannot send one for them); its data routes do
    assert httpx.get(url + "/viewer/viewer.js").status_code == 200
    assert httpx.get(url + "/viewer/api/studies/1.2.3/series/1.2.4/stack").status_code == 401
    assert httpx.get(url + "/viewer/../dicomweb/studies").status_code == 401


def test_stow_over_the_limit_gives_413_and_stores_nothing(shared_data, tmp_path, spawn_server):
    _, url, _ = spawn_server(tmp_path / "store", extra=["--max-upload", "1"])  # 1 MB
    path = shared_data / "ct_head_phantom_philips_ingenuity" / "0001.dcm"  # 0.5 MB
    one = path.read_bytes()
    boundary = "b0undary"

    def body(n: int) -> bytes:
        part = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + one + b"\r\n"
        return part * n + f"--{boundary}--\r\n".encode()

    ct = f'multipart/related; type="application/dicom"; boundary={boundary}'
    r = httpx.post(url + "/dicomweb/studies", content=body(3), headers={"Content-Type": ct}, timeout=60)
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLargeError"

    def chunked():  # no Content-Length: the limit is enforced while reading
        yield body(3)

    r = httpx.post(url + "/dicomweb/studies", content=chunked(), headers={"Content-Type": ct}, timeout=60)
    assert r.status_code == 413
    assert httpx.get(url + "/dicomweb/studies").json() == []
    r = httpx.post(url + "/dicomweb/studies", content=body(1), headers={"Content-Type": ct}, timeout=60)
    assert r.status_code == 200
    uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    assert [s["0020000D"]["Value"][0] for s in httpx.get(url + "/dicomweb/studies").json()] == [uid]
