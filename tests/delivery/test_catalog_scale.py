"""The catalog stays usable as it grows: indexes on what QIDO-RS and C-FIND match and order on, a
constant number of statements per page, pages sorted on keys, answers bounded.

An outside audit (2026-12-02) put 2,001 studies / 23,000 instances into one store and found:
full table scans for PatientID, AccessionNumber, Modality, SOPClassUID and the default order;
3 statements per study of every answer (301 for a page of 100); each instance page sorting the
whole catalog with its headers (paging through 23,000 instances: 267 s, 95x the 2,000-instance
time); C-FIND holding every match before its first answer; QIDO without ``limit`` unbounded.
These tests run on a small real store (SQLite, a real file): what they check does not depend on
size (a plan, a statement count, a page's contents), so they fail on the code before.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pydicom
import pytest
import sqlalchemy as sa
from delivery_data import CHEST, series_files

from medcodec.delivery import open_store

pytestmark = pytest.mark.realdata

STUDIES = 12
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def many(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """A store of :data:`STUDIES` studies (2 series of 2 instances each, real chest CT pixels), each
    its own patient and accession number; not pre-computed."""
    root = tmp_path_factory.mktemp("many")
    source = series_files(shared_data, CHEST, 1)[0]
    files = []
    for s in range(STUDIES):
        for se in range(2):
            for i in range(2):
                ds = pydicom.dcmread(source)
                ds.PatientID, ds.PatientName = f"PID{s:03d}", f"Patient^{s:03d}"
                ds.AccessionNumber = f"ACC{s:03d}"
                ds.StudyDate = f"2026{1 + s % 12:02d}{1 + s:02d}"
                ds.StudyInstanceUID = f"2.25.{1000 + s}"
                ds.SeriesInstanceUID = f"2.25.{1000 + s}{se}"
                ds.SeriesNumber, ds.InstanceNumber = se + 1, i + 1
                ds.SOPInstanceUID = f"2.25.{1000 + s}{se}{i}"
                ds.Modality = "CT" if se == 0 else "MR"
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                path = root / f"{s}_{se}_{i}.dcm"
                path.write_bytes(buffer.getvalue())
                files.append(path)
    with open_store(root / "store") as store:
        report = store.ingest(files, precompress=False)
        assert report.ok and len(report.stored) == len(files), report.summary()
    return root / "store"


def _statements(store, call) -> list[tuple[str, object]]:
    """The SQL statements (and their parameters) ``call()`` runs on the store's catalog."""
    seen: list[tuple[str, object]] = []

    def hook(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    sa.event.listen(store.catalog.engine, "before_cursor_execute", hook)
    try:
        call()
    finally:
        sa.event.remove(store.catalog.engine, "before_cursor_execute", hook)
    return seen


def test_a_page_costs_the_same_number_of_statements_whatever_its_length(many: Path) -> None:
    with open_store(many) as store:
        for level in ("study", "series"):
            small = _statements(store, lambda level=level: store.catalog.find(level, {}, limit=2))
            large = _statements(store, lambda level=level: store.catalog.find(level, {}, limit=100))
            assert len(large) == len(small) <= 4, (level, len(small), len(large))
        studies = store.catalog.find("study", {}, limit=100)
        assert len(studies) == STUDIES
        for item in studies:  # the grouped counts are each study's own
            assert item["00201206"]["Value"] == [2] and item["00201208"]["Value"] == [4]
            assert item["00080061"]["Value"] == ["CT", "MR"]


def test_matching_keys_and_the_default_order_use_indexes(many: Path) -> None:
    """EXPLAIN QUERY PLAN of every statement a search runs: the key's own index is searched, and no
    table is scanned (before: ``SCAN studies`` for PatientID and AccessionNumber, ``SCAN instances``
    for SOPClassUID)."""
    with open_store(many) as store:
        cases = {
            "PatientID": ("ix_patients_patient_id", lambda: store.catalog.find("study", {"PatientID": "PID003"})),
            "AccessionNumber": ("ix_studies_accession_number",
                                lambda: store.catalog.find("study", {"AccessionNumber": "ACC004"})),
            "SOPClassUID": ("ix_instances_sop_class_uid",
                            lambda: store.catalog.find("instance", {"SOPClassUID": CT_IMAGE}, limit=5)),
        }  # fmt: skip
        for key, (index, call) in cases.items():
            statements = _statements(store, call)
            with store.catalog.engine.connect() as conn:
                plans = [" | ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
                         for statement, params in statements]  # fmt: skip
            assert f"USING INDEX {index} " in plans[0], (key, plans[0])  # the page's keys: found by the key's index
            for plan in plans:
                assert "SCAN " not in plan, (key, plan)
        indexes = {ix["name"] for t in ("patients", "studies", "series", "instances", "renditions", "archives")
                   for ix in sa.inspect(store.catalog.engine).get_indexes(t)}  # fmt: skip
        assert {"ix_patients_patient_id", "ix_studies_accession_number", "ix_instances_order",
                "ix_instances_path", "ix_renditions_path", "ix_archives_path"} <= indexes  # fmt: skip


def test_a_catalog_made_before_the_indexes_gets_them_when_opened(many: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(many, copy)
    engine = sa.create_engine(f"sqlite:///{copy / 'catalog.sqlite'}")
    with engine.begin() as conn:
        for name in ("ix_patients_patient_id", "ix_instances_order", "ix_archives_path"):
            conn.exec_driver_sql(f"DROP INDEX {name}")
    engine.dispose()
    with open_store(copy) as store:
        names = {ix["name"] for ix in sa.inspect(store.catalog.engine).get_indexes("instances")}
        assert "ix_instances_order" in names
        assert store.catalog.find("study", {"PatientID": "PID005"})[0]["00100020"]["Value"] == ["PID005"]


def test_instance_pages_are_every_instance_once_in_order(many: Path) -> None:
    with open_store(many) as store:
        whole = [i["00080018"]["Value"][0] for i in store.catalog.find("instance", {}, limit=1000)]
        paged = []
        for offset in range(0, len(whole) + 5, 5):
            paged += [i["00080018"]["Value"][0] for i in store.catalog.find("instance", {}, limit=5, offset=offset)]
        assert paged == whole and len(set(whole)) == len(whole) == STUDIES * 4
        one = _statements(store, lambda: store.catalog.find("instance", {}, limit=5, offset=40))
        # the page is sorted on keys alone: the statement that sorts selects no header
        sorting = [s for s, _ in one if "ORDER BY" in s]
        assert sorting and all("header" not in s.split("FROM")[0] for s in sorting), sorting


def test_c_find_streams_its_matches_page_by_page(many: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medcodec.service import dimse_qr

    monkeypatch.setattr(dimse_qr, "FIND_PAGE", 5)
    with open_store(many) as store:
        qr = dimse_qr._QR(store, ae_title="MEDQR", peers={}, open_to_all=True)
        pages = qr._pages("instance", {}, set())
        got: list = []
        first = _statements(store, lambda: got.append(next(pages)))  # the first answer: one page, not every match
        assert len([s for s, _ in first if "ORDER BY" in s]) == 1
        first_item = got[0]
        streamed = [first_item, *pages]
        whole = store.catalog.find("instance", {}, limit=1000)
        assert [i["00080018"] for i in streamed] == [i["00080018"] for i in whole]  # every match once, in order
        assert len(streamed) == STUDIES * 4


def test_qido_without_limit_is_bounded_and_says_so(many: Path) -> None:
    from medcodec.testing.server import start_server, stop_server

    proc, url, _ = start_server(many, extra=["--max-results", "7"])
    try:
        r = httpx.get(url + "/dicomweb/studies", timeout=60)
        assert r.status_code == 200 and len(r.json()) == 7 and "299" in r.headers["warning"]
        r = httpx.get(url + "/dicomweb/studies", params={"limit": "5"}, timeout=60)
        assert len(r.json()) == 5 and "warning" not in r.headers
        r = httpx.get(url + "/dicomweb/studies", params={"limit": "50", "offset": "7"}, timeout=60)
        assert len(r.json()) == STUDIES - 7  # the rest, with offset
        r = httpx.get(url + "/dicomweb/studies", params={"offset": str(STUDIES - 7)}, timeout=60)
        assert len(r.json()) == 7 and "warning" not in r.headers  # exactly the maximum left: no "more"
    finally:
        stop_server(proc)
