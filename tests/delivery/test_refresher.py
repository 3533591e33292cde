"""The background pre-computation of studies that receive instances (STOW-RS, C-STORE)."""

from __future__ import annotations

import io
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest
from delivery_data import CHEST, MR, series_files, store  # noqa: F401 (fixture)

from medcodec.delivery.precompute import archive_entry_name
from medcodec.delivery.refresher import Refresher


@pytest.mark.realdata
def test_a_study_is_precomputed_once_after_a_burst_of_new_instances(shared_data: Path, store) -> None:
    files = series_files(shared_data, CHEST, 6)
    report = store.ingest(files[:4], precompress=False)
    study = report.studies[0]
    assert store.archive(study, None, "diagnostic") is None  # deferred: served live
    with ThreadPoolExecutor(2) as executor:
        # quiet=2 s: far above one ingest_bytes (~0.05 s); 0.3 s failed once in a full suite run beside
        # a numba compile on the 2 cores (the burst's last instance came after the run had started)
        refresher = Refresher(store, executor=executor, presets=["diagnostic"], quiet=2.0)
        try:
            for path in files[4:]:  # a C-STORE association: one instance at a time, each one notified
                outcome = store.ingest_bytes(path.read_bytes(), source="test")
                assert outcome.status == "stored"
                refresher.notify(outcome.study_uid)
                assert refresher.pending() == [study] and refresher.busy(study) and not refresher.busy("1.2.3")
            assert refresher.wait_idle(120)
        finally:
            refresher.close()
    assert refresher.completed == 1 and refresher.failed == 0  # once for the burst, not once per instance
    assert not refresher.busy(study) and refresher.computes("diagnostic") and not refresher.computes("preview")
    archive = store.archive(study, None, "diagnostic")
    assert archive is not None and archive.files == 6
    with store.open_archive(archive) as fh:
        names = zipfile.ZipFile(io.BytesIO(fh.read())).namelist()
    assert sorted(names) == sorted([archive_entry_name(r) for r in store.instances(study)] + ["manifest.json"])
    assert store.pending(["diagnostic"]) == []


@pytest.mark.realdata
def test_precompute_on_processes_gives_the_dask_path_s_renditions(shared_data: Path, store) -> None:
    # the server runs the tasks on its encoder processes: the same rendition bytes as Dask's
    files = series_files(shared_data, CHEST, 3)
    report = store.ingest(files, presets=["diagnostic"])
    study = report.studies[0]
    before = {r.sop_uid: r.sha256 for r in store.catalog.renditions_of([o.sop_uid for o in report.stored],
                                                                        "diagnostic").values()}  # fmt: skip
    extra = series_files(shared_data, CHEST, 4)[3]
    assert store.ingest_bytes(extra.read_bytes(), source="test").status == "stored"
    with ProcessPoolExecutor(1) as executor:
        refresher = Refresher(store, executor=executor, presets=["diagnostic"], quiet=0)
        try:
            refresher.notify(study)
            assert refresher.wait_idle(180)
        finally:
            refresher.close()
    assert refresher.completed == 1
    after = store.catalog.renditions_of([r.sop_uid for r in store.instances(study)], "diagnostic")
    assert len(after) == 4 and all(after[sop].sha256 == sha for sop, sha in before.items())  # kept, not recoded
    with store.open_rendition(after[pydicom.dcmread(extra, stop_before_pixels=True).SOPInstanceUID]) as fh:
        ds = pydicom.dcmread(io.BytesIO(fh.read()))
    assert ds.LossyImageCompression == "01" and ds.pixel_array.shape == (512, 512)
    assert store.archive(study, None, "diagnostic").files == 4


@pytest.mark.realdata
def test_a_failed_precomputation_is_counted_and_the_thread_goes_on(shared_data: Path, store) -> None:
    report = store.ingest(series_files(shared_data, CHEST, 2), precompress=False)
    study = report.studies[0]
    record = store.instances(study)[0]
    (Path(store.objects.url) / record.path).unlink()  # an original lost under the store's feet
    with ThreadPoolExecutor(1) as executor:
        refresher = Refresher(store, executor=executor, presets=["diagnostic"], quiet=0)
        try:
            refresher.notify(study)
            assert refresher.wait_idle(60)
            assert refresher.failed == 1 and refresher.completed == 0
            assert store.archive(study, None, "diagnostic") is None  # stays live
            # a study no longer in the store (deleted while it waited: a correction, a retention
            # job) is nothing to do, not a failure (counted as one until an outside audit, 2026-12-05)
            store.delete(study)
            refresher.notify(study)
            refresher.notify("1.2.3.4")
            assert refresher.wait_idle(60) and refresher.failed == 1 and refresher.completed == 0
            other = store.ingest(series_files(shared_data, MR, 1), precompress=False).studies[0]
            refresher.notify(other)  # the thread goes on
            assert refresher.wait_idle(60) and refresher.completed == 1
            assert store.archive(other, None, "diagnostic") is not None
        finally:
            refresher.close()


def test_closing_drops_what_waits(store) -> None:
    refresher = Refresher(store, executor=None, quiet=60)
    refresher.notify("1.2.3")
    assert refresher.pending() == ["1.2.3"]
    started = time.monotonic()
    refresher.close()
    assert time.monotonic() - started < 5 and refresher.pending() == []
    refresher.notify("1.2.4")  # after close: ignored
    assert refresher.pending() == [] and refresher.completed == 0


@pytest.mark.realdata
def test_a_study_that_keeps_receiving_waits_longer_each_time(shared_data: Path, store) -> None:
    """An outside audit (2026-12-02): a study receiving one instance every few seconds was rebuilt
    (all its archives written again) once per instance. Each pre-computation soon after the last
    one now doubles the study's quiet time, from at least 1 s up to MAX_QUIET."""
    from medcodec.delivery.refresher import MAX_QUIET

    files = series_files(shared_data, CHEST, 7)
    report = store.ingest(files[:3], precompress=False)
    study = report.studies[0]
    waits = []
    with ThreadPoolExecutor(2) as executor:
        refresher = Refresher(store, executor=executor, presets=["diagnostic"], quiet=0.2)
        try:
            for path in files[3:]:
                outcome = store.ingest_bytes(path.read_bytes(), source="test")
                refresher.notify(outcome.study_uid)
                waits.append(refresher.quiet_of(study))
                refresher.notify(outcome.study_uid)  # the same burst: the same wait
                assert refresher.quiet_of(study) == waits[-1]
                assert refresher.wait_idle(120)
                assert refresher.quiet_of(study) is None
        finally:
            refresher.close()
    assert waits == [0.2, 1.0, 2.0, 4.0] and 4.0 < MAX_QUIET
    assert refresher.completed == 4 and refresher.failed == 0
    archive = store.archive(study, None, "diagnostic")
    assert archive is not None and archive.files == 7


@pytest.mark.realdata
def test_catch_up_takes_received_studies_left_pending_not_deferred_ones(shared_data: Path, store) -> None:
    """A server stopped before its refresher reached a study (instances arriving just before the
    stop) left it live until someone ran ``ingest --refresh``. With ``catch_up`` the next
    refresher takes the received studies (STOW-RS, C-STORE) whose archives are missing; studies
    ``ingest --no-precompress`` brought stay deferred, as asked."""
    from medcodec.delivery.catalog import SOURCE_DIMSE, SOURCE_STOW

    deferred = store.ingest(series_files(shared_data, CHEST, 2), precompress=False).studies[0]
    mr = series_files(shared_data, MR, 3)
    stowed = {store.ingest_bytes(path.read_bytes(), source=SOURCE_STOW).study_uid for path in mr[:2]}
    pushed = store.ingest_bytes(mr[2].read_bytes(), source=f"{SOURCE_DIMSE}SCANNER").study_uid
    assert stowed == {pushed}  # one MR study, received both ways
    assert store.catalog.received_studies() == [pushed]
    with ThreadPoolExecutor(2) as executor:
        idle = Refresher(store, executor=executor, presets=["diagnostic"], quiet=0)  # no catch_up: as before
        try:
            assert idle.caught_up.wait(10) and idle.pending() == [] and idle.wait_idle(1)
        finally:
            idle.close()
        refresher = Refresher(store, executor=executor, presets=["diagnostic"], quiet=0, catch_up=True)
        try:
            assert refresher.caught_up.wait(30)
            assert refresher.wait_idle(120)
        finally:
            refresher.close()
    assert refresher.completed == 1 and refresher.failed == 0
    assert store.archive(pushed, None, "diagnostic").files == 3
    assert store.archive(deferred, None, "diagnostic") is None  # deferred stays deferred
    again = Refresher(store, executor=None, presets=["diagnostic"], quiet=0, catch_up=True)
    try:  # nothing left: nothing queued
        assert again.caught_up.wait(30) and again.pending() == [] and again.completed == 0
    finally:
        again.close()


@pytest.mark.realdata
def test_a_precomputation_that_found_the_disk_full_is_tried_again_once_space_is_freed(
    shared_data: Path, tmpfs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real full disk (a tmpfs): the study's pre-computation fails with StoreFullError and the study
    is served live; it stayed live until a restart or ``ingest --refresh`` even once space was freed
    (an outside audit, 2026-12-05). Now it is tried again by itself, backing off, and succeeds once
    there is room; meanwhile archive requests do not wait for it (``busy`` is False)."""
    import os

    from medcodec.delivery import open_store
    from medcodec.delivery import refresher as refresher_module

    monkeypatch.setattr(refresher_module, "RETRY_FIRST", 0.5)
    disk = tmpfs(8192)
    with open_store(disk / "store") as store:
        study = store.ingest(series_files(shared_data, CHEST, 2), precompress=False).studies[0]
        filler = disk / "filler"
        with open(filler, "wb") as fh:  # the rest of the disk, less 8 KiB: no room for a rendition
            fh.write(b"\0" * (os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - 8192))
        with ThreadPoolExecutor(1) as executor:
            refresher = Refresher(store, executor=executor, presets=["diagnostic"], quiet=0)
            try:
                refresher.notify(study)
                deadline = time.monotonic() + 60
                while not (refresher.failed >= 2 and refresher.retrying() == [study]):
                    assert time.monotonic() < deadline, (refresher.failed, refresher.retrying())
                    time.sleep(0.05)
                assert not refresher.busy(study) and refresher.wait_idle(5)  # requests stream it live
                assert store.archive(study, None, "diagnostic") is None and refresher.completed == 0
                filler.unlink()  # the operator frees space; nobody restarts anything
                # the archive is recorded before the refresher counts its task done: both waited for
                while store.archive(study, None, "diagnostic") is None or refresher.completed < 1:
                    assert time.monotonic() < deadline + 60, "never tried again after space was freed"
                    time.sleep(0.1)
                assert refresher.completed == 1 and refresher.retrying() == [] and refresher.pending() == []
            finally:
                refresher.close()
        assert store.check().consistent
