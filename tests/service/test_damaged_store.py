"""A store damaged behind the catalog's back, over real HTTP (a uvicorn subprocess): an outside
audit (2026-12-03, docs/audits.md) found truncated originals sent as complete 200 answers by the
live archives, WADO-RS and WADO-URI, a 406 for them on /frames, a deleted rendition cutting a
WADO-RS answer whose original was intact, and a bug raised while an error was handled logged as
"answer cut". Every stored object is now opened with its catalog length checked
(``ObjectStore.open(rel, size)``): a damaged one is a JSON 500 naming ``medcodec store check``
before any byte, or a cut answer and one ERROR line after them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pydicom
import pytest

from conftest import start_server, stop_server  # tests/service/conftest.py

pytestmark = pytest.mark.realdata

HEAD = "ct_head_phantom_philips_ingenuity"
JPEG_12 = "1.2.840.10008.1.2.4.51"


@pytest.fixture()
def damaged(shared_data: Path, tmp_path: Path):
    """4 head CT slices, ``diagnostic`` pre-computed; the test damages the store, then the server starts."""
    from medcodec.delivery import open_store

    store_path = tmp_path / "store"
    with open_store(store_path) as store:
        report = store.ingest(sorted((shared_data / HEAD).glob("*.dcm"))[:4])
        assert report.ok
        study = report.outcomes[0].study_uid
        records = store.instances(study)
        renditions = [store.rendition(r, "diagnostic") for r in records]
    assert all(renditions)
    started: list = []

    def start():
        proc, url, log = start_server(store_path)
        started.append(proc)
        return url, log

    yield store_path, study, records, renditions, start
    for proc in started:
        stop_server(proc)


def _truncate(path: Path) -> None:
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_truncated_originals_are_a_500_naming_store_check_not_a_complete_answer(damaged) -> None:
    store_path, study, records, _, start = damaged
    for r in records:
        _truncate(store_path / r.path)
    url, log = start()
    sop = records[0]
    asks = [
        f"{url}/studies/{study}/archive.zip?preset=original&live=1",
        f"{url}/studies/{study}/archive.zip?preset=diagnostic&live=1",
        f"{url}/dicomweb/studies/{study}",  # multipart: its first part produced before the status line
        f"{url}/dicomweb/studies/{study}/series/{sop.series_uid}/instances/{sop.sop_uid}",
        f"{url}/dicomweb/studies/{study}/series/{sop.series_uid}/instances/{sop.sop_uid}/frames/1",
        f"{url}/dicomweb/studies/{study}/series/{sop.series_uid}/instances/{sop.sop_uid}/rendered",
    ]
    for ask in asks:
        r = httpx.get(ask, timeout=60)
        assert r.status_code == 500, (ask, r.status_code, r.content[:200])
        assert r.headers["content-type"].startswith("application/json"), ask
        assert "store check" in r.json()["detail"] and "where the catalog says" in r.json()["detail"], ask
    text = log.read_text()
    assert "Traceback" not in text


def test_a_lost_rendition_is_encoded_again_from_its_original(damaged) -> None:
    store_path, study, records, renditions, start = damaged
    (store_path / renditions[0].path).unlink()
    _truncate(store_path / renditions[1].path)
    url, log = start()
    r = httpx.get(f"{url}/dicomweb/studies/{study}",
                  headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_12}'},
                  timeout=60)  # fmt: skip
    assert r.status_code == 200
    boundary = r.headers["content-type"].split("boundary=")[1].strip('"')
    parts = [p for p in r.content.split(b"--" + boundary.encode()) if b"\r\n\r\n" in p]
    assert len(parts) == len(records)
    for part in parts:
        ds = pydicom.dcmread(io.BytesIO(part.split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n")))
        assert ds.file_meta.TransferSyntaxUID == JPEG_12 and ds.pixel_array.shape == (512, 512)
    z = httpx.get(f"{url}/studies/{study}/archive.zip?preset=diagnostic&live=1", timeout=60)
    assert z.status_code == 200 and len(zipfile.ZipFile(io.BytesIO(z.content)).namelist()) == len(records) + 1
    text = log.read_text()
    assert "encoded from the original instead" in text and "Traceback" not in text


@pytest.mark.parametrize("preset", ["diagnostic", "preview"])
def test_one_truncated_original_in_a_live_archive_is_never_a_complete_answer(damaged, preset: str) -> None:
    """The encoder processes read originals too (a re-audit: they did not check the length, so a
    truncated one was passed through as undecodable and the ZIP came complete, nothing logged)."""
    store_path, study, records, _, start = damaged
    victim = sorted(records, key=lambda r: r.instance_number or 0)[2]  # not the first: the stream has begun
    _truncate(store_path / victim.path)
    url, log = start()
    with httpx.stream("GET", f"{url}/studies/{study}/archive.zip?preset={preset}&live=1", timeout=60) as r:
        if r.status_code == 500:  # found before the status line (the archive's order put it first)
            r.read()
            assert "store check" in r.json()["detail"]
        else:
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                r.read()
    text = log.read_text()
    assert victim.path in text and "where the catalog says" in text and "Traceback" not in text


def test_a_lost_precomputed_archive_is_answered_live(damaged) -> None:
    """A pre-computed ZIP deleted or truncated behind the catalog's back was a 200 with its length
    and none of its bytes (a re-audit): the originals are intact, so the answer is made live."""
    from medcodec.delivery import open_store

    store_path, study, records, _, start = damaged
    with open_store(store_path) as store:
        archive = store.archive(study, None, "diagnostic")
    assert archive is not None
    _truncate(store_path / archive.path)
    url, log = start()
    r = httpx.get(f"{url}/studies/{study}/archive.zip?preset=diagnostic", timeout=60)
    assert r.status_code == 200 and r.headers["x-medcodec-archive"] == "live"
    assert len(zipfile.ZipFile(io.BytesIO(r.content)).namelist()) == len(records) + 1
    gone = httpx.get(f"{url}/studies/{study}/archive.zip?preset=diagnostic&version={archive.etag}", timeout=60)
    assert gone.status_code == 500 and "store check" in gone.json()["detail"]
    text = log.read_text()
    assert "is missing or damaged in the store" in text and "Traceback" not in text


def test_only_a_cut_answer_is_unwrapped_to_its_cause() -> None:
    """A bug raised while a medcodec error was handled (its implicit context) keeps its traceback."""
    from medcodec.errors import DeliveryError, NotFoundError
    from medcodec.service.errors import codec_cause

    cause = DeliveryError("object x is 5 bytes where the catalog says 9")
    try:
        try:
            raise cause
        except DeliveryError as exc:
            raise RuntimeError("Caught handled exception, but response already started.") from exc
    except RuntimeError as wrapped:
        assert codec_cause(wrapped) is cause
    try:
        try:
            raise NotFoundError("cache entry absent")
        except NotFoundError:
            raise TypeError("a bug in the handler") from None
    except TypeError as bug:
        assert codec_cause(bug) is None
    try:
        try:
            raise NotFoundError("cache entry absent")
        except NotFoundError:
            {}["missing"]
    except KeyError as bug:
        assert codec_cause(bug) is None
