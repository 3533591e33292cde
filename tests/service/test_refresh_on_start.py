"""A server catches up at start with the received studies a stop left un-pre-computed."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from pydicom.data import get_testdata_file

from medcodec.delivery import open_store
from medcodec.delivery.catalog import SOURCE_STOW
from medcodec.testing.server import start_server, stop_server


@pytest.mark.realdata
def test_a_study_stowed_before_a_stop_is_precomputed_after_the_restart(tmp_path: Path) -> None:
    """The state a stop leaves when STOW-RS stored an instance and the server went down before its
    refresher ran: the instance in the catalog, no archive. Until 2026-12-03 such a study was
    streamed live for good, until someone ran ``medcodec ingest --refresh``."""
    path = tmp_path / "store"
    with open_store(path, create=True) as store:
        stowed = store.ingest_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes(), source=SOURCE_STOW)
        deferred = store.ingest([Path(get_testdata_file("MR_small.dcm"))], precompress=False).studies[0]
        assert store.archive(stowed.study_uid, None, "diagnostic") is None
    proc, url, _ = start_server(path)
    try:
        deadline = time.monotonic() + 120
        while httpx.get(url + "/health").json()["precompute_completed"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        health = httpx.get(url + "/health").json()
        assert health["precompute_completed"] == 1 and health["precompute_failed"] == 0, health
        r = httpx.get(f"{url}/studies/{stowed.study_uid}/archive.zip?preset=diagnostic")
        assert r.status_code == 200 and r.headers.get("etag", "").startswith('"')  # from storage
        assert r.headers.get("accept-ranges") == "bytes"
        r = httpx.get(f"{url}/studies/{deferred}/archive.zip?preset=diagnostic", headers={"Range": "bytes=0-9"})
        assert r.status_code == 200 and "etag" not in r.headers  # deferred: still live, as asked
    finally:
        stop_server(proc)
