"""Deleting from a store (``Store.delete``, ``medcodec store``): a study, a series or one instance
goes with its renditions and its study's archives; nothing else changes; the store stays
consistent and keeps no orphan; what was deleted can be ingested again."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from delivery_data import CHEST, MR, series_files, store  # noqa: F401 (fixture)

from medcodec.cli.main import cli
from medcodec.delivery import InvalidUidError, NotFoundError

pytestmark = pytest.mark.realdata


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "catalog" not in p.name}


def test_delete_an_instance_a_series_and_a_study(shared_data: Path, store) -> None:
    chest, mr = series_files(shared_data, CHEST, 6), series_files(shared_data, MR, 4)
    assert store.ingest(chest + mr, presets=("diagnostic",)).ok
    root = Path(store.objects.root)
    ct = pydicom.dcmread(chest[2], stop_before_pixels=True)
    head = pydicom.dcmread(mr[0], stop_before_pixels=True)
    mr_archive = store.archive(str(head.StudyInstanceUID), None, "diagnostic")
    before = _files(root)
    record = store.instances(str(ct.StudyInstanceUID), sop_uid=str(ct.SOPInstanceUID))[0]
    rendition = store.rendition(record, "diagnostic")
    assert rendition is not None and store.archive(str(ct.StudyInstanceUID), None, "diagnostic") is not None

    done = store.delete(str(ct.StudyInstanceUID), sop_uid=str(ct.SOPInstanceUID))
    assert done.instances == 1
    gone = before - _files(root)
    assert {record.path, rendition.path} <= gone and done.objects == len(gone)
    assert len(store.instances(str(ct.StudyInstanceUID))) == 5
    assert store.archive(str(ct.StudyInstanceUID), None, "diagnostic") is None  # stale without it: rebuilt later
    assert store.pending(["diagnostic"]) == [str(ct.StudyInstanceUID)]
    assert store.archive(str(head.StudyInstanceUID), None, "diagnostic") == mr_archive  # the other study untouched
    check = store.check()
    assert check.consistent and not check.orphans
    store.refresh(presets=["diagnostic"])
    assert store.archive(str(ct.StudyInstanceUID), None, "diagnostic").files == 5

    # deleted, it can come back
    again = store.ingest([chest[2]], precompress=False)
    assert len(again.stored) == 1 and len(store.instances(str(ct.StudyInstanceUID))) == 6
    # an ingest leaves the archives it made stale on disk (a download may be reading them): gc's job
    assert all(rel.startswith("archives/") for rel in store.collect_garbage(min_age=0))

    # the series, then the study: their rows go when empty, the patient with its last study
    store.delete(str(head.StudyInstanceUID), series_uid=str(head.SeriesInstanceUID))
    assert store.find_studies({"StudyInstanceUID": str(head.StudyInstanceUID)}) == []
    assert head.PatientID != ct.PatientID and store.find_studies({"PatientID": str(head.PatientID)}) == []
    store.delete(str(ct.StudyInstanceUID))
    assert store.find_studies({}) == [] and store.find_instances(None, None, {}) == []
    check = store.check()
    assert check.checked == 0 and check.consistent and not check.orphans and _files(root) == set()
    with pytest.raises(NotFoundError):
        store.delete(str(ct.StudyInstanceUID))
    with pytest.raises(InvalidUidError):
        store.delete("1.2.3/../../x")


def test_store_cli_check_delete_gc(shared_data: Path, tmp_path: Path) -> None:
    from medcodec.delivery import open_store

    chest = series_files(shared_data, CHEST, 3)
    url = str(tmp_path / "store")
    with open_store(url) as opened:
        assert opened.ingest(chest, precompress=False).ok
        record = opened.instances(str(pydicom.dcmread(chest[0], stop_before_pixels=True).StudyInstanceUID))[0]
    run = CliRunner().invoke
    r = run(cli, ["store", "list", "--store", url, "--json"])
    listed = [json.loads(line) for line in r.output.splitlines()]
    assert r.exit_code == 0 and len(listed) == 1 and listed[0]["study_uid"] == record.study_uid
    assert listed[0]["instances"] == 3 and listed[0]["bytes"] == sum(f.stat().st_size for f in chest)
    assert listed[0]["archives"] == {} and listed[0]["modalities"] == ["CT"]  # not pre-computed
    r = run(cli, ["store", "list", "--store", url])
    assert r.exit_code == 0 and record.study_uid in r.output and "1 study(ies)" in r.output
    r = run(cli, ["store", "check", "--store", url])
    assert r.exit_code == 0 and "3 object(s) checked: 0 missing, 0 corrupt, 0 orphan(s)" in r.output
    original = Path(url) / record.path
    data = original.read_bytes()
    original.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped: same size, other sha256
    r = run(cli, ["store", "check", "--store", url])
    assert r.exit_code == 1 and f"corrupt: {record.path}" in r.output
    assert run(cli, ["store", "check", "--store", url, "--no-hashes"]).exit_code == 0  # sizes only
    original.write_bytes(data)
    orphan = Path(url) / "objects" / "sha256" / "00" / "leftover.dcm.tmp"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"interrupted")
    r = run(cli, ["store", "gc", "--store", url])  # just written: it may be an ingest's, whose row comes next
    assert r.exit_code == 0 and "0 unreferenced object(s) removed" in r.output and orphan.exists()
    assert "1 younger than an hour kept" in r.output  # says why (an outside audit, 2026-12-02)
    os.utime(orphan, (time.time() - 2 * 3600, time.time() - 2 * 3600))
    r = run(cli, ["store", "gc", "--store", url])
    assert r.exit_code == 0 and "1 unreferenced object(s) removed" in r.output and not orphan.exists()
    r = run(cli, ["store", "delete", "--store", url, "--study", record.study_uid], input="n\n")
    assert r.exit_code == 1 and "nothing deleted" in r.output and original.exists()
    r = run(cli, ["store", "delete", "--store", url, "--study", record.study_uid], input="")  # no terminal, no answer
    assert r.exit_code == 2 and "add --yes" in r.output and "interrupted" not in r.output and original.exists()
    r = run(cli, ["store", "delete", "--store", url, "--study", record.study_uid, "--series", record.series_uid,
                  "--instance", record.sop_uid, "--yes"])  # fmt: skip
    assert r.exit_code == 0 and "1 instance(s), 1 object(s) removed" in r.output and not original.exists()
    r = run(cli, ["store", "delete", "--store", url, "--study", record.study_uid, "--instance", record.sop_uid, "--yes"])
    assert r.exit_code == 2 and "no instance" in r.output
    r = run(cli, ["store", "check", "--store", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "does not exist" in r.output and not (tmp_path / "nowhere").exists()


def test_reindex_brings_headers_of_an_older_store_up_to_date(tmp_path: Path) -> None:
    """A store made before 2026-12-01 kept headers without bulk data (and ``""`` URIs in
    sequences); ``medcodec store reindex`` rewrites them from the originals, once."""
    from pydicom.data import get_testdata_file

    from medcodec.delivery import open_store

    files = [Path(get_testdata_file("waveform_ecg.dcm")), Path(get_testdata_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))]
    url = str(tmp_path / "store")
    with open_store(url) as opened:
        assert opened.ingest(files, precompress=False).ok
        records = [opened.instances(str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID))[0] for f in files]
        current = [opened.catalog.header(r.sop_uid) for r in records]
        for record, text in zip(records, current):  # as the older version stored them
            old = {k: _as_before(v) for k, v in json.loads(text).items() if "BulkDataURI" not in v}
            opened.catalog.update_header(record.sop_uid, json.dumps(old), record.transfer_syntax_uid)
        assert all("bulkdata/" not in opened.catalog.header(r.sop_uid) for r in records)
        assert list(opened.catalog.header_rows(page=1)) == list(opened.catalog.header_rows())  # pages join up
    r = CliRunner().invoke(cli, ["store", "reindex", "--store", url, "--no-progress"])
    assert r.exit_code == 0 and "2 instance header(s) updated" in r.output
    with open_store(url) as opened:
        assert [opened.catalog.header(r.sop_uid) for r in records] == current
        waveform = opened.metadata(records[0])["54000100"]["Value"][0]["54001010"]
        assert waveform == {"vr": "OB", "BulkDataURI": "bulkdata/54000100/1/54001010"} or waveform["vr"] == "OW"
    r = CliRunner().invoke(cli, ["store", "reindex", "--store", url, "--no-progress"])
    assert r.exit_code == 0 and "0 instance header(s) updated" in r.output


def _as_before(element: dict) -> dict:
    """An element as a header stored before 2026-12-01 had it: bulk data in sequences as ``""``."""
    if "BulkDataURI" in element:
        return {**element, "BulkDataURI": ""}
    if element.get("vr") == "SQ" and "Value" in element:
        return {**element, "Value": [{k: _as_before(v) for k, v in item.items()} for item in element["Value"]]}
    return element


@pytest.mark.realdata
def test_gc_beside_an_ingest_and_an_object_lost_after_its_row(shared_data: Path, store) -> None:
    """An outside audit ran ``store gc`` in a loop beside an ingest (2026-12-01): it removed an
    original written a moment before its catalog row, and ingesting the same file again said
    'duplicate' and left it missing for good (the study's archives could never be built)."""
    chest = series_files(shared_data, CHEST, 2)
    assert store.ingest(chest, precompress=False).ok
    record = store.instances(str(pydicom.dcmread(chest[0], stop_before_pixels=True).StudyInstanceUID))[0]
    young = Path(store.objects.root) / "objects" / "sha256" / "ff" / ("f" * 64 + ".dcm")
    young.parent.mkdir(parents=True, exist_ok=True)
    young.write_bytes(chest[0].read_bytes())  # as an ingest leaves it just before its row
    assert store.collect_garbage() == [] and young.exists()
    assert store.collect_garbage(min_age=0) == [young.relative_to(store.objects.root).as_posix()]
    lost = Path(store.objects.root) / record.path
    lost.unlink()  # the row outlived its object
    assert store.check().missing == [record.path]
    source = next(p for p in chest if hashlib.sha256(p.read_bytes()).hexdigest() == record.sha256)
    (again,) = store.ingest([source], precompress=False).outcomes
    assert again.status == "duplicate" and "written again" in again.message
    assert lost.read_bytes() == source.read_bytes() and store.check().consistent


# an outside audit (2026-12-02, concurrent writers): an instance ingested while a deletion (or a
# gc) removed the same bytes was reported stored and left without its object. Each ordering of
# the two writers' steps, forced here in one process with the real store:


def test_an_ingest_committing_before_the_deletion_removes_objects_keeps_its_object(shared_data: Path, store,
                                                                                   monkeypatch) -> None:  # fmt: skip
    """The deletion commits; the same file is ingested again (reusing the object still there) and
    committed; then the deletion removes the objects its rows referenced: this one is referenced
    again, so it stays."""
    path = series_files(shared_data, MR)[0]
    outcome = store.ingest_bytes(path.read_bytes(), source="first")
    real_delete = store.catalog.delete

    def delete_then_an_ingest(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_delete(*args, **kwargs)
        again = store.ingest_bytes(path.read_bytes(), source="again")
        assert again.status == "stored"
        return result

    monkeypatch.setattr(store.catalog, "delete", delete_then_an_ingest)
    store.delete(outcome.study_uid)
    check = store.check()
    assert not check.missing and store.objects.exists(outcome.record.path), check


def test_an_ingest_whose_object_is_removed_before_its_commit_writes_it_again(shared_data: Path, store,
                                                                             monkeypatch) -> None:  # fmt: skip
    """The deletion commits; the same file is ingested again and finds the object still there (no
    write); the deletion removes the objects its rows referenced; then the ingest commits its row:
    its object is gone, so it is written again."""
    path = series_files(shared_data, MR)[0]
    outcome = store.ingest_bytes(path.read_bytes(), source="first")
    committed = store.catalog.delete(outcome.study_uid)  # the deletion's transaction, done
    monkeypatch.setattr(store.catalog, "delete", lambda *a, **k: committed)  # its object removal, below
    real_add = store.catalog.add_instance
    done = []

    def the_deletion_removes_objects_first(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not done:
            done.append(store.delete(outcome.study_uid))
        return real_add(*args, **kwargs)

    monkeypatch.setattr(store.catalog, "add_instance", the_deletion_removes_objects_first)
    again = store.ingest_bytes(path.read_bytes(), source="again")
    assert done and done[0].objects >= 1 and again.status == "stored"
    check = store.check()
    assert not check.missing and store.objects.exists(again.record.path), check


def test_gc_beside_an_ingest_reusing_an_old_orphan_loses_nothing(shared_data: Path, store, monkeypatch) -> None:
    """An orphan original (a deletion killed after its commit, hours ago) is reused by an ingest of
    the same file; ``store gc`` removes it between the ingest's look and its commit: the ingest
    writes it again. Until 2026-12-02 the instance was reported stored without its object."""
    path = series_files(shared_data, MR)[0]
    outcome = store.ingest_bytes(path.read_bytes(), source="first")
    store.catalog.delete(outcome.study_uid)  # the rows went, the object stayed: an orphan
    real_add = store.catalog.add_instance
    collected: list[list[str]] = []

    def gc_first(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not collected:
            collected.append(store.collect_garbage(min_age=0))
        return real_add(*args, **kwargs)

    monkeypatch.setattr(store.catalog, "add_instance", gc_first)
    again = store.ingest_bytes(path.read_bytes(), source="again")
    assert collected and outcome.record.path in collected[0] and again.status == "stored"
    check = store.check()
    assert not check.missing and store.objects.exists(again.record.path), check
