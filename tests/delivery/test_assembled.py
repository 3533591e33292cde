"""The ``original`` archive assembled from the stored files (``delivery/assembled.py``): the same
bytes at every request, read at any offset, ZIP64, an ETag that follows the content, CRC-32s
recorded at ingest or read once for a store made before."""

from __future__ import annotations

import io
import random
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from delivery_data import CHEST, HEAD, MR, series_files, store  # noqa: F401 (fixture)

from medcodec.delivery import assembled
from medcodec.delivery import store as store_module
from medcodec.delivery.catalog import object_crcs
from medcodec.errors import DeliveryError

pytestmark = pytest.mark.realdata


def _study(store) -> str:  # type: ignore[no-untyped-def]
    (found,) = store.find_studies({})
    return str(found["0020000D"]["Value"][0])


def _read(store, archive) -> bytes:  # type: ignore[no-untyped-def]
    with store.open_archive(archive) as fh:
        return fh.read()


def test_assembled_archive_reads_back_at_any_offset(store, shared_data: Path):
    files = series_files(shared_data, MR)[:9]
    assert store.ingest(files, precompress=False).ok
    study = _study(store)
    archive = store.original_archive(study)
    assert archive is not None and archive.files == 9 and archive.etag.startswith("a-")
    data = _read(store, archive)
    assert len(data) == archive.size
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        stored = sorted(zf.read(n) for n in zf.namelist() if n != "manifest.json")
    assert stored == sorted(p.read_bytes() for p in files)
    rng = random.Random(7)
    with store.open_archive(archive) as fh:
        for _ in range(300):  # reads that start and end inside made headers, files and the directory
            start, n = rng.randrange(archive.size), rng.choice([1, 29, 4096, 70_000, 400_000])
            fh.seek(start)
            assert fh.read(n) == data[start : start + n]
        fh.seek(-22, io.SEEK_END)
        assert fh.read() == data[-22:]
    assert _read(store, store.original_archive(study)) == data  # made again from the catalog: the same bytes


def test_zip64_layout_reads_back(store, shared_data: Path):
    files = series_files(shared_data, MR)[:4]
    assert store.ingest(files, precompress=False).ok
    study = _study(store)
    records = store.instances(study)
    crcs = store.catalog.crc32s([r.sha256 for r in records])
    small = assembled.assemble(
        records, crcs, set(), study_uid=study, series_uid=None, changed_at=0.0, zip64_limit=100_000
    )  # every file past the limit: ZIP64 extra fields and end records
    data = _read(store, small)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None and len(zf.namelist()) == 5
    assert b"PK\x06\x06" in data[-200:]  # the ZIP64 end of central directory record
    normal = store.original_archive(study)
    assert normal is not None and normal.etag != small.etag and normal.size < small.size


def test_etag_follows_content_order_and_manifest(store, shared_data: Path):
    assert store.ingest(series_files(shared_data, MR)[:3], precompress=False).ok
    study = _study(store)
    records = store.instances(study)
    crcs = store.catalog.crc32s([r.sha256 for r in records])

    def etag(recs, lossy=frozenset()):  # type: ignore[no-untyped-def]
        return assembled.assemble(recs, crcs, set(lossy), study_uid=study, series_uid=None, changed_at=0).etag

    base = etag(records)
    assert etag(records) == base
    assert etag(records[::-1]) != base  # order
    assert etag(records, {records[0].sop_uid}) != base  # the manifest says a file is lossy
    other = replace(records[1], sha256="0" * 64)
    crcs["0" * 64] = crcs[records[1].sha256]
    assert etag([records[0], other, records[2]]) != base  # another file of the same size and CRC
    assert assembled.assemble(records, crcs, set(), study_uid=study, series_uid=None, changed_at=5).etag == base


def test_the_study_changes_and_the_archive_with_it(store, shared_data: Path):
    files = series_files(shared_data, HEAD)[:3]
    assert store.ingest(files[:2], precompress=False).ok
    study = _study(store)
    first = store.original_archive(study)
    assert store.ingest(files[2:], precompress=False).ok
    second = store.original_archive(study)
    assert second.files == 3 and second.etag != first.etag and second.created_at >= first.created_at
    store.delete(study, sop_uid=store.instances(study)[0].sop_uid)
    third = store.original_archive(study)
    assert third.files == 2 and third.etag not in (first.etag, second.etag)
    assert third.created_at > second.created_at  # a deletion moves Last-Modified on, never back


def test_crc32s_of_an_older_store_are_read_once_and_recorded(store, shared_data: Path, monkeypatch):
    files = series_files(shared_data, CHEST)[:3]
    assert store.ingest(files, precompress=False).ok
    study = _study(store)
    want = _read(store, store.original_archive(study))
    with store.catalog.engine.begin() as conn:  # as a store made before 2026-12-03: no CRC-32 recorded
        conn.execute(object_crcs.delete())
    monkeypatch.setattr(store_module, "ASSEMBLE_CRC_BUDGET", sum(p.stat().st_size for p in files) - 1)
    assert store.original_archive(study) is None  # too much to read before answering: served live
    monkeypatch.undo()
    archive = store.original_archive(study)
    assert archive is not None and _read(store, archive) == want
    assert len(store.catalog.crc32s([r.sha256 for r in store.instances(study)])) == 3  # recorded now


def test_a_damaged_object_is_a_delivery_error_not_short_bytes(store, shared_data: Path):
    assert store.ingest(series_files(shared_data, MR)[:2], precompress=False).ok
    study = _study(store)
    archive = store.original_archive(study)
    record = store.instances(study)[1]
    path = Path(store.objects.root) / record.path
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:1000])  # truncated behind the catalog's back
    with store.open_archive(archive) as fh, pytest.raises(DeliveryError, match="shorter than its catalog size"):
        fh.read()


def test_gc_forgets_the_crc32_of_deleted_objects(store, shared_data: Path):
    assert store.ingest(series_files(shared_data, MR)[:2], precompress=False).ok
    study = _study(store)
    shas = [r.sha256 for r in store.instances(study)]
    store.delete(study, sop_uid=store.instances(study)[0].sop_uid)
    assert len(store.catalog.crc32s(shas)) == 2
    store.collect_garbage(min_age=0)
    assert len(store.catalog.crc32s(shas)) == 1


def test_reindex_records_the_crc32s_an_older_store_lacks(store, shared_data: Path):
    assert store.ingest(series_files(shared_data, MR)[:3], precompress=False).ok
    shas = [r.sha256 for r in store.instances(_study(store))]
    want = store.catalog.crc32s(shas)
    with store.catalog.engine.begin() as conn:
        conn.execute(object_crcs.delete())
    store.reindex()
    assert store.catalog.crc32s(shas) == want and len(want) == 3


def test_a_crc32_is_recorded_only_from_the_bytes_ingested(store, shared_data: Path):
    """An outside audit (2026-12-03, F2): on a store without CRC rows, the first request recorded the
    CRC-32 of whatever the file held, so a damaged file passed every later check for good."""
    assert store.ingest(series_files(shared_data, MR)[:3], precompress=False).ok
    study = _study(store)
    records = store.instances(study)
    with store.catalog.engine.begin() as conn:
        conn.execute(object_crcs.delete())
    path = Path(store.objects.root) / records[1].path
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # one bit, the size unchanged
    path.write_bytes(bytes(data))
    with pytest.raises(DeliveryError, match="not the file ingested"):
        store.original_archive(study)
    assert set(store.catalog.crc32s([r.sha256 for r in records])) == set()  # nothing recorded


def test_first_requests_read_each_file_once_and_ranges_read_what_they_cover(store, shared_data: Path, monkeypatch):
    import concurrent.futures

    assert store.ingest(series_files(shared_data, MR)[:4], precompress=False).ok
    study = _study(store)
    with store.catalog.engine.begin() as conn:
        conn.execute(object_crcs.delete())
    reads: list[str] = []
    verified = store._verified_crc32
    monkeypatch.setattr(store, "_verified_crc32", lambda record: reads.append(record.sha256) or verified(record))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # the first requests after an upgrade, at once
        tags = set(pool.map(lambda _: store.original_archive(study).etag, range(8)))
    assert len(tags) == 1 and sorted(reads) == sorted(r.sha256 for r in store.instances(study))
    archive = store.original_archive(study)
    opened: list[int] = []
    real_open = store.objects.open

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def read(self, n=-1):
            got = self.fh.read(n)
            opened.append(len(got))
            return got

        def __getattr__(self, name):
            return getattr(self.fh, name)

    monkeypatch.setattr(store.objects, "open", lambda rel: Counting(real_open(rel)))
    with store.open_archive(archive) as fh:
        fh.seek(archive.parts[1].offset + 1000)
        assert len(fh.read(1)) == 1
    assert sum(opened) == 1  # one byte of one file, no read-ahead buffer
