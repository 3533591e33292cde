"""The catalog on a real PostgreSQL server (``--catalog postgresql+psycopg://...``), started here.

The SQLite catalog inside the store is the default; the SQL is meant to be portable, and this
proves it on the same real data: ingest, duplicates, conflicts, QIDO-style queries, series
statistics, pre-computed archives and ``check()``, with PostgreSQL 15 (Debian ``postgresql``,
installed by ``make sysdeps``) run from a temporary data folder on a free loopback port.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pydicom
import pytest
from delivery_data import CHEST, CONFLICT_A, CONFLICT_B, MR, check_name_matching, series_files

from medcodec.delivery import open_store
from medcodec.testing.tools import require_tool

pytestmark = pytest.mark.realdata


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    return Path(require_tool("initdb")).parent  # skips locally, fails in CI


@pytest.fixture(scope="module")
def postgres_url():
    import psycopg  # a test dependency: missing is a failure, not a skip
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="medcodec-pg-"))
    os.chmod(root, 0o755)
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: its own system user runs it
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "medcodec", "-E", "UTF8", "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(root / "log"), "start",
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off")  # fmt: skip
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=medcodec dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE catalog")
        yield f"postgresql+psycopg://medcodec@127.0.0.1:{port}/catalog"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_store(postgres_url, tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:  # each test starts from an empty catalog
        for (name,) in conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")):
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()
    with open_store(tmp_path / "store", catalog=postgres_url) as store:
        yield store


def test_postgres_catalog_ingest_duplicates_conflicts(shared_data: Path, pg_store) -> None:
    chest = series_files(shared_data, CHEST, 6)
    report = pg_store.ingest(chest, precompress=False)
    assert report.ok and len(report.stored) == 6
    again = pg_store.ingest(chest, precompress=False)
    assert len(again.duplicates) == 6 and not again.stored
    a, b = shared_data / CONFLICT_A, shared_data / CONFLICT_B
    assert pg_store.ingest_bytes(a.read_bytes(), source=str(a)).status == "stored"
    second = pg_store.ingest_bytes(b.read_bytes(), source=str(b))
    assert second.status == "conflict" and "not overwritten" in second.message
    assert pg_store.catalog.engine.dialect.name == "postgresql"


def test_postgres_catalog_queries_and_archives(shared_data: Path, pg_store) -> None:
    chest = series_files(shared_data, CHEST, 8)
    mr = series_files(shared_data, MR, 4)
    report = pg_store.ingest(chest + mr, precompress=True, presets=["diagnostic"], scheduler="threads")
    assert report.ok, report.summary()
    chest_ds = pydicom.dcmread(chest[0], stop_before_pixels=True)
    assert len(pg_store.find_studies({})) == 2
    pid = str(chest_ds.PatientID)
    (found,) = pg_store.find_studies({"PatientID": pid[:4] + "*"})
    assert found["0020000D"]["Value"] == [chest_ds.StudyInstanceUID] and found["00201208"]["Value"] == [8]
    assert len(pg_store.find_studies({"StudyDate": f"{chest_ds.StudyDate}-{chest_ds.StudyDate}"})) >= 1
    assert len(pg_store.find_studies({"ModalitiesInStudy": "MR"})) == 1
    assert [s["0020000D"]["Value"][0] for s in pg_store.find_studies({}, limit=1, offset=1)] != [
        s["0020000D"]["Value"][0] for s in pg_store.find_studies({}, limit=1, offset=0)
    ]
    records = pg_store.instances(chest_ds.StudyInstanceUID)
    assert len(records) == 8
    assert pg_store.series_mapping(records[0].series_uid, "diagnostic") is not None
    archive = pg_store.archive(chest_ds.StudyInstanceUID, None, "diagnostic")
    assert archive is not None and archive.size > 0
    check = pg_store.check()
    assert check.consistent and not check.orphans


def test_postgres_catalog_includefield_summaries_reindex_delete(shared_data: Path, pg_store) -> None:
    """The SQL added on 2026-12-01 (includefield from the headers, study summaries, header
    updates, deletion with its emptied rows) on PostgreSQL as on SQLite."""
    chest = series_files(shared_data, CHEST, 4)
    mr = series_files(shared_data, MR, 2)
    assert pg_store.ingest(chest + mr, precompress=True, presets=["diagnostic"], scheduler="threads").ok
    ct = pydicom.dcmread(chest[0], stop_before_pixels=True)
    (series,) = pg_store.find_series(str(ct.StudyInstanceUID), include={"00180050"})
    assert series["00180050"]["Value"] == [float(ct.SliceThickness)]
    summaries = {s["study_uid"]: s for s in pg_store.catalog.study_summaries()}
    assert summaries[str(ct.StudyInstanceUID)]["instances"] == 4 and "diagnostic" in summaries[str(ct.StudyInstanceUID)]["archives"]
    assert pg_store.reindex() == 0  # headers as this version keeps them already
    done = pg_store.delete(str(ct.StudyInstanceUID))
    assert done.instances == 4 and done.objects >= 4 + 4  # originals, renditions, archives
    assert [s["study_uid"] for s in pg_store.catalog.study_summaries()] != [str(ct.StudyInstanceUID)]
    assert pg_store.find_studies({"StudyInstanceUID": str(ct.StudyInstanceUID)}) == []
    check = pg_store.check()
    assert check.consistent and not check.orphans


def test_postgres_catalog_lossy_instances(shared_data: Path, pg_store) -> None:
    """Catalog.lossy_instances (LIKE over the stored headers) on PostgreSQL as on SQLite: the
    near-lossless JPEG-LS CT (flag 01, a syntax that may be either) and the lossy JPEG 2000 MR are
    lossy, the uncompressed MR is not."""
    names = ["ct_CT1_512x512_signed16_jpegls_near_lossless.dcm", "mr_MR2_1024x1024_12bit_j2k_lossy.dcm",
             "mr_384x384_12bit_unsigned.dcm"]  # fmt: skip
    paths = [shared_data / "singles" / n for n in names]
    assert pg_store.ingest(paths, precompress=False).ok
    sops = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths]
    assert pg_store.catalog.lossy_instances(sops) == set(sops[:2])


def test_postgres_catalog_matches_person_names_as_sqlite_does(pg_store) -> None:
    """The same name keys as on SQLite (``test_name_matching.py``)."""
    check_name_matching(pg_store)
