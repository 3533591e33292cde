"""``medcodec fetch`` against servers that lie, loop, bomb or attack the terminal (an outside audit,
2026-12-05): each case is a small HTTP server on 127.0.0.1 that this test runs, bounded in time."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from medcodec.errors import InvalidInputError
from medcodec.service.client import FetchError, IntegrityError, fetch, verify_archive


def _archive(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    manifest = {"files": [{"file": name, "bytes": len(data)} for name, data in entries.items()]}
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps(manifest))
    return buf.getvalue()


GOOD = _archive({"s/a.dcm": b"DICM" * 1000})


@contextmanager
def _serving(answer: Callable[[http.server.BaseHTTPRequestHandler, int], None]) -> Iterator[tuple[str, list[int]]]:
    """A server whose every GET is ``answer(handler, n)`` (n: the request's number from 0)."""
    count: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            count.append(1)
            if len(count) > 50:  # a client that never gives up: stop answering, the test fails below
                self.send_error(410)
                return
            try:
                answer(self, len(count) - 1)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", count
    finally:
        server.shutdown()
        server.server_close()


def _send(h: http.server.BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    h.send_response(status)
    for key, value in headers.items():
        h.send_header(key.replace("_", "-"), value)
    h.end_headers()
    h.wfile.write(body)


def test_a_server_that_ignores_range_and_cuts_is_given_up_on(tmp_path: Path) -> None:
    """A 200 from the first byte after every Range, cut before its end: the same bytes again were
    counted as progress and the client never gave up (121 downloads in 30 s)."""

    def answer(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(GOOD)))
        h.send_header("ETag", '"' + hashlib.sha256(GOOD).hexdigest() + '"')
        h.end_headers()
        h.wfile.write(GOOD[: len(GOOD) // 2])  # and the connection closes

    with _serving(answer) as (url, count), pytest.raises(FetchError, match="in a row"):
        fetch(url, study="1.2.3", out_dir=tmp_path, retries=2, timeout=5)
    assert len(count) <= 5, len(count)


def test_error_answers_are_read_so_far_and_shown_without_terminal_codes(tmp_path: Path) -> None:
    """An endless 500 took the client to 1.6 GB; a JSON detail of 5 MB became one error line; escape
    sequences in it set the terminal's title and cleared its screen."""

    def answer(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        h.send_response(500)
        h.send_header("Content-Type", "application/json")
        h.end_headers()
        h.wfile.write(b'{"detail": "bad \\u001b]0;PWNED\\u0007\\u001b[2J' + b"x" * 5_000_000 + b'"}')
        for _ in range(200):  # then more and more: 200 MB if read to the end
            h.wfile.write(b" " * (1 << 20))

    with _serving(answer) as (url, _), pytest.raises(FetchError) as info:
        fetch(url, study="1.2.3", out_dir=tmp_path, retries=0, timeout=5)
    text = str(info.value)
    assert "HTTP 500" in text and len(text) < 500 and "\x1b" not in text and "\x07" not in text, text[:200]


def test_an_encoded_answer_is_refused_not_inflated(tmp_path: Path) -> None:
    """httpx decoded a gzip Content-Encoding: 1 MB on the wire became 1 GB in the .part."""
    bomb = gzip.compress(b"\0" * (64 << 20))

    def answer(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        _send(h, 200, bomb, Content_Length=str(len(bomb)), Content_Encoding="gzip")

    with _serving(answer) as (url, _), pytest.raises(FetchError, match="gzip-encoded"):
        fetch(url, study="1.2.3", out_dir=tmp_path, retries=0, timeout=5)
    assert not list(tmp_path.iterdir())  # nothing kept


def test_busy_answers_are_retried_after_their_retry_after(tmp_path: Path) -> None:
    """The server's own 503 + Retry-After (out of resources, no live slot) ended the run at once."""

    def answer(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        if n < 2:
            _send(h, 503, b'{"detail": "busy"}', Content_Type="application/json", Retry_After="1")
        else:
            _send(h, 200, GOOD, Content_Length=str(len(GOOD)))

    notes: list[str] = []
    with _serving(answer) as (url, count):
        path = fetch(url, study="1.2.3", out_dir=tmp_path, retries=3, timeout=5, notice=notes.append)
    assert path.read_bytes() == GOOD and len(count) == 3 and "trying again in 1 s" in notes[0]


def test_a_token_a_header_cannot_carry_is_refused_unsaid_and_a_preset_cannot_name_a_folder(tmp_path: Path) -> None:
    """A token with the CR of a Windows .env file was printed in the error message (after pointless
    retries); `--preset x/../../y` wrote the archive outside the output folder."""
    with pytest.raises(InvalidInputError) as info:
        fetch("http://127.0.0.1:1", study="1.2.3", out_dir=tmp_path, token="s3cret-TOKEN-xyz\r")
    assert "s3cret" not in str(info.value)
    with pytest.raises(InvalidInputError, match="not a preset name"):
        fetch("http://127.0.0.1:1", study="1.2.3", out_dir=tmp_path / "o", preset="x/../../escape")


def test_an_etag_that_cannot_be_sent_back_is_not_kept(tmp_path: Path) -> None:
    """A non-ASCII ETag and a cut made every later run fail with an internal error before any request."""

    def answer(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(GOOD)))
        h.send_header("ETag", '"caf\xe9"')  # sent as latin-1, as HTTP allows
        h.end_headers()
        h.wfile.write(GOOD if n else GOOD[:100])

    with _serving(answer) as (url, _):
        path = fetch(url, study="1.2.3", out_dir=tmp_path, retries=2, timeout=5)
    assert path.read_bytes() == GOOD


def _overlapping_zip(data: bytes, names: list[str]) -> bytes:
    """A ZIP of one deflated block that every central directory entry in ``names`` points at (the
    overlap bomb: n entries, one block)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = comp.compress(data) + comp.flush()
    crc = zlib.crc32(data)
    first = names[0].encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflated), len(data), len(first), 0)
    body = local + first + deflated
    central = b""
    for name in names:
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(deflated), len(data),
                               len(name.encode()), 0, 0, 0, 0, 0, 0) + name.encode()  # fmt: skip
    return body + central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(names), len(names), len(central),
                                        len(body), 0)  # fmt: skip


def test_zip_bombs_duplicates_and_entries_that_are_no_file_are_refused(tmp_path: Path) -> None:
    """Entries pointing at one deflated block (5 TiB from 1 MB of directory), a name twice (the one
    unpacked not the one checked), a manifest that lies about sizes, an entry '.' or a file that is
    also a folder (it left a staging file that blocked every later --extract)."""
    (tmp_path / "overlap.zip").write_bytes(_overlapping_zip(b"x" * 100, ["a.dcm", "b.dcm"]))
    with pytest.raises(IntegrityError, match="overlaps"):
        verify_archive(tmp_path / "overlap.zip")

    def zipped(name: str, entries: list[tuple[str, bytes]], listed: list[dict[str, object]]) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as zf:
            for entry, data in entries:
                zf.writestr(entry, data)
            zf.writestr("manifest.json", json.dumps({"files": listed}))
        return path

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it is asked to write
        twice = zipped("twice.zip", [("s/a.dcm", b"1"), ("s/a.dcm", b"2")], [{"file": "s/a.dcm"}])
    with pytest.raises(IntegrityError, match="more than once"):
        verify_archive(twice)
    with pytest.raises(IntegrityError, match="the manifest says 5"):
        verify_archive(zipped("lies.zip", [("a.dcm", b"x" * 1000)], [{"file": "a.dcm", "bytes": 5}]))
    with pytest.raises(IntegrityError, match="no file of its own"):
        verify_archive(zipped("dot.zip", [(".", b"x")], [{"file": "."}]))
    with pytest.raises(IntegrityError, match="no file of its own"):
        verify_archive(zipped("clash.zip", [("s", b"x"), ("s/a.dcm", b"y")], [{"file": "s"}, {"file": "s/a.dcm"}]))
    assert verify_archive(zipped("fine.zip", [("s/a.dcm", b"x")], [{"file": "s/a.dcm", "bytes": 1}]))["files"] == 1


def test_an_archive_larger_than_the_free_space_is_not_begun(tmp_path: Path) -> None:
    """A Content-Length of 10^15 (or a body with no end) filled the disk and kept the junk "to resume"."""

    def answer(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        _send(h, 200, GOOD, Content_Length=str(10**15), ETag='"' + "0" * 64 + '"')

    with _serving(answer) as (url, count), pytest.raises(FetchError, match="needs 1000000000000000 bytes"):
        fetch(url, study="1.2.3", out_dir=tmp_path, retries=2, timeout=5)
    assert len(count) == 1 and not list(tmp_path.iterdir())  # refused before a byte: nothing to resume
