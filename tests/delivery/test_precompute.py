"""Pre-computation on Dask: renditions, archives, manifests whose numbers we recompute ourselves."""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from concurrent.futures import Executor, Future
from pathlib import Path

import numpy as np
import pydicom
import pytest
from delivery_data import CHEST, MR, US_RGB, series_files, store  # noqa: F401 (fixture)

from medcodec.delivery import precompute as module_precompute
from medcodec.delivery.precompute import archive_entry_name, precompute


def _stored_in_source_units(ds: pydicom.Dataset, source: pydicom.Dataset) -> np.ndarray:
    """Decoded values brought back to the source's stored units through the two rescales."""
    hu = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    return (hu - float(source.get("RescaleIntercept", 0))) / float(source.get("RescaleSlope", 1))


@pytest.fixture(scope="module")
def computed(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """A store with 12 chest CT slices, 6 MR slices and a colour US image, pre-computed on a real LocalCluster."""
    from medcodec.delivery import open_store

    store = open_store(tmp_path_factory.mktemp("precomputed") / "store")
    files = series_files(shared_data, CHEST, 12) + series_files(shared_data, MR)[::17] + [shared_data / US_RGB]
    progress: list[tuple[str, int, int]] = []
    report = store.ingest(files, presets=["diagnostic", "lossless", "preview", "original"],
                          progress=lambda *a: progress.append(a))  # fmt: skip
    yield store, report, files, progress
    store.close()


@pytest.mark.realdata
def test_ingest_returns_with_the_presets_stored(computed) -> None:
    store, report, files, progress = computed
    assert len(report.stored) == len(files) and report.ok
    # 3 studies x 4 presets x (study + each series)
    assert len(report.precomputed) == 3 * 4 * 2
    stages = {s for s, _, _ in progress}
    assert stages == {"ingest", "precompute", "archive"}
    assert ("precompute", (len(files) * 3), len(files) * 3) in progress  # every (instance, coded preset)
    for study in report.studies:
        for preset in ("diagnostic", "lossless", "preview", "original"):
            archive = store.archive(study, None, preset)
            assert archive is not None and archive.files == len(store.instances(study))
            with store.open_archive(archive) as fh:
                data = fh.read()
            assert hashlib.sha256(data).hexdigest() == archive.etag and len(data) == archive.size
            assert archive.path.endswith(f"-{archive.etag[:16]}.zip")
    check = store.check()
    assert check.consistent and not check.orphans


@pytest.mark.realdata
@pytest.mark.parametrize("preset", ["diagnostic", "preview", "lossless"])
def test_manifest_numbers_recomputed_independently(computed, preset: str) -> None:
    store, report, _files, _ = computed
    chest_study = report.outcomes[0].study_uid
    archive = store.archive(chest_study, None, preset)
    with store.open_archive(archive) as fh:
        zf = zipfile.ZipFile(io.BytesIO(fh.read()))
    # every DICOM header (and the manifest) deflated, the pixel data in stored blocks (zipstream.pack)
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in zf.infolist())
    assert all(info.compress_size < info.file_size for info in zf.infolist())
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["preset"] == preset and manifest["study_instance_uid"] == chest_study
    assert manifest["diagnostic"] == (preset != "preview")
    records = store.instances(chest_study)
    assert [f["file"] for f in manifest["files"]] == [archive_entry_name(r) for r in records]
    assert sorted(zf.namelist()) == sorted([archive_entry_name(r) for r in records] + ["manifest.json"])
    originals = {r.sop_uid: r for r in records}
    for entry in manifest["files"]:
        data = zf.read(entry["file"])
        assert len(data) == entry["bytes"]
        ds = pydicom.dcmread(io.BytesIO(data))
        record = originals[entry["sop_instance_uid"]]
        with store.open_original(record) as fh:
            source = pydicom.dcmread(fh)
        assert str(ds.file_meta.TransferSyntaxUID) == entry["transfer_syntax_uid"]
        assert entry["source_bytes"] == record.size and not entry["passthrough"]
        fragments = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
        coded = sum(len(f) + len(f) % 2 for f in fragments)
        assert entry["ratio"] == pytest.approx(source.Rows * source.Columns * 2 / coded, rel=1e-3)
        restored = _stored_in_source_units(ds, source)
        diff = restored - source.pixel_array.astype(np.float64)
        max_error = float(np.abs(diff).max())
        assert entry["max_error"] == pytest.approx(max_error, abs=1e-6)
        assert entry["max_error_hu"] == pytest.approx(max_error * float(source.RescaleSlope), abs=1e-6)
        mse = float(np.mean(diff**2))
        if preset == "lossless":
            assert mse == 0 and entry["psnr"] is None and entry["lossy"] is False
            assert ds.SOPInstanceUID == source.SOPInstanceUID
        else:
            peak = 2 ** int(source.BitsStored) - 1
            assert entry["psnr"] == pytest.approx(10 * math.log10(peak**2 / mse), abs=0.01)
            assert ds.LossyImageCompression == "01"
            assert float(ds.LossyImageCompressionRatio) == pytest.approx(entry["ratio"], abs=0.01)
    totals = manifest["totals"]
    assert totals["files"] == len(records) and totals["bytes"] == sum(f["bytes"] for f in manifest["files"])
    if preset == "diagnostic":
        assert sum(r.size for r in records) / archive.size > 4  # the "at least 4:1 smaller"


@pytest.mark.realdata
def test_colour_is_coded_by_every_coding_preset(computed, shared_data: Path) -> None:
    """The colour US: baseline JPEG in the diagnostic and preview archives (measured), HTJ2K
    lossless in the lossless one (measured bit-exact; until 2026-12-02 the original unchanged)."""
    store, report, _, _ = computed
    us_study = report.outcomes[-1].study_uid
    (record,) = store.instances(us_study)
    for preset in ("diagnostic", "preview", "lossless"):
        archive = store.archive(us_study, None, preset)
        with store.open_archive(archive) as fh:
            zf = zipfile.ZipFile(io.BytesIO(fh.read()))
        (entry,) = json.loads(zf.read("manifest.json"))["files"]
        rendition = store.rendition(record, preset)
        if preset == "lossless":
            assert not entry["passthrough"] and not entry["lossy"] and entry["measured"] and entry["max_error"] == 0
            assert entry["transfer_syntax_uid"] == "1.2.840.10008.1.2.4.201" and entry["ratio"] > 2
            ds = pydicom.dcmread(io.BytesIO(zf.read(entry["file"])))
            src = pydicom.dcmread(shared_data / US_RGB)
            assert ds.SOPInstanceUID == src.SOPInstanceUID and np.array_equal(ds.pixel_array, src.pixel_array)
            assert not rendition.passthrough and rendition.path != record.path
            continue
        assert not entry["passthrough"] and entry["lossy"] and entry["measured"] and entry["psnr"] > 28
        assert entry["transfer_syntax_uid"] == "1.2.840.10008.1.2.4.50" and entry["ratio"] > 4
        ds = pydicom.dcmread(io.BytesIO(zf.read(entry["file"])))
        assert ds.PhotometricInterpretation == "YBR_FULL_422" and ds.pixel_array.shape == (480, 640, 3)
        assert not rendition.passthrough and rendition.path != record.path


@pytest.mark.realdata
def test_a_colour_passthrough_is_stale_where_the_preset_now_codes_colour(computed) -> None:
    """A store made before 2026-12-02 holds the colour US as a ``lossless`` passthrough: pre-computing
    again codes it (``rendition_fresh`` is False), while ``near-lossless`` and ``original``, which deliver colour
    as stored, keep theirs (a passthrough they would only make again)."""
    from medcodec.delivery.manifest import CODING_REVISION
    from medcodec.delivery.precompute import rendition_fresh

    store, report, _, _ = computed
    (record,) = store.instances(report.outcomes[-1].study_uid)
    why = "colour (RGB): lossless delivers colour images as stored"
    old = json.dumps({"passthrough": True, "reason": why, "revision": CODING_REVISION})
    assert not rendition_fresh(old, None, record, "lossless") and not rendition_fresh(old, None, record, "diagnostic")
    assert rendition_fresh(old, None, record, "near-lossless") and rendition_fresh(old, None, record, "original")
    # made under older coding rules (no revision: before 2026-12-02): stale whatever the preset
    older = json.dumps({"passthrough": True, "reason": why})
    assert not any(rendition_fresh(older, None, record, p) for p in ("near-lossless", "original", "lossless"))


@pytest.mark.realdata
def test_refresh_recodes_colour_a_store_made_before_passed_through(
    shared_data: Path, store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store pre-computed when ``lossless`` kept colour as stored (simulated: no colour syntax):
    its archive exists, yet ``pending`` lists the study and ``refresh`` codes the US as HTJ2K (an
    outside audit found ``ingest --refresh`` leaving it uncompressed, 2026-12-02)."""
    from medcodec.delivery import presets

    with monkeypatch.context() as m:
        m.setattr(presets, "COLOUR_LOSSLESS", ())
        report = store.ingest([shared_data / US_RGB], presets=["lossless"], scheduler="threads")
    study = report.outcomes[0].study_uid
    (record,) = store.instances(study)
    assert store.rendition(record, "lossless").passthrough and store.archive(study, None, "lossless") is not None
    assert store.pending(["lossless"]) == [study]  # its archive exists: the colour passthrough is why
    assert store.refresh(presets=["lossless"], scheduler="threads")
    rendition = store.rendition(record, "lossless")
    assert not rendition.passthrough and rendition.transfer_syntax_uid == "1.2.840.10008.1.2.4.201"
    assert store.pending(["lossless"]) == []


@pytest.mark.realdata
def test_new_instance_invalidates_the_study_archives_until_rebuilt(shared_data: Path, store) -> None:
    files = series_files(shared_data, CHEST, 4)
    report = store.ingest(files, presets=["diagnostic"])
    study = report.outcomes[0].study_uid
    series = report.outcomes[0].series_uid
    before = store.archive(study, None, "diagnostic")
    assert before is not None and store.archive(study, series, "diagnostic") is not None
    first = store.instances(study)
    stamps = {r.sop_uid: store.rendition(r, "diagnostic").created_at for r in first}
    # a new instance of the same study arrives (as STOW / C-STORE would bring it)
    ds = pydicom.dcmread(series_files(shared_data, CHEST)[10])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    assert store.ingest_bytes(buffer.getvalue(), source="stow").status == "stored"
    assert store.archive(study, None, "diagnostic") is None and store.archive(study, series, "diagnostic") is None
    assert store.pending(["diagnostic"]) == [study]
    assert len(store.refresh(presets=["diagnostic"])) == 2 and store.pending(["diagnostic"]) == []
    after = store.archive(study, None, "diagnostic")
    assert after is not None and after.files == 5 and after.etag != before.etag
    # the four earlier renditions were fresh (same series mapping) and were not coded again
    assert {r.sop_uid: store.rendition(r, "diagnostic").created_at for r in first} == stamps


@pytest.mark.realdata
def test_renditions_coded_again_under_a_new_mapping_leave_no_orphans(shared_data: Path, store) -> None:
    """A series received in two batches, the second widening its value range: its series mapping
    changes and the first batch's renditions are coded again. The files they replace were left
    until ``store gc`` (an outside audit, 2026-12-05: 100 orphans from one 100-slice MR received in
    four batches); now they go once the new ones are recorded."""
    files = series_files(shared_data, MR)
    ranges = sorted(files, key=lambda p: int(pydicom.dcmread(p).pixel_array.max()))
    narrow, wide = ranges[:4], ranges[-2:]  # the second batch holds the series' brightest slices
    report = store.ingest(narrow, presets=["diagnostic"], scheduler="threads")
    study = report.outcomes[0].study_uid
    first = {r.sop_uid: store.rendition(r, "diagnostic").path for r in store.instances(study)}
    store.ingest(wide, presets=["diagnostic"], scheduler="threads")
    again = {r.sop_uid: store.rendition(r, "diagnostic").path for r in store.instances(study)}
    changed = [sop for sop in first if again[sop] != first[sop]]
    assert changed, "the wider range did not change the first batch's renditions: the test proves nothing"
    assert not store.check(verify_hashes=False).orphans
    assert not any(store.objects.exists(first[sop]) for sop in changed)


@pytest.mark.realdata
def test_precompute_on_worker_processes(shared_data: Path, store) -> None:
    """Workers in other processes reach the store by its URL only; the catalog is written here."""
    from distributed import Client, LocalCluster

    report = store.ingest(series_files(shared_data, CHEST, 3), precompress=False)
    study = report.outcomes[0].study_uid
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as client:  # fmt: skip
        written = precompute(store, [study], presets=["preview"], client=client)
    assert written == [f"preview:{study}", f"preview:{study}:{report.outcomes[0].series_uid}"]
    records = store.instances(study)
    assert all(store.rendition(r, "preview") is not None for r in records)
    assert store.check().consistent


@pytest.mark.realdata
def test_renditions_done_before_a_failure_are_kept(shared_data: Path, store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog records renditions in batches; a failure midway still keeps those done before it."""
    from concurrent.futures import ThreadPoolExecutor

    from medcodec.delivery import precompute as module
    from medcodec.errors import DeliveryError

    report = store.ingest(series_files(shared_data, CHEST, 8), precompress=False)
    study = report.outcomes[0].study_uid
    real = module.render_task
    calls = []

    def failing(*args):
        calls.append(args)
        if len(calls) == 6:
            raise DeliveryError("disk gone")
        return real(*args)

    monkeypatch.setattr(module, "render_task", failing)
    with ThreadPoolExecutor(1) as pool, pytest.raises(DeliveryError, match="disk gone"):
        precompute(store, [study], presets=["preview"], executor=pool)
    kept = [r for r in store.instances(study) if store.rendition(r, "preview") is not None]
    # those whose results came in before the failure's (fewer than one batch, so none was committed
    # yet): recorded; up to five (results arrive as they complete, the failure may come first)
    assert 1 <= len(kept) <= 5
    assert store.check().consistent
    precompute(store, [study], presets=["preview"], executor=ThreadPoolExecutor(1))  # the rest, later
    assert all(store.rendition(r, "preview") is not None for r in store.instances(study))


@pytest.mark.realdata
def test_renditions_whose_rows_could_not_be_recorded_are_removed(shared_data: Path, store,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A catalog that cannot take the rows (the disk full: SQLite's "database or disk is full"), with
    tasks still running on two workers: the renditions they wrote stayed as orphans holding the last
    free space until `store gc` an hour later (an outside audit, 2026-12-05: 26 files, 1.8 MB). They
    are removed when the pre-computation fails; what was recorded before stays."""
    from concurrent.futures import ThreadPoolExecutor

    _precompute_with_a_full_catalog(shared_data, store, monkeypatch, ThreadPoolExecutor(2))


class _Immediate(Executor):
    """Runs each task when it is submitted: one wait then returns every task of the window finished
    at once, as it may on a loaded machine (the orphans of a flaky run, 2026-12-06)."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def test_finished_renditions_not_yet_recorded_are_removed_too(shared_data: Path, store,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    _precompute_with_a_full_catalog(shared_data, store, monkeypatch, _Immediate())


def _precompute_with_a_full_catalog(shared_data: Path, store, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                    executor: Executor) -> None:  # fmt: skip
    from medcodec.errors import StoreFullError

    report = store.ingest(series_files(shared_data, CHEST, 8), precompress=False)
    study = report.outcomes[0].study_uid
    real = store.catalog.put_renditions
    batches = []

    def full_after_the_first(batch, replaced):  # type: ignore[no-untyped-def]
        batches.append(len(batch))
        if len(batches) > 1:
            raise StoreFullError(28, "no space left for the catalog (database or disk is full)")
        return real(batch, replaced)

    monkeypatch.setattr(module_precompute, "RECORD_BATCH", 3)
    monkeypatch.setattr(store.catalog, "put_renditions", full_after_the_first)
    with executor as pool, pytest.raises(StoreFullError):
        precompute(store, [study], presets=["preview"], executor=pool)
    kept = [r for r in store.instances(study) if store.rendition(r, "preview") is not None]
    assert len(kept) == 3  # the first batch, recorded
    check = store.check()
    assert check.consistent and not [o for o in check.orphans if o.startswith("renditions/")], check.orphans


@pytest.mark.realdata
def test_pre_computing_again_codes_colour_an_older_store_passed_through(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store made before colour was coded (the preset without its colour point) holds the US as
    passthrough; pre-computing again replaces it with the baseline JPEG rendition and archive."""
    from medcodec.delivery import open_store
    from medcodec.delivery.presets import COLOUR, PRESETS

    with open_store(tmp_path / "store") as store:
        with monkeypatch.context() as m:
            m.delitem(PRESETS["diagnostic"].points, COLOUR)
            report = store.ingest([shared_data / US_RGB], presets=["diagnostic"])
        (record,) = store.instances(report.studies[0])
        assert store.rendition(record, "diagnostic").passthrough
        precompute(store, report.studies, presets=["diagnostic"])
        rendition = store.rendition(record, "diagnostic")
        assert not rendition.passthrough and rendition.transfer_syntax_uid.endswith(".4.50")
        with store.open_archive(store.archive(report.studies[0], None, "diagnostic")) as fh:
            (entry,) = json.loads(zipfile.ZipFile(io.BytesIO(fh.read())).read("manifest.json"))["files"]
        assert not entry["passthrough"] and entry["lossy"]
        precompute(store, report.studies, presets=["diagnostic"])  # now fresh: kept
        assert store.rendition(record, "diagnostic").path == rendition.path


@pytest.mark.realdata
def test_archives_are_written_group_by_group(shared_data: Path, store, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Studies are pre-computed in groups of about ``GROUP_TASKS`` tasks, each group's archives
    written before the next group starts: a refresh of 2,070 studies queued 47,000 Dask tasks at
    once, reached 1 GB and had written no archive after 5 minutes (outside scale audit,
    2026-12-02); stopped, it kept none. On a real LocalCluster (the default scheduler)."""
    from medcodec.delivery import precompute as module

    source = series_files(shared_data, CHEST, 1)[0]
    files = []
    for s in range(3):
        for i in range(2):
            ds = pydicom.dcmread(source)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = f"2.25.77{s}", f"2.25.77{s}1"
            ds.SOPInstanceUID, ds.InstanceNumber = f"2.25.77{s}1{i}", i + 1
            files.append(tmp_path / f"{s}_{i}.dcm")
            ds.save_as(files[-1], enforce_file_format=True)
    studies = list(dict.fromkeys(o.study_uid for o in store.ingest(files, precompress=False).outcomes))
    monkeypatch.setattr(module, "GROUP_TASKS", 2, raising=False)  # a study (2 instances x 1 preset) a group
    seen: list[tuple[str, int, list[bool]]] = []

    def progress(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, [store.archive(s, None, "preview") is not None for s in studies]))

    written = precompute(store, studies, presets=["preview"], progress=progress)
    assert len(written) == 6  # 3 studies x (study + series)
    renders = [archives for stage, _, archives in seen if stage == "precompute"]
    assert renders[0] == [False, False, False]
    assert renders[2] == [True, False, False] and renders[4] == [True, True, False]  # a group's first task
    assert [d for stage, d, _ in seen if stage == "precompute"] == list(range(1, 7))


def _corrected(data: bytes) -> bytes:
    """The same SOP Instance (same UIDs) with another Patient's Name: a wrong-patient correction."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PatientName = "CORRECTED^PATIENT"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_a_rendition_coded_from_a_replaced_original_is_not_recorded(shared_data: Path, store) -> None:
    """A correction (delete an instance, send the corrected file under its SOP Instance UID) while
    a pre-computation coded the old one: its rendition row is left out, so the old content is not
    delivered for the new instance; a row of an instance deleted meanwhile likewise (it failed the
    whole batch on its foreign key). Until 2026-12-02 both were recorded or raised (an outside audit)."""
    from medcodec.delivery.precompute import render_task

    files = series_files(shared_data, MR, 3)
    report = store.ingest(files, precompress=False)
    first, second = report.outcomes[0].record, report.outcomes[1].record
    rows = [render_task(store.url, r.path, r.sha256, "diagnostic", store.series_mapping(r.series_uid, "diagnostic"))
            for r in (first, second)]  # fmt: skip
    store.delete(first.study_uid, first.series_uid, first.sop_uid)
    assert store.ingest_bytes(_corrected(files[0].read_bytes()), source="corrected").status == "stored"
    store.delete(second.study_uid, second.series_uid, second.sop_uid)
    assert store.catalog.put_renditions(rows) == 0
    # a task planned before the deletion finds the original gone: nothing to record, no error
    assert render_task(store.url, second.path, second.sha256, "diagnostic", None) is None
    (current,) = [r for r in store.instances(first.study_uid) if r.sop_uid == first.sop_uid]
    assert store.rendition(current, "diagnostic") is None


def test_an_archive_built_before_a_correction_is_not_recorded(shared_data: Path, store) -> None:
    """An archive built from the instances as they were is recorded only if they still are: an
    instance replaced by a corrected file (the count unchanged) makes it not current."""
    from medcodec.delivery.catalog import instances_fingerprint

    files = series_files(shared_data, MR, 3)
    report = store.ingest(files, precompress=False)
    study = report.outcomes[0].study_uid
    before = store.instances(study)
    target = report.outcomes[0].record
    store.delete(study, target.series_uid, target.sop_uid)
    assert store.ingest_bytes(_corrected(files[0].read_bytes()), source="corrected").status == "stored"
    after = store.instances(study)
    assert len(after) == len(before)
    values = {"study_uid": study, "series_uid": "", "preset": "original", "path": "archives/x.zip", "size": 1,
              "etag": "0" * 64, "files": len(before), "created_at": 0.0}  # fmt: skip
    assert not store.catalog.put_archive(values, expect=instances_fingerprint((r.sop_uid, r.sha256) for r in before))
    assert store.archive(study, None, "original") is None
    assert store.catalog.put_archive(values, expect=instances_fingerprint((r.sop_uid, r.sha256) for r in after))


def test_archives_another_writer_made_stale_are_said_and_leave_no_orphan(shared_data: Path, store, monkeypatch,
                                                                         caplog) -> None:  # fmt: skip
    """Another writer adds an instance to the study while its archives are built: they are not
    recorded (it is served live), the ingest says so, and the written ZIPs do not stay behind as
    orphans (until 2026-12-02: exit 0 in silence, 46.6 MB of orphans after one busy minute)."""
    import logging

    files = series_files(shared_data, MR, 3)
    report = store.ingest(files[:2], precompress=False)
    study = report.outcomes[0].study_uid
    real = store.catalog.put_archive

    def another_writer_first(*args, **kwargs):  # type: ignore[no-untyped-def]
        if len(store.instances(study)) == 2:
            assert store.ingest_bytes(files[2].read_bytes(), source="another writer").status == "stored"
        return real(*args, **kwargs)

    monkeypatch.setattr(store.catalog, "put_archive", another_writer_first)
    with caplog.at_level(logging.WARNING, logger="medcodec.delivery.precompute"):
        written = precompute(store, [study], presets=["original"])
    assert written == [] and store.archive(study, None, "original") is None
    assert any("changed while its archives were built" in r.getMessage() for r in caplog.records), caplog.text
    assert not [p for p in store.check(verify_hashes=False).orphans if p.startswith("archives/")]


@pytest.mark.realdata
def test_superseded_archives_are_removed_not_left_to_gc(shared_data: Path, store) -> None:
    """An outside audit (2026-12-02, a server left running): each instance that arrived in a study
    dropped its archives from the catalog and left their files, so did every rebuild; 20 STOWs of
    one instance left 9x the current archives in dead files, and `store gc` keeps anything younger
    than an hour. Now the files go when nothing references them."""
    files = series_files(shared_data, CHEST, 5)
    store.ingest(files[:3])
    built = [rel for rel in store.objects.walk("archives")]
    assert built and not [o for o in store.check(verify_hashes=False).orphans if o.startswith("archives")]
    for path in files[3:]:  # one instance at a time, each pre-computed again
        report = store.ingest([path])
        assert report.ok and report.precomputed
        orphans = [o for o in store.check(verify_hashes=False).orphans if o.startswith("archives")]
        assert orphans == [], orphans
    assert not set(built) & set(store.objects.walk("archives"))  # the first ones are gone


@pytest.mark.parametrize("scheduler", [None, "processes"], ids=["threads", "processes"])
def test_the_workers_of_medcodecs_clusters_run_no_profiler(scheduler: str | None) -> None:
    """distributed's statistical profiler (``sys._current_frames`` every 10 ms) is off in the
    clusters :func:`dask_client` starts: nothing reads it, and with distributed's GC callback it
    deadlocked CPython 3.11 in a full test run (2026-12-06)."""
    from medcodec.delivery.precompute import dask_client

    with dask_client(scheduler) as client:
        running = client.run(lambda dask_worker: sorted(dask_worker.periodic_callbacks))
    assert running and all("profile" not in names for names in running.values()), running
