"""``medcodec fetch``: download, resume with Range after an interruption, verify."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import subprocess
import sys
import threading
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
    with pytest.raises(IntegrityError, match="sha256"):  # without retries: the check fails, nothing kept
        fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, retries=0)
    assert not (tmp_path / (name + ".part")).exists()  # the next run starts clean
    (tmp_path / (name + ".part")).write_bytes(bytes(bad))
    (tmp_path / (name + ".part.etag")).write_text(full.headers["etag"])
    notices: list[str] = []
    # by default the same run downloads it again from the first byte (until 2026-12-03 it stopped)
    path = fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, notice=notices.append)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == full.headers["etag"].strip('"')
    assert len(notices) == 1 and "sha256" in notices[0] and "again from the first byte" in notices[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    # a .zip already there is not replaced unless asked (README walk-through, 2026-12-01)
    from medcodec.errors import OutputExistsError

    before = path.stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="exists already"):
        fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path)
    assert path.stat().st_mtime_ns == before
    assert fetch(server.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, overwrite=True) == path


def test_fetch_live_archive_and_cli(server, tmp_path, capsys, monkeypatch):
    import medcodec.cli._common as common

    monkeypatch.setattr(common, "PROGRESS_LINE_SECONDS", 0.0)  # stderr is no terminal here: lines, each update
    code = main(["fetch", server.url, "--study", server.head_study, "--preset", "preview", "-o", str(tmp_path),
                 "--live"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert f"{len(server.head_files)} files" in captured.out
    # the byte bar drew nothing into a log until 2026-12-06
    assert re.search(r"^preview: [\d.]+ (B|kB|MB)", captured.err, re.MULTILINE), captured.err
    assert "\r" not in captured.err
    with zipfile.ZipFile(tmp_path / f"{server.head_study}_preview.zip") as zf:
        assert zf.testzip() is None


def test_fetch_errors(server, tmp_path):
    with pytest.raises(FetchError) as info:
        fetch(server.url, study="1.2.3.4.5.6.7", out_dir=tmp_path)
    assert info.value.status == 404
    with pytest.raises(FetchError, match="network"):
        fetch("http://127.0.0.1:1", study="1.2.3", out_dir=tmp_path, retries=1)
    assert main(["fetch", server.url, "--study", "../etc", "-o", str(tmp_path)]) == 2


def test_fetch_timeout_is_the_callers(tmp_path, capsys):
    """The read timeout was fixed at 60 s (an audit's "left" item, 2026-12-02): a server that
    accepts and never answers now costs what ``--timeout`` says."""
    silent = socket.create_server(("127.0.0.1", 0))  # listens, accepts (the backlog), never answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.perf_counter()
        code = main(["fetch", url, "--study", "1.2.3", "-o", str(tmp_path), "--timeout", "0.5", "--retries", "0"])
        took = time.perf_counter() - t0
    finally:
        silent.close()
    assert code == 2 and took < 10
    assert "network failure" in capsys.readouterr().err
    assert main(["fetch", url, "--study", "1.2.3", "-o", str(tmp_path), "--timeout", "0"]) == 2  # not a duration


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
        fetch("127.0.0.1:8044", study="1.2.3", out_dir=tmp_path, retries=5)
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


class CuttingLink:
    """A loopback TCP proxy in front of the server that closes each connection after ``cut`` bytes
    of the answer (a link that drops every few hundred kilobytes). Real sockets, a thread a
    connection."""

    def __init__(self, upstream: str, cut: int):
        self.host, self.port = upstream.rsplit("//", 1)[1].split(":")
        self.cut, self.connections = cut, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection((self.host, int(self.port))) as up:
            request = client.recv(65536)
            up.sendall(request)
            sent = 0
            while sent < self.cut:
                data = up.recv(min(65536, self.cut - sent))
                if not data:
                    break
                client.sendall(data)
                sent += len(data)

    def close(self) -> None:
        self.listener.close()


def test_fetch_finishes_over_a_link_that_drops_every_few_hundred_kilobytes(server, tmp_path):
    """An outside audit (2026-12-02, F1): fetch wrote 1 MiB pieces and lost the bytes after the
    last whole MiB at every drop, so over a link dropping every 800 kB it never got past byte 0
    (curl -C - and wget finished). Now every byte received is kept, and retries count failures in
    a row without progress."""
    full = server.get(f"/studies/{server.chest_study}/archive.zip?preset=diagnostic")
    cut = max(len(full.content) // 7, 50_000)
    link = CuttingLink(server.url, cut=cut)
    try:
        path = fetch(link.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, retries=2)
    finally:
        link.close()
    assert path.read_bytes() == full.content
    assert link.connections >= 7  # it really was cut, and resumed each time (retries=2 in a row)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_fetch_resumes_an_original_archive_over_a_dropping_link(server, tmp_path):
    """The original preset's archive (assembled from the stored files, a strong ETag that is not
    the ZIP's sha256) resumes like a pre-computed one: it was live until 2026-12-03, and a drop
    meant starting again from byte 0. Checked by its length and CRC-32s."""
    full = server.get(f"/studies/{server.head_study}/archive.zip?preset=original")
    assert full.headers["x-medcodec-archive"] == "assembled"
    link = CuttingLink(server.url, cut=len(full.content) // 4)
    try:
        path = fetch(link.url, study=server.head_study, preset="original", out_dir=tmp_path, retries=2)
    finally:
        link.close()
    assert path.read_bytes() == full.content
    assert link.connections >= 4  # cut, and resumed each time rather than started over
    info = verify_archive(path, etag=full.headers["etag"], size=len(full.content))
    assert info["files"] == len(server.head_files)


class FlippingLink(CuttingLink):
    """A loopback TCP proxy that passes every answer whole but flips one bit at byte ``at`` of the
    answers of its first ``damaged`` connections (a faulty middlebox; TCP's checksum is no guard
    against one that rewrites what it relays)."""

    def __init__(self, upstream: str, at: int, damaged: int):
        self.at, self.damaged = at, damaged
        super().__init__(upstream, cut=1 << 62)

    def _relay(self, client: socket.socket) -> None:
        flip = self.connections <= self.damaged
        with client, socket.create_connection((self.host, int(self.port))) as up:
            up.sendall(client.recv(65536))
            sent = 0
            while data := up.recv(65536):
                if flip and sent <= self.at < sent + len(data):
                    data = bytearray(data)
                    data[self.at - sent] ^= 0x10
                    data = bytes(data)
                client.sendall(data)
                sent += len(data)


@pytest.mark.parametrize("live", [False, True])
def test_an_archive_damaged_on_the_way_is_downloaded_again_once(server, tmp_path, live):
    """A bit flipped on the way failed the check and stopped the run (an audit's "left" item,
    2026-12-02): a second download from the first byte now mends it, pre-computed or live; an
    archive that fails twice is the server's own, an IntegrityError with nothing kept."""
    at = 200_000  # past the HTTP head and the first members' headers: inside pixel data or a header
    link = FlippingLink(server.url, at=at, damaged=1)
    notices: list[str] = []
    try:
        path = fetch(link.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, live=live,
                     notice=notices.append)  # fmt: skip
    finally:
        link.close()
    assert link.connections == 2 and len(notices) == 1
    verify_archive(path)
    reference = server.get(f"/studies/{server.chest_study}/archive.zip?preset=diagnostic{'&live=1' if live else ''}")
    with zipfile.ZipFile(path) as got, zipfile.ZipFile(io.BytesIO(reference.content)) as want:
        assert [(i.filename, i.CRC) for i in got.infolist()] == [(i.filename, i.CRC) for i in want.infolist()]
    path.unlink()
    link = FlippingLink(server.url, at=at, damaged=99)
    try:
        with pytest.raises(IntegrityError):
            fetch(link.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, live=live, retries=5)
    finally:
        link.close()
    assert link.connections == 2  # once again, not retries times: a second failure is the server's archive
    assert list(tmp_path.iterdir()) == []


def test_a_failed_live_download_leaves_nothing_and_a_damaged_one_is_an_integrity_error(server, tmp_path):
    """The same audit: a live download that failed left its .part, which no run can resume (F3);
    a bit flipped inside a deflated header of a live archive was 'internal error' (zlib.error,
    exit 3) and the compression method flipped NotImplementedError, the damaged .part left (F2)."""
    link = CuttingLink(server.url, cut=300_000)
    try:
        with pytest.raises(FetchError, match="nothing was kept"):
            fetch(link.url, study=server.chest_study, preset="diagnostic", out_dir=tmp_path, live=True, retries=1)
    finally:
        link.close()
    assert list(tmp_path.iterdir()) == []
    live = server.get(f"/studies/{server.chest_study}/archive.zip?preset=diagnostic&live=1").content
    with zipfile.ZipFile(io.BytesIO(live)) as zf:
        first = zf.infolist()[0]
        assert first.compress_type == zipfile.ZIP_DEFLATED  # the DICOM header, deflated
        method_at = live.rindex(b"PK\x01\x02") + 10  # the last central directory entry's method
    # the first member's deflated bytes start after its local header (30 bytes, then the name and
    # extra field whose lengths it gives at offsets 26 and 28)
    at = first.header_offset
    name_len, extra_len = (int.from_bytes(live[i : i + 2], "little") for i in (at + 26, at + 28))
    data_start = at + 30 + name_len + extra_len
    for offset in range(data_start, data_start + 64, 7):
        bad = bytearray(live)
        bad[offset] ^= 1
        damaged = tmp_path / f"flip{offset}.zip"
        damaged.write_bytes(bytes(bad))
        with pytest.raises(IntegrityError):
            verify_archive(damaged)
    bad = bytearray(live)
    bad[method_at] ^= 0x40  # deflate (8) -> 72, which no ZIP reader knows
    damaged = tmp_path / "method.zip"
    damaged.write_bytes(bytes(bad))
    with pytest.raises(IntegrityError, match="not a readable ZIP"):
        verify_archive(damaged)


def test_extract_finishes_from_a_kept_archive_that_is_still_current(server, tmp_path, monkeypatch):
    """The same audit (F4): --extract on a disk that filled while unpacking said only 'No space
    left on device', kept the verified .zip (good) and then refused to run again ('exists
    already') unless the whole study was downloaded again with --overwrite. Now the failure says
    what is kept, and the same command unpacks the kept archive when the server still sends it
    (a HEAD with If-None-Match of its sha256)."""
    import errno

    from medcodec.errors import OutputExistsError
    from medcodec.service import client

    def full_disk(archive, dest):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(client, "_extract", full_disk)  # the one failure a test cannot make portably
    with pytest.raises(FetchError, match="downloaded and verified, but unpacking it into .* No space left"):
        fetch(server.url, study=server.chest_study, preset="preview", out_dir=tmp_path, extract=True)
    monkeypatch.undo()
    kept = tmp_path / f"{server.chest_study}_preview.zip"
    assert kept.exists() and not (tmp_path / kept.stem).exists()
    before = kept.stat().st_mtime_ns
    assert fetch(server.url, study=server.chest_study, preset="preview", out_dir=tmp_path, extract=True) == kept
    assert kept.stat().st_mtime_ns == before  # not downloaded again
    assert len(list((tmp_path / kept.stem).rglob("*.dcm"))) == len(server.chest_files)
    # an archive the server no longer sends is not unpacked as if it were current
    other = tmp_path / "other"
    other.mkdir()
    stale = other / kept.name
    with zipfile.ZipFile(kept) as src, zipfile.ZipFile(stale, "w") as dst:
        for info in src.infolist()[1:]:  # one file fewer than the study has now
            data = src.read(info)
            if info.filename == "manifest.json":
                import json

                manifest = json.loads(data)
                manifest["files"] = manifest["files"][1:]
                data = json.dumps(manifest).encode()
            dst.writestr(info, data)
    with pytest.raises(OutputExistsError, match="exists already"):
        fetch(server.url, study=server.chest_study, preset="preview", out_dir=other, extract=True)


def test_the_server_log_drops_asyncio_lines_about_writes_to_closed_connections():
    """The same audit: ~60 aborted downloads wrote 83 'socket.send() raised exception.' warnings
    (asyncio, on every write after the client left; the service cleans up and counts them)."""
    import logging

    from medcodec.cli.serve import _LibraryTracebacks

    noise = logging.LogRecord("asyncio", logging.WARNING, __file__, 1, "socket.send() raised exception.", None, None)
    other = logging.LogRecord("asyncio", logging.WARNING, __file__, 1, "Task was destroyed but it is pending!", None,
                              None)  # fmt: skip
    assert _LibraryTracebacks().filter(noise) is False and _LibraryTracebacks().filter(other) is True
