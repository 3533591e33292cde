"""The streaming ZIP writer against Python's zipfile (an independent reader) and `unzip -t` if present."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile

import pytest

from medcodec.delivery.zipstream import ZipStream
from medcodec.errors import InvalidInputError


def _build(entries, **kwargs) -> bytes:
    z = ZipStream(**kwargs)
    out = []
    for name, data in entries:
        out.extend(z.add(name, data))
    out.extend(z.finish())
    data = b"".join(out)
    assert len(data) == z.offset
    return data


def test_entries_round_trip_through_zipfile():
    entries = [(f"series/{i:04d}.dcm", os.urandom(1000 + 37 * i)) for i in range(20)] + [("empty.txt", b"")]
    data = _build(entries)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert [i.filename for i in zf.infolist()] == [n for n, _ in entries]
        for name, content in entries:
            assert zf.read(name) == content
            assert zf.getinfo(name).compress_type == zipfile.ZIP_STORED


@pytest.mark.parametrize("limit", [1, 5000])
def test_zip64_records_read_back(limit):
    # a lowered limit sends every entry (1) or the later ones (5000) through the ZIP64 path
    entries = [(f"{i}.bin", os.urandom(900)) for i in range(12)]
    data = _build(entries, zip64_limit=limit)
    assert b"PK\x06\x06" in data  # zip64 end of central directory record
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        for name, content in entries:
            assert zf.read(name) == content
    if shutil.which("unzip") and limit == 5000:
        path = f"/tmp/medcodec-zip64-{os.getpid()}.zip"
        try:
            with open(path, "wb") as fh:
                fh.write(data)
            assert subprocess.run(["unzip", "-tq", path], capture_output=True).returncode == 0
        finally:
            os.unlink(path)


def test_more_than_65535_entries_use_zip64_count():
    z = ZipStream()
    chunks = []
    for i in range(70_000):
        chunks.extend(z.add(f"{i}", b""))
    chunks.extend(z.finish())
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as zf:
        assert len(zf.infolist()) == 70_000


@pytest.mark.parametrize("name", ["/abs", "../up", "a/../b", "a\\b", "", "a//b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(InvalidInputError):
        list(ZipStream().add(name, b"x"))


def test_duplicate_and_after_finish_refused():
    z = ZipStream()
    list(z.add("a", b"1"))
    with pytest.raises(InvalidInputError):
        list(z.add("a", b"2"))
    list(z.finish())
    with pytest.raises(InvalidInputError):
        list(z.add("b", b"3"))
