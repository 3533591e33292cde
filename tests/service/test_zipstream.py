"""The streaming ZIP writer against Python's zipfile and Info-ZIP's `unzip -t` (independent readers)."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
import zlib
from pathlib import Path

import pydicom
import pytest

from medcodec.delivery.zipstream import DEFLATED, STORED, ZipStream, dicom_header_length, pack
from medcodec.errors import InvalidInputError
from medcodec.testing.tools import require_tool


def _unzip_ok(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "check.zip"
    path.write_bytes(data)
    run = subprocess.run([require_tool("unzip"), "-tq", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


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
def test_zip64_records_read_back(limit, tmp_path):
    # a lowered limit sends every entry (1) or the later ones (5000) through the ZIP64 path
    entries = [(f"{i}.bin", os.urandom(900)) for i in range(12)]
    data = _build(entries, zip64_limit=limit)
    assert b"PK\x06\x06" in data  # zip64 end of central directory record
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        for name, content in entries:
            assert zf.read(name) == content
    if limit == 5000:
        _unzip_ok(data, tmp_path)


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


# ---------------------------------------------------------------------- header deflated, pixel data stored

_HEADER = b"".join(b"(0010,0010) PN Doe^Jane (0008,0060) CS CT %d " % i for i in range(120))


@pytest.mark.parametrize("fast", [False, True], ids=["zlib", "isa-l"])
@pytest.mark.parametrize("rest", [0, 1, 65535, 65536, 200_001])
def test_packed_entries_inflate_to_their_bytes(rest, fast, tmp_path):
    """A deflated header followed by 0..4 stored blocks (block boundaries included) reads back
    bit for bit with zlib, zipfile and unzip, and is smaller than the data; with zlib's deflate
    and with ISA-L's (``fast``, what live archives use)."""
    data = _HEADER + os.urandom(rest)
    packed = pack(data, deflate=len(_HEADER), level=1, fast=fast)
    assert packed.method == DEFLATED and packed.size == len(data) and packed.csize < len(data)
    assert packed.crc == zlib.crc32(data)
    raw = b"".join(packed.chunks)
    assert len(raw) == packed.csize and zlib.decompress(raw, -15) == data
    z = ZipStream()
    out = b"".join([*z.add("a.dcm", packed), *z.add("b.dcm", data), *z.finish()])
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        assert zf.testzip() is None
        assert zf.read("a.dcm") == data and zf.read("b.dcm") == data
        assert zf.getinfo("a.dcm").compress_type == zipfile.ZIP_DEFLATED
        assert zf.getinfo("a.dcm").compress_size == packed.csize
        assert zf.getinfo("b.dcm").compress_type == zipfile.ZIP_STORED
    _unzip_ok(out, tmp_path)


def test_fast_pack_is_isa_l_and_deflates_a_dicom_header_like_zlib():
    """``fast`` packs with ISA-L (a dependency: live archives must not fall back silently), other
    bytes than zlib's, for the same content and a size within a few percent of zlib's level 1 on
    a real coded file's header (the whole file deflated, stored rest, read back)."""
    from pydicom.data import get_testdata_file

    from medcodec.delivery.presets import PRESETS
    from medcodec.delivery.zipstream import FAST_DEFLATE

    assert FAST_DEFLATE is not None
    data = PRESETS["diagnostic"].encode_instance(Path(get_testdata_file("CT_small.dcm")).read_bytes()).data
    head = dicom_header_length(data)
    slow, fast = pack(data, deflate=head, level=1), pack(data, deflate=head, level=1, fast=True)
    assert fast.method == slow.method == DEFLATED and fast.crc == slow.crc == zlib.crc32(data)
    assert b"".join(fast.chunks) != b"".join(slow.chunks)
    assert zlib.decompress(b"".join(fast.chunks), -15) == data
    assert abs(fast.csize - slow.csize) <= 0.05 * (slow.csize - (len(data) - head))
    assert pack(b"x" * 100, deflate=100, level=9, fast=True).method == DEFLATED  # level clamped to ISA-L's 0-3


def test_pack_stores_what_deflate_cannot_shrink():
    noise = os.urandom(5000)
    assert pack(noise, deflate=5000).method == STORED
    assert pack(noise, deflate=100).method == STORED  # 100 random bytes deflate to more than 100
    assert pack(b"", deflate=10).method == STORED and pack(b"").csize == 0
    text = b"{}" * 1000
    whole = pack(text, deflate=len(text))
    assert whole.method == DEFLATED and zlib.decompress(b"".join(whole.chunks), -15) == text


def test_packed_entries_through_zip64(tmp_path):
    entries = [(f"{i}.dcm", _HEADER + os.urandom(3000)) for i in range(6)]
    z = ZipStream(zip64_limit=9000)
    out = b"".join([c for n, d in entries for c in z.add(n, pack(d, deflate=len(_HEADER)))] + list(z.finish()))
    assert b"PK\x06\x06" in out
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        assert zf.testzip() is None and all(zf.read(n) == d for n, d in entries)
    _unzip_ok(out, tmp_path)


def test_dicom_header_length_is_the_pixel_data_offset():
    from pydicom.data import get_testdata_file

    for name in ("CT_small.dcm", "MR_small.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        data = Path(get_testdata_file(name)).read_bytes()
        n = dicom_header_length(data)
        ds = pydicom.dcmread(io.BytesIO(data[:n]), force=True)  # the header alone parses, without pixels
        assert "PixelData" not in ds and ds.SOPInstanceUID == pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID
        assert data[n : n + 4] == b"\xe0\x7f\x10\x00"
    assert dicom_header_length(b"no pixel data here") == 0
