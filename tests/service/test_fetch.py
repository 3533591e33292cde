"""``medcodec fetch``: download, resume with Range after an interruption, verify."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
import zipfile

import pytest

from conftest import free_port  # tests/service/conftest.py
from medcodec.cli.main import main
from medcodec.service.client import FetchError, IntegrityError, fetch, verify_archive

pytestmark = pytest.mark.realdata


def test_fetch_precomputed_and_verify(server, tmp_path):
    path = fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, extract=True)
    info = verify_archive(path)
    assert info["files"] == len(server.chest_files)
    etag = server.get(f"/studies/{server.chest_study}/archive.zip?preset=diagnostic").headers["etag"]
    assert f'"{info["sha256"]}"' == etag
    assert len(list((tmp_path / path.stem).rglob("*.dcm"))) == len(server.chest_files)


def test_fetch_resumes_a_partial_download(server, tmp_path):
    url = f"/studies/{server.chest_study}/archive.zip?preset=diagnostic"
    full = server.get(url)
    name = f"{server.chest_study}_diagnostic.zip"
    # an interrupted earlier run left the first third and its ETag
    (tmp_path / (name + ".part")).write_bytes(full.content[: len(full.content) // 3])
    (tmp_path / (name + ".part.etag")).write_text(full.headers["etag"])
    seen = []
    path = fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path,
                 progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    assert path.read_bytes() == full.content
    assert seen[0][0] > len(full.content) // 3  # it continued, it did not start over
    assert not (tmp_path / (name + ".part")).exists()


def test_fetch_detects_a_corrupt_partial(server, tmp_path):
    url = f"/studies/{server.chest_study}/archive.zip?preset=diagnostic"
    full = server.get(url)
    name = f"{server.chest_study}_diagnostic.zip"
    bad = bytearray(full.content[: len(full.content) // 2])
    bad[1000] ^= 0xFF  # a flipped byte in what was already downloaded
    (tmp_path / (name + ".part")).write_bytes(bytes(bad))
    (tmp_path / (name + ".part.etag")).write_text(full.headers["etag"])
    with pytest.raises(IntegrityError, match="sha256"):
        fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path)
    assert not (tmp_path / (name + ".part")).exists()  # the next run starts clean
    path = fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == full.headers["etag"].strip('"')
    # a .zip already there is not replaced unless asked (README walk-through, 2026-12-01)
    from medcodec.errors import OutputExistsError

    before = path.stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="exists already"):
        fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path)
    assert path.stat().st_mtime_ns == before
    assert fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, overwrite=True) == path


def test_fetch_live_archive_and_cli(server, tmp_path, capsys):
    code = main(["fetch", server.url, "--study", server.head_study, "--preset", "preview", "-o", str(tmp_path),
                 "--live"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert f"{len(server.head_files)} files" in out
    with zipfile.ZipFile(tmp_path / f"{server.head_study}_preview.zip") as zf:
        assert zf.testzip() is None


def test_fetch_errors(server, tmp_path):
    with pytest.raises(FetchError) as info:
        fetch(server.url, study="1.2.3.4.5.6.7", out_dir=tmp_path)
    assert info.value.status == 404
    with pytest.raises(FetchError, match="network"):
        fetch("http://127.0.0.1:1", study="1.2.3", out_dir=tmp_path, retries=1)
    assert main(["fetch", server.url, "--study", "../etc", "-o", str(tmp_path)]) == 2


def test_fetch_extracts_into_a_new_folder_only_and_says_what_is_wrong(server, tmp_path):
    """CLI audit, 2026-12-01: --extract wrote over an existing folder without a word; a URL
    without http:// was retried as '4 network failures'; a non-medcodec server's 404 page was
    quoted as HTML."""
    from medcodec.errors import InvalidInputError

    path = fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, extract=True)
    folder = tmp_path / path.stem
    (folder / "mine.txt").write_text("a reader's note")
    with pytest.raises(InvalidInputError, match="exists already"):
        fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, extract=True)
    assert (folder / "mine.txt").exists()
    fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, extract=True, overwrite=True)
    assert not (folder / "mine.txt").exists() and len(list(folder.rglob("*.dcm"))) == len(server.chest_files)
    assert not list(tmp_path.glob(".*"))  # no staging or old folder left
    with pytest.raises(InvalidInputError, match="http://"):
        fetch("127.0.0.1:8042", study="1.2.3", out_dir=tmp_path, retries=5)
    other = subprocess.Popen([sys.executable, "-m", "http.server", str(port := free_port()), "--bind", "127.0.0.1",
                              "--directory", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(100):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        with pytest.raises(FetchError, match="text/html answer, not medcodec's") as info:  # its 404 page
            fetch(f"http://127.0.0.1:{port}", study="1.2.3", out_dir=tmp_path / "x")
        assert "<" not in str(info.value)
    finally:
        other.terminate()
        other.wait(10)


def test_verify_archive_checks_the_manifest_against_the_entries(tmp_path):
    import json

    def archive(name: str, entries: dict[str, bytes]) -> object:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as zf:
            for entry, data in entries.items():
                zf.writestr(entry, data)
        return path

    listed = json.dumps({"files": [{"file": "a.dcm"}]}).encode()
    assert verify_archive(archive("ok.zip", {"manifest.json": listed, "a.dcm": b"x"}))["files"] == 1
    with pytest.raises(IntegrityError, match="not a medcodec manifest"):
        verify_archive(archive("empty.zip", {"manifest.json": b"{}", "a.dcm": b"x"}))
    with pytest.raises(IntegrityError, match="1 file\\(s\\) not listed"):
        verify_archive(archive("more.zip", {"manifest.json": listed, "a.dcm": b"x", "b.dcm": b"y"}))
    slip = json.dumps({"files": [{"file": "../a.dcm"}]}).encode()
    with pytest.raises(IntegrityError, match="would land outside"):
        verify_archive(archive("slip.zip", {"manifest.json": slip, "../a.dcm": b"x"}))
