"""The assembled ``original`` archive at its edges, over real HTTP (a uvicorn subprocess on a store of
its own): an outside audit's findings (2026-12-03, docs/audits.md) F1 dates within the second of a
change, F3 a damaged store answered before any byte, F4 / F7 ``medcodec fetch`` after a failed
unpack and with a ``.part`` longer than the archive."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from conftest import start_server, stop_server  # tests/service/conftest.py
from medcodec.service.client import FetchError, fetch

pytestmark = pytest.mark.realdata

HEAD = "ct_head_phantom_philips_ingenuity"


def _head_store(shared_data: Path, store_path: Path, count: int) -> tuple[str, list]:
    """The first ``count`` head CT slices ingested, nothing pre-computed: (study UID, records)."""
    from medcodec.delivery import open_store

    with open_store(store_path) as store:
        report = store.ingest(sorted((shared_data / HEAD).glob("*.dcm"))[:count], precompress=False)
        assert report.ok
        study = report.outcomes[0].study_uid
        return study, store.instances(study)


@pytest.fixture()
def served(shared_data: Path, tmp_path: Path):
    store_path = tmp_path / "store"
    study, records = _head_store(shared_data, store_path, 6)
    proc, url, _log = start_server(store_path)
    try:
        yield url, study, store_path, records
    finally:
        stop_server(proc)


def _set_changed_at(store_path: Path, study: str, when: float) -> None:
    engine = sa.create_engine(f"sqlite:///{store_path / 'catalog.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE studies SET updated_at = :t WHERE study_uid = :s"), {"t": when, "s": study})
    engine.dispose()


def test_dates_are_validators_only_once_their_second_is_over(served) -> None:
    url, study, store_path, _ = served
    path = f"{url}/studies/{study}/archive.zip?preset=original"
    full = httpx.get(path, timeout=60)
    stamp = full.headers["last-modified"]  # the study changed seconds ago: a strong date
    assert httpx.get(path, headers={"If-Modified-Since": stamp}, timeout=60).status_code == 304
    part = httpx.get(path, headers={"Range": "bytes=10-19", "If-Range": stamp}, timeout=60)
    assert part.status_code == 206 and part.content == full.content[10:20]
    # the study changes now (as a STOW-RS would: in the second the request comes): its date could
    # name two archives until the second is over, so it is neither sent nor taken
    _set_changed_at(store_path, study, time.time() + 30)
    now = httpx.get(path, timeout=60)
    assert now.status_code == 200 and "last-modified" not in now.headers and now.headers["etag"] == full.headers["etag"]
    assert httpx.get(path, headers={"If-Modified-Since": stamp}, timeout=60).status_code == 200
    whole = httpx.get(path, headers={"Range": "bytes=10-19", "If-Range": stamp}, timeout=60)
    assert whole.status_code == 200 and whole.content == full.content
    # the ETag still validates
    assert httpx.get(path, headers={"If-None-Match": full.headers["etag"]}, timeout=60).status_code == 304


def test_a_damaged_store_is_an_error_before_any_byte(served, tmp_path: Path) -> None:
    url, study, store_path, records = served
    victim = store_path / records[3].path
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes()[:5000])  # truncated behind the catalog's back
    r = httpx.get(f"{url}/studies/{study}/archive.zip?preset=original", timeout=60)
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/json")
    assert "store check" in r.json()["detail"] and records[3].path in r.json()["detail"]
    # a range that does not cover the damaged file is still answered
    first = httpx.get(f"{url}/studies/{study}/archive.zip?preset=original", headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content.startswith(b"PK\x03\x04")
    with pytest.raises(FetchError, match="HTTP 500.*store check"):
        fetch(url, study=study, preset="original", out_dir=tmp_path / "dl", retries=1)


def test_fetch_extract_after_a_failed_unpack_and_a_part_longer_than_the_archive(served, tmp_path: Path,
                                                                                 tmpfs) -> None:  # fmt: skip
    url, study, _, _ = served
    name = f"{study}_original.zip"
    size = len(httpx.get(f"{url}/studies/{study}/archive.zip?preset=original", timeout=60).content)
    disk = tmpfs(2 * (size // 1024) + 256)  # room for the archive and a filler, not for unpacking too
    out = disk / "dl"
    out.mkdir()
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - size - 64 * 1024))
    with pytest.raises(FetchError, match="unpacking it.*free the space"):
        fetch(url, study=study, preset="original", out_dir=out, extract=True)
    assert (out / name).exists() and (out / (name + ".etag")).exists()
    filler.unlink()
    before = (out / name).stat().st_mtime_ns
    assert fetch(url, study=study, preset="original", out_dir=out, extract=True) == out / name
    assert (out / name).stat().st_mtime_ns == before  # unpacked from the kept archive, not fetched again
    assert len(list((out / name[:-4]).rglob("*.dcm"))) == 6 and not (out / (name + ".etag")).exists()
    # a .part with bytes after the archive's end, under the current ETag: not kept as verified
    full = httpx.get(f"{url}/studies/{study}/archive.zip?preset=original", timeout=60)
    other = tmp_path / "other"
    other.mkdir()
    (other / (name + ".part")).write_bytes(full.content + b"junk after the end")
    (other / (name + ".part.etag")).write_text(full.headers["etag"])
    assert fetch(url, study=study, preset="original", out_dir=other).read_bytes() == full.content


@pytest.mark.parametrize("query", ["preset=original", "preset=diagnostic&live=1"])
def test_a_file_lost_during_a_download_cuts_it_with_one_log_line(shared_data: Path, tmp_path: Path, query: str) -> None:
    """Stored files deleted while an archive is sent (the check before answering passed): the answer
    can only be cut. The client must see it short (Content-Length, or no last chunk), the server
    log one line naming the object (no traceback), and the server go on serving."""
    store_path = tmp_path / "store"
    study, records = _head_store(shared_data, store_path, 40)  # ~21 MB: more than loopback's socket buffers hold
    proc, url, log = start_server(store_path)
    try:
        with httpx.stream("GET", f"{url}/studies/{study}/archive.zip?{query}", timeout=60) as r:
            assert r.status_code == 200
            chunks = r.iter_bytes()
            received = len(next(chunks))
            for record in records[20:]:  # wherever the archive lays them out, some are not read yet
                (store_path / record.path).unlink()
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in chunks:
                    received += len(chunk)
        assert 0 < received < sum(rec.size for rec in records)
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        stop_server(proc)
    text = log.read_text()
    assert "answer cut after it had started" in text and "missing from the store" in text
    assert "Traceback" not in text and "Exception in ASGI application" not in text
