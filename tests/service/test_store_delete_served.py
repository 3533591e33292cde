"""``medcodec store delete`` beside a running server: the study is gone from QIDO-RS, WADO-RS and
the archives at once (one catalog, SQLite WAL), the server keeps serving the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pydicom
import pytest

pytestmark = pytest.mark.realdata


def test_delete_while_serving(shared_data: Path, tmp_path: Path, spawn_server) -> None:
    from medcodec.delivery import open_store

    chest = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[:3]
    mr = sorted((shared_data / "mr_head_ge_signa_t1_ctk").glob("*.dcm"))[:2]
    with open_store(tmp_path / "store") as store:
        assert store.ingest(chest + mr, presets=("diagnostic",)).ok
    _, url, _ = spawn_server(tmp_path / "store")
    ct, head = (pydicom.dcmread(f[0], stop_before_pixels=True) for f in (chest, mr))
    archive = f"{url}/studies/{ct.StudyInstanceUID}/archive.zip?preset=diagnostic"
    assert httpx.get(archive, timeout=60).status_code == 200
    run = subprocess.run([sys.executable, "-m", "medcodec.cli.main", "store", "delete", "--store", str(tmp_path / "store"),
                          "--study", str(ct.StudyInstanceUID), "--yes"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0 and "3 instance(s)" in run.stdout, run.stdout + run.stderr
    studies = httpx.get(f"{url}/dicomweb/studies", timeout=60).json()
    assert [s["0020000D"]["Value"][0] for s in studies] == [str(head.StudyInstanceUID)]
    inst = f"{url}/dicomweb/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/instances/{ct.SOPInstanceUID}"
    for path in (inst, inst + "/metadata", inst + "/frames/1"):
        r = httpx.get(path, timeout=60)
        assert r.status_code == 404 and "Traceback" not in r.text, (path, r.status_code)
    assert httpx.get(archive, timeout=60).status_code == 404
    r = httpx.get(f"{url}/studies/{head.StudyInstanceUID}/archive.zip?preset=diagnostic", timeout=60)
    assert r.status_code == 200 and r.content[:2] == b"PK"


def test_startup_says_why_archives_are_live(shared_data: Path, tmp_path: Path, spawn_server) -> None:
    """After a deletion in a study (its archives dropped), a restart logged that the archives were
    'not pre-computed under this medcodec's coding rules', on a store this very build made (an
    outside audit of the documents, 2026-12-03): now it says their instances changed."""
    from medcodec.delivery import open_store

    chest = sorted((shared_data / "ct_chest_lungpetctdx_A0001_philips").glob("*.dcm"))[:3]
    with open_store(tmp_path / "store") as store:
        assert store.ingest(chest, presets=("diagnostic",)).ok
        ds = pydicom.dcmread(chest[1], stop_before_pixels=True)
        store.delete(str(ds.StudyInstanceUID), sop_uid=str(ds.SOPInstanceUID))
    _, _, log = spawn_server(tmp_path / "store")
    text = log.read_text()
    assert "coding rules" not in text
    assert "1 study archive(s) of 1 study(ies) wait to be pre-computed again since their instances changed" in text
