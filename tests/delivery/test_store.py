"""Store and catalog on real data: ingest, byte-for-byte originals, duplicates, conflicts, queries."""

from __future__ import annotations

import copy
import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from delivery_data import BAD_UID, CHEST, CONFLICT_A, CONFLICT_B, MR, US_RGB, series_files, store  # noqa: F401 (fixture)
from pydicom.dataset import Dataset

from medcodec.delivery import InvalidUidError, NotFoundError, open_store
from medcodec.errors import InputNotFoundError, InvalidInputError


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.realdata
def test_ingest_keeps_originals_byte_for_byte_and_reingest_is_a_noop(shared_data: Path, store) -> None:
    files = series_files(shared_data, CHEST, 12) + [shared_data / US_RGB]
    report = store.ingest(files, precompress=False)
    assert len(report.stored) == 13 and report.ok
    for outcome, path in zip(report.outcomes, files):
        record = outcome.record
        assert record is not None and record.sha256 == _sha(path) and record.size == path.stat().st_size
        with store.open_original(record) as fh:
            assert fh.read() == path.read_bytes()
        assert record.path == f"objects/sha256/{record.sha256[:2]}/{record.sha256}.dcm"
    objects = sorted(p for p in (Path(store.objects.root) / "objects").rglob("*") if p.is_file())
    assert len(objects) == 13

    again = store.ingest(files, precompress=False)
    assert len(again.duplicates) == 13 and not again.stored and again.ok
    assert sorted(p for p in (Path(store.objects.root) / "objects").rglob("*") if p.is_file()) == objects
    assert store.check().consistent and not store.check().orphans


@pytest.mark.realdata
def test_every_object_is_stored_colour_included_and_marked_passthrough(shared_data: Path, store) -> None:
    from pydicom.data import get_testdata_file

    sr = Path(get_testdata_file("test-SR.dcm"))  # a structured report: no pixels at all
    report = store.ingest([shared_data / US_RGB, sr], precompress=False)
    assert len(report.stored) == 2
    us, sr_out = (o.record for o in report.outcomes)
    assert not us.compressible and "RGB" in us.passthrough_reason
    assert not sr_out.compressible and sr_out.rows is None
    assert store.find_instances(None, None, {"SOPInstanceUID": sr_out.sop_uid})


@pytest.mark.realdata
def test_conflict_is_reported_and_never_overwrites(shared_data: Path, store) -> None:
    a, b = shared_data / CONFLICT_A, shared_data / CONFLICT_B
    assert pydicom.dcmread(a).SOPInstanceUID == pydicom.dcmread(b).SOPInstanceUID and _sha(a) != _sha(b)
    first = store.ingest_bytes(a.read_bytes(), source=str(a))
    second = store.ingest_bytes(b.read_bytes(), source=str(b))
    assert (first.status, second.status) == ("stored", "conflict")
    assert str(b) in second.message and "not overwritten" in second.message
    (record,) = store.instances(first.study_uid)
    assert record.sha256 == _sha(a)
    with store.open_original(record) as fh:
        assert fh.read() == a.read_bytes()
    report = store.ingest([b], precompress=False)
    assert len(report.conflicts) == 1 and not report.ok


@pytest.mark.realdata
def test_non_dicom_and_invalid_uids_are_reported_not_stored(shared_data: Path, store, tmp_path: Path) -> None:
    junk = tmp_path / "inbox"
    junk.mkdir()
    (junk / "notes.dcm").write_bytes(b"this is not DICOM at all" * 100)
    (junk / "image.dcm").write_bytes(bytes(range(256)) * 64)
    # a file with the DICM prefix but a broken dataset
    (junk / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    report = store.ingest([junk / "notes.dcm", junk / "image.dcm", junk / "broken.dcm", shared_data / BAD_UID],
                          precompress=False)  # fmt: skip
    assert [o.status for o in report.outcomes] == ["rejected"] * 4
    assert "not a DICOM file" in report.outcomes[0].message
    assert "is not a DICOM UID" in report.outcomes[3].message
    assert store.find_studies({}) == [] and not (Path(store.objects.root) / "objects").exists()
    # a PS3.10 file whose dataset lacks SOP Class / Instance UID (only its file meta has them; nibabel's
    # decimal_rescale.dcm is one): said to be DICOM, but not a storable instance
    import pydicom

    ds = pydicom.dcmread(series_files(shared_data, CHEST, 1)[0])
    del ds.SOPClassUID, ds.SOPInstanceUID
    ds.save_as(tmp_path / "no_uids.dcm", enforce_file_format=True)
    (outcome,) = store.ingest([tmp_path / "no_uids.dcm"], precompress=False).outcomes
    assert outcome.status == "rejected" and "without SOP Class and SOP Instance UID" in outcome.message
    with pytest.raises(InputNotFoundError):
        store.ingest([tmp_path / "missing"], precompress=False)
    # inside a folder: files named like DICOM but not DICOM are rejected (listed as failures, issue 10
    # item 9); files the walk leaves out by their suffix (README.txt) are listed as skipped
    (junk / "README.txt").write_text("acquired on ...")
    (junk / "series").mkdir()
    for path in series_files(shared_data, CHEST, 2):
        (junk / "series" / path.name).write_bytes(path.read_bytes())
    report = store.ingest([junk], precompress=False)
    assert len(report.stored) == 2 and not report.ok
    assert sorted(Path(o.source).name for o in report.rejected) == ["broken.dcm", "image.dcm", "notes.dcm"]
    assert sorted(Path(o.source).name for o in report.skipped) == ["README.txt"]
    assert {o.status for o in report.outcomes} == {"stored", "skipped", "rejected"}
    for name in ("broken.dcm", "image.dcm", "notes.dcm"):
        (junk / name).unlink()
    report = store.ingest([junk], precompress=False)
    assert report.ok and len(report.skipped) == 1 and len(report.duplicates) == 2  # skipped files are no failure


@pytest.mark.realdata
def test_queries_return_dicom_json(shared_data: Path, store) -> None:
    chest = series_files(shared_data, CHEST, 10)
    mr = series_files(shared_data, MR, 5)
    store.ingest(chest + mr + [shared_data / US_RGB], precompress=False)
    studies = store.find_studies({})
    assert len(studies) == 3
    chest_ds = pydicom.dcmread(chest[0], stop_before_pixels=True)
    (found,) = store.find_studies({"StudyInstanceUID": chest_ds.StudyInstanceUID})
    assert found["0020000D"] == {"vr": "UI", "Value": [chest_ds.StudyInstanceUID]}
    assert found["00080061"]["Value"] == ["CT"] and found["00201208"]["Value"] == [10]
    assert found["00201206"]["Value"] == [1] and found["00080020"]["Value"] == [chest_ds.StudyDate]
    # matching: wildcard, range, tag form, lower-level key, ModalitiesInStudy
    pid = str(chest_ds.PatientID)
    assert [s["0020000D"]["Value"][0] for s in store.find_studies({"PatientID": pid[:4] + "*"})] == [
        chest_ds.StudyInstanceUID
    ]
    assert len(store.find_studies({"00100020": pid})) == 1
    assert len(store.find_studies({"StudyDate": f"{chest_ds.StudyDate}-{chest_ds.StudyDate}"})) >= 1
    assert len(store.find_studies({"StudyDate": chest_ds.StudyDate})) >= 1
    assert len(store.find_studies({"StudyDate": f"-{chest_ds.StudyDate}"})) >= 1
    # a value that is no date (or time) is a 400 that says what is expected, not an empty match
    # (an outside audit, 2026-12-04: "notadate" was 200 [], "2016-13-45" a 400)
    for key, bad in (("StudyDate", "notadate"), ("StudyDate", "2016-13-45"), ("StudyDate", "2016*"),
                     ("StudyDate", "-"), ("PatientBirthDate", "1970"), ("StudyTime", "1pm"), ("StudyTime", "12:3"),
                     ("StudyDate", "20161345"), ("StudyDate", "20160230"), ("StudyDate", "00000000"),
                     ("PatientBirthDate", "19800732"), ("StudyTime", "25"), ("StudyTime", "126100"),
                     ("StudyTime", "-2599")):  # fmt: skip
        with pytest.raises(InvalidInputError, match="expected a (DA|TM) value"):
            store.find_studies({key: bad})
    assert store.find_studies({"StudyTime": "000000-235959.999999"}) is not None
    assert store.find_studies({"StudyDate": "20160229-20241231", "StudyTime": "2359-"}) is not None
    assert len(store.find_studies({"ModalitiesInStudy": "MR"})) == 1
    assert len(store.find_studies({"Modality": "US"})) == 1
    assert len(store.find_studies({"SOPInstanceUID": chest_ds.SOPInstanceUID})) == 1
    assert store.find_studies({"PatientID": "no such*"}) == []
    # wildcards match case as exact values do (PS3.4 C.2.2.2.4; SQLite's LIKE folded ASCII case)
    assert pid != pid.swapcase() and store.find_studies({"PatientID": pid.swapcase()[:4] + "*"}) == []
    assert store.find_studies({"PatientID": pid.swapcase()}) == []
    # limit / offset page through the same order
    page = [s["0020000D"]["Value"][0] for s in store.find_studies({}, limit=2)]
    rest = [s["0020000D"]["Value"][0] for s in store.find_studies({}, offset=2)]
    assert len(page) == 2 and len(rest) == 1 and set(page + rest) == {s["0020000D"]["Value"][0] for s in studies}
    series = store.find_series(chest_ds.StudyInstanceUID, {})
    assert len(series) == 1 and series[0]["00201209"]["Value"] == [10] and series[0]["00080060"]["Value"] == ["CT"]
    instances = store.find_instances(chest_ds.StudyInstanceUID, None, {"InstanceNumber": str(chest_ds.InstanceNumber)})
    assert len(instances) == 1 and instances[0]["00080018"]["Value"] == [chest_ds.SOPInstanceUID]
    assert instances[0]["00083002"]["Value"] == [str(chest_ds.file_meta.TransferSyntaxUID)]
    assert len(store.find_instances(None, None, {"Modality": "MR"}, limit=3)) == 3
    # metadata: the full header, pixel data by a URI relative to the instance (or under the one given)
    record = store.instances(chest_ds.StudyInstanceUID, sop_uid=chest_ds.SOPInstanceUID)[0]
    meta = store.metadata(record)
    assert meta["00280010"]["Value"] == [chest_ds.Rows] and meta["7FE00010"] == {
        "vr": "OW",
        "BulkDataURI": "bulkdata/7FE00010",
    }
    assert store.metadata(record, "http://h/i")["7FE00010"]["BulkDataURI"] == "http://h/i/bulkdata/7FE00010"
    # fuzzy names
    name = str(chest_ds.PatientName)
    if name:
        assert store.find_studies({"PatientName": name.lower()[:3]}, fuzzy=True)


@pytest.mark.realdata
def test_instances_are_sorted_along_the_slice_normal(shared_data: Path, store) -> None:
    files = series_files(shared_data, CHEST, 16)
    report = store.ingest(list(reversed(files)), precompress=False)
    records = store.instances(report.outcomes[0].study_uid)
    positions = [r.position for r in records]
    assert None not in positions and positions == sorted(positions) and len(set(positions)) == 16
    one = store.instances(records[0].study_uid, records[0].series_uid, records[3].sop_uid)
    assert [r.sop_uid for r in one] == [records[3].sop_uid]


@pytest.mark.parametrize(
    "bad",
    ["../../etc", "1.2' OR 1=1 --", "1.2.*", "1.02.3", "1.2/..", "%2e%2e"],
)
def test_uids_are_checked_before_sql_or_paths(store, bad: str) -> None:
    with pytest.raises(InvalidUidError):
        store.instances(bad)
    with pytest.raises(InvalidUidError):
        store.find_studies({"StudyInstanceUID": bad})
    with pytest.raises(InvalidUidError):
        store.archive(bad, None, "diagnostic")
    with pytest.raises(NotFoundError):
        store.instances("1.2.3.4")
    with pytest.raises(InvalidInputError):
        store.find_studies({"NoSuchKey": "x"})


def test_open_store_refuses_what_it_cannot_be(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError):
        open_store(tmp_path / "file")
    with pytest.raises(NotFoundError):
        open_store(tmp_path / "nowhere", create=False)
    with pytest.raises(InvalidInputError, match="catalog"):
        open_store("memory://no-catalog")


def test_a_folder_of_other_files_is_not_made_into_a_store(tmp_path: Path) -> None:
    """``--store`` pointed at a user's folder (the inputs' own, say) is refused before anything is
    written there; an empty folder, a store and a folder with only hidden entries are fine."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "ct.0.dcm").write_bytes(b"x" * 10)
    with pytest.raises(InvalidInputError, match=r"holds other files \(ct\.0\.dcm\)"):
        open_store(inbox)
    assert sorted(p.name for p in inbox.iterdir()) == ["ct.0.dcm"]  # no tmp/, no catalog left behind
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    (quiet / ".nfs000123").write_text("")
    with open_store(quiet) as store:
        assert store.find_studies({}) == []
    with open_store(quiet) as store:  # now a store: opened again
        assert store.find_studies({}) == []
    # the re-audit: a file:// URL is a local folder too, and a catalog.sqlite that is not SQLite
    # does not make a folder of other files a store (its tmp/ was made before the refusal)
    for url in (f"file://{inbox}", f"file://localhost{inbox}", f"file:{inbox}", f"local://{inbox}"):
        with pytest.raises(InvalidInputError, match="holds other files"):  # every spelling of the folder
            open_store(url)
    for bogus in ("", "not a database"):  # an empty or non-SQLite catalog.sqlite does not make it a store
        (inbox / "catalog.sqlite").write_text(bogus)
        with pytest.raises(InvalidInputError, match="holds other files"):
            open_store(inbox)
        with pytest.raises(NotFoundError, match="catalog"):  # serve's open: refused before tmp/ is made
            open_store(inbox, create=False)
    assert sorted(p.name for p in inbox.iterdir()) == ["catalog.sqlite", "ct.0.dcm"]
    with pytest.raises(InvalidInputError, match="host"):
        open_store("file://otherhost/srv/store")


def test_a_new_store_is_its_owners_alone_and_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    """A store's files follow the umask (0644 under 022), and its folder was 0755: every user of the
    machine could read the patient images. A store medcodec creates is 0700 whatever the umask (its
    parents as usual); a folder the owner made, or a store opened again, keeps its mode."""
    old = os.umask(0o022)
    try:
        with open_store(tmp_path / "deep" / "store"):
            pass
        assert (tmp_path / "deep" / "store").stat().st_mode & 0o777 == 0o700
        assert (tmp_path / "deep").stat().st_mode & 0o777 == 0o755
        shared = tmp_path / "shared"
        shared.mkdir(mode=0o750)
        with open_store(shared):
            pass
        (tmp_path / "deep" / "store").chmod(0o750)  # the owner shares it with a group
        with open_store(tmp_path / "deep" / "store"):
            pass
    finally:
        os.umask(old)
    assert shared.stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "deep" / "store").stat().st_mode & 0o777 == 0o750


@pytest.mark.realdata
def test_zip_and_dicomdir_inputs(shared_data: Path, store, tmp_path: Path) -> None:
    import zipfile

    from pydicom.data import get_testdata_file

    files = series_files(shared_data, CHEST, 3)
    archive = tmp_path / "study.zip"  # a download as people get it, built here, not kept in the repo
    with zipfile.ZipFile(archive, "w") as zf:
        for path in files:
            zf.write(path, f"CT/{path.name}")
        zf.writestr("README.txt", "not DICOM")
    report = store.ingest([archive], precompress=False)
    assert len(report.stored) == 3 and report.ok
    assert report.stored[0].source == f"{archive}::CT/{files[0].name}"
    assert [(o.source, o.status) for o in report.skipped] == [(f"{archive}::README.txt", "skipped")]  # said
    assert {o.record.sha256 for o in report.stored} == {_sha(p) for p in files}

    dicomdir = Path(get_testdata_file("DICOMDIR"))
    report = store.ingest([dicomdir], precompress=False)
    records = pydicom.dcmread(dicomdir).DirectoryRecordSequence
    referenced = {tuple(r.ReferencedFileID) for r in records if "ReferencedFileID" in r}  # PS3.3 F.3.2.2
    assert len(report.outcomes) == len(referenced) == 31
    assert len(report.stored) + len(report.duplicates) + len(report.conflicts) == 31 and not report.rejected


def test_a_store_on_another_fsspec_filesystem(tmp_path: Path) -> None:
    """The generic (non-local) storage path end to end: memory:// objects, SQLite catalog elsewhere."""
    from pydicom.data import get_testdata_file

    from medcodec.delivery.precompute import precompute

    url = f"memory://medcodec-test-{tmp_path.name}"
    with open_store(url, catalog=f"sqlite:///{tmp_path / 'catalog.sqlite'}") as store:
        data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
        outcome = store.ingest_bytes(data, source="CT_small.dcm")
        assert outcome.status == "stored"
        (record,) = store.instances(outcome.study_uid)
        with store.open_original(record) as fh:
            assert fh.read() == data
        precompute(store, [outcome.study_uid], presets=["diagnostic"], scheduler="threads")
        archive = store.archive(outcome.study_uid, None, "diagnostic")
        with store.open_archive(archive) as fh:
            body = fh.read()
        assert hashlib.sha256(body).hexdigest() == archive.etag and body[:2] == b"PK"
        check = store.check()
        assert check.consistent and check.checked == 4 and not check.orphans  # original, rendition, 2 archives


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """A server and an ingest started together on a fresh store: both create the catalog."""
    import subprocess
    import sys

    code = f"from medcodec.delivery import open_store; open_store({str(tmp_path / 'store')!r}).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]  # wait for all before asserting
    for proc, err in zip(procs, errors):
        assert proc.returncode == 0, err.decode()
    with open_store(tmp_path / "store", create=False) as store:
        assert store.find_studies({}) == []


@pytest.mark.realdata
def test_series_mapping_is_remembered_until_the_series_changes(shared_data: Path, store, monkeypatch) -> None:
    # Store.series_mapping remembers per (series, preset, statistics): no header read the second
    # time; a new instance changes the statistics, and the mapping is planned again
    files = series_files(shared_data, MR)
    store.ingest(files[:3], precompress=False)
    series = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    opened: list[str] = []
    original = store.open_original
    monkeypatch.setattr(store, "open_original", lambda record: opened.append(record.sop_uid) or original(record))
    first = store.series_mapping(series, "diagnostic")
    assert first is not None and len(opened) == 1
    assert store.series_mapping(series, "diagnostic") is first and len(opened) == 1
    assert store.series_mapping(series, "original") is None
    brightest = max(files[3:], key=lambda p: int(pydicom.dcmread(p).pixel_array.max()))
    store.ingest([brightest], precompress=False)
    again = store.series_mapping(series, "diagnostic")
    assert len(opened) == 2 and again is not first
    assert again.content[1] >= first.content[1]  # the series' range as it is now


def test_a_store_path_that_is_a_file_or_missing_is_refused_clearly(tmp_path: Path) -> None:
    """A file where the store folder should be: InvalidInputError (not FileExistsError from the
    race-tolerant mkdir); a missing store with ``create=False``: NotFoundError. Nothing written."""
    blocker = tmp_path / "store"
    blocker.write_bytes(b"not a folder")
    with pytest.raises(InvalidInputError, match="not a folder"):
        open_store(blocker)
    assert blocker.read_bytes() == b"not a folder"
    with pytest.raises(NotFoundError):
        open_store(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()


def _edited(path: Path, tmp_path: Path, name: str, **attrs: object) -> bytes:
    """``path`` with ``attrs`` set (``syntax``: written in that transfer syntax instead), as bytes."""
    ds = pydicom.dcmread(path)
    syntax = attrs.pop("syntax", None)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    if syntax is not None:
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress(generate_instance_uid=False)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(str(syntax))
    out = tmp_path / name
    ds.save_as(out, enforce_file_format=True)
    return out.read_bytes()


def _objects(store) -> list[Path]:
    return sorted(p for p in (Path(store.objects.root) / "objects").rglob("*") if p.is_file())


@pytest.mark.realdata
def test_values_the_catalog_cannot_hold_or_syntaxes_it_does_not_know_still_store(
    shared_data: Path, store, tmp_path: Path
) -> None:
    """An IS past its range (SQLite's integers overflowed: a 500 to STOW and an orphan object) and
    a transfer syntax UID that names no syntax: stored byte for byte, the catalog column empty."""
    source = series_files(shared_data, CHEST, 2)
    big = _edited(source[0], tmp_path, "big.dcm", InstanceNumber="99999999999999999999", SeriesNumber="88888888888")
    out = store.ingest_bytes(big, source="big")
    assert out.status == "stored" and out.record.instance_number is None
    ds = pydicom.dcmread(source[1])
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID("1.2.3.4.5")  # a valid UID, not a transfer syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)  # the dataset as it was read, under that meta
    out = store.ingest_bytes(buffer.getvalue(), source="odd")
    assert out.status == "stored" and out.record.transfer_syntax_uid.startswith("1.2.3.4")
    assert store.check().consistent and not store.check().orphans


@pytest.mark.realdata
def test_a_transfer_syntax_that_is_no_uid_is_refused(shared_data: Path, store) -> None:
    """A meta (0002,0010) holding markup was stored and shown by the viewer's table as HTML (an
    outside audit, 2026-12-01): a stored XSS through STOW. Refused now, nothing kept."""
    ds = pydicom.dcmread(series_files(shared_data, CHEST, 1)[0])
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    element = b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00"  # pydicom refuses to write markup
    assert buffer.getvalue().count(element) == 1
    hostile = buffer.getvalue().replace(element, element[:8] + b"<svg onload=alert()>")  # the same 20 bytes
    with pytest.raises(InvalidUidError, match=r"Transfer Syntax UID \(0002,0010\).*is not a DICOM UID"):
        store.ingest_bytes(hostile, source="hostile")
    assert store.find_studies({}) == [] and store.check().consistent and not store.check().orphans


@pytest.mark.realdata
def test_a_catalog_failure_leaves_no_object_behind(shared_data: Path, store, monkeypatch) -> None:
    """The object is written just before the catalog transaction; when that fails the object goes
    too (fault injected: the catalog raises), and the error is the project's, not the driver's."""
    from medcodec.errors import DicomError

    path = series_files(shared_data, CHEST, 1)[0]

    def broken(**_kwargs: object) -> None:
        raise RuntimeError("the database said no")

    monkeypatch.setattr(store.catalog, "add_instance", broken)
    with pytest.raises(DicomError, match="cannot catalog the object: RuntimeError"):
        store.ingest_bytes(path.read_bytes(), source=str(path))
    assert _objects(store) == []
    monkeypatch.undo()
    assert store.ingest_bytes(path.read_bytes(), source=str(path)).status == "stored"


@pytest.mark.realdata
def test_an_instance_of_another_patient_is_filed_into_its_study_with_a_warning(
    shared_data: Path, store, tmp_path: Path
) -> None:
    """It was filed silently (HTTP audit); refusing it would lose an object of the study (another
    system's dose report without the issuer, a study built from several sources): stored, said."""
    first, second = series_files(shared_data, CHEST, 2)
    assert store.ingest_bytes(first.read_bytes(), source="a").status == "stored" and not _objects(store) == []
    other = _edited(second, tmp_path, "other.dcm", PatientID="SOMEONE-ELSE")
    out = store.ingest_bytes(other, source="stow")
    assert out.status == "stored" and out.message.startswith("warning:") and "SOMEONE-ELSE" in out.message
    assert store.catalog.get_instance(out.sop_uid) is not None and len(_objects(store)) == 2
    (study,) = store.find_studies({"StudyInstanceUID": out.study_uid})
    assert study["00100020"]["Value"] == [pydicom.dcmread(first, stop_before_pixels=True).PatientID]  # kept
    assert not store.ingest_bytes(first.read_bytes(), source="again").message.startswith("warning:")


@pytest.mark.realdata
def test_the_same_instance_sent_again_in_another_file_or_syntax_is_a_duplicate(
    shared_data: Path, store, tmp_path: Path
) -> None:
    """A C-STORE SCP writes its own file meta, a client may send back a decompressed copy: the
    same instance (same attributes, same decoded pixels) is a duplicate, not a conflict; other
    pixels under the same UID stay a conflict."""
    from pydicom.data import get_testdata_file

    path = Path(get_testdata_file("MR_small_jp2klossless.dcm"))
    assert store.ingest_bytes(path.read_bytes(), source="a").status == "stored"
    ds = pydicom.dcmread(path)
    ds.file_meta.ImplementationVersionName = "OTHER_SCP"
    meta = tmp_path / "meta.dcm"
    ds.save_as(meta, enforce_file_format=True)
    out = store.ingest_bytes(meta.read_bytes(), source="dimse")
    assert out.status == "duplicate" and "another file meta" in out.message
    plain = _edited(path, tmp_path, "plain.dcm", syntax=pydicom.uid.ExplicitVRLittleEndian)
    out = store.ingest_bytes(plain, source="dimse")
    assert out.status == "duplicate" and "same pixels" in out.message
    ds = pydicom.dcmread(tmp_path / "plain.dcm")
    pixels = ds.pixel_array.copy()
    pixels[0, 0] += 1
    ds.PixelData = pixels.tobytes()
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed, enforce_file_format=True)
    assert store.ingest_bytes(changed.read_bytes(), source="dimse").status == "conflict"
    assert len(_objects(store)) == 1


def _with_group_length(data: bytes, group: int) -> bytes:
    """An Explicit VR Little Endian file with a (gggg,0000) UL element put before the first element
    of ``group`` (pydicom 3 drops group lengths when it writes, so they are put in by hand)."""
    meta_end = 132 + 12 + int.from_bytes(data[140:144], "little")  # (0002,0000) holds the meta's length
    at = meta_end
    while int.from_bytes(data[at : at + 2], "little") < group:  # skip elements of lower groups
        vr = data[at + 4 : at + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            at += 12 + int.from_bytes(data[at + 8 : at + 12], "little")
        else:
            at += 8 + int.from_bytes(data[at + 6 : at + 8], "little")
    element = group.to_bytes(2, "little") + b"\0\0UL\x04\0" + (1234).to_bytes(4, "little")
    return data[:at] + element + data[at:]


def test_the_same_instance_with_or_without_group_lengths_is_a_duplicate(store, tmp_path: Path) -> None:
    """An outside audit (2026-12-04): TCIA files carry the retired group lengths (gggg,0000), DCMTK's
    storescu drops them, and the same instance sent both ways was a conflict (0xC111 to the C-STORE,
    exit 1 to ingest). Group lengths, at any depth, are no content; any other difference still is."""
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    plain = tmp_path / "plain.dcm"
    ds.save_as(plain, enforce_file_format=True)
    lengths = _with_group_length(_with_group_length(plain.read_bytes(), 0x0008), 0x0028)
    read = pydicom.dcmread(io.BytesIO(lengths))
    assert 0x00080000 in read and 0x00280000 in read and read.PatientName == ds.PatientName
    assert store.ingest_bytes(lengths, source="tcia").status == "stored"
    out = store.ingest_bytes(plain.read_bytes(), source="storescu")
    assert out.status == "duplicate" and "group length" in out.message, out.message
    ds.PatientName = "Other^Name"  # any other difference is still content
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed, enforce_file_format=True)
    assert store.ingest_bytes(changed.read_bytes(), source="other").status == "conflict"
    assert len(_objects(store)) == 1
    from medcodec.delivery.ingest import _drop_group_lengths  # and inside sequence items

    item = Dataset()
    item.add_new(0x00080000, "UL", 8)
    item.ReferencedSOPInstanceUID = "1.2.3"
    nested = Dataset()
    nested.add_new(0x00080000, "UL", 1)
    nested.ReferencedImageSequence = [item]
    _drop_group_lengths(nested)
    assert 0x00080000 not in nested and 0x00080000 not in nested.ReferencedImageSequence[0]
    assert nested.ReferencedImageSequence[0].ReferencedSOPInstanceUID == "1.2.3"


def test_the_same_instance_with_or_without_length_to_end_is_a_duplicate(store, tmp_path: Path) -> None:
    """Left by the outside re-check of 2026-12-04: ACR-NEMA's Length to End (0008,0001), retired like
    the group lengths and like them only the size of one encoding, present in one copy and absent in
    the other made the same instance a conflict. It is no content; any other difference still is."""
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    plain = tmp_path / "plain.dcm"
    ds.save_as(plain, enforce_file_format=True)
    ds.add_new(0x00080001, "UL", 123456)
    with_length = tmp_path / "length.dcm"
    ds.save_as(with_length, enforce_file_format=True)
    assert 0x00080001 in pydicom.dcmread(with_length)
    assert store.ingest_bytes(with_length.read_bytes(), source="acr-nema").status == "stored"
    out = store.ingest_bytes(plain.read_bytes(), source="storescu")
    assert out.status == "duplicate", out.message
    ds.PatientID = "other"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed, enforce_file_format=True)
    assert store.ingest_bytes(changed.read_bytes(), source="other").status == "conflict"
    assert len(_objects(store)) == 1


@pytest.mark.realdata
def test_what_a_walk_meets_is_read_once_or_reported(shared_data: Path, tmp_path: Path) -> None:
    """CLI audit, 2026-12-01: a store inside the folder it was ingested from was read back as
    input (one series of 5 became 3 series of 15); two ZIP members of one name gave one instance;
    members named ../x or holding a ZIP, and a FIFO in a folder (which hung), vanished or
    blocked; one unreadable ZIP stopped the whole ingest."""
    import os
    import warnings
    import zipfile

    files = series_files(shared_data, CHEST, 4)
    project = tmp_path / "proj"
    (project / "dicom").mkdir(parents=True)
    for f in files[:2]:
        (project / "dicom" / f.name).write_bytes(f.read_bytes())
    os.mkfifo(project / "dicom" / "pipe.dcm")
    with zipfile.ZipFile(project / "dicom" / "bundle.zip", "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of the name given twice; ZIP allows it
        zf.writestr("a.dcm", files[2].read_bytes())
        zf.writestr("a.dcm", files[3].read_bytes())
        zf.writestr("../escape.dcm", files[0].read_bytes())
        zf.writestr("inner.zip", b"PK\x05\x06" + bytes(18))
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with open_store(project / "store") as store:
        first = store.ingest([project, tmp_path / "broken.zip"], precompress=False)
        assert len(first.stored) == 4, first.summary()  # the two files and both a.dcm; ../escape.dcm = files[0]
        assert len(first.duplicates) == 1 and first.duplicates[0].source.endswith("::../escape.dcm")
        assert [o.source for o in first.rejected] == [str(tmp_path / "broken.zip")]
        why = {o.source: o.message for o in first.skipped}
        assert "not a regular file" in why[str(project / "dicom" / "pipe.dcm")]
        assert "ZIP inside the ZIP" in why[f"{project / 'dicom' / 'bundle.zip'}::inner.zip"]
        second = store.ingest([project], precompress=False)
        assert not second.stored and len(second.duplicates) == 5, second.summary()
        assert "the store being ingested into" in {o.source: o.message for o in second.skipped}[str(project / "store")]
        assert store.catalog.instance_count() == 4


@pytest.mark.realdata
def test_ingest_again_after_an_interruption_precomputes_what_is_missing(shared_data: Path, store) -> None:
    """An ingest stopped after storing its files and before pre-computing (Ctrl-C, SIGTERM, here
    precompress=False), then run again: every file is a duplicate, yet the study's archives are
    missing; they were never made (no new instance), the study served live for ever."""
    files = series_files(shared_data, MR, 3)
    first = store.ingest(files, precompress=False)
    study = first.stored[0].study_uid
    assert store.catalog.archive(study, None, "diagnostic") is None
    again = store.ingest(files, presets=("diagnostic",))
    assert not again.stored and len(again.duplicates) == 3
    assert store.catalog.archive(study, None, "diagnostic") is not None
    assert store.catalog.archive(study, None, "preview") is None  # only what was asked
    third = store.ingest(files, presets=("diagnostic",))
    assert not third.precomputed  # nothing missing: nothing redone


def test_a_large_member_that_is_not_dicom_is_refused_from_its_first_bytes(store, tmp_path: Path) -> None:
    """CLI audit: a 150 MB member of zeros was inflated whole and parsed for 73 s (448 MB RSS)."""
    import time
    import zipfile

    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.dcm", bytes(64 << 20))  # 64 MB, ~64 kB compressed
    t0 = time.perf_counter()
    report = store.ingest([archive], precompress=False)
    assert time.perf_counter() - t0 < 5.0  # only its first 8 kB are inflated (was ~30 s at this size)
    (rejected,) = report.rejected
    assert "not a DICOM file (no DICM prefix" in rejected.message


@pytest.mark.realdata
def test_reindex_gives_studies_without_a_patient_id_their_own_patient(shared_data: Path, store, tmp_path: Path) -> None:
    """Before 2026-12-02 every study without a PatientID shared one patient row, whose name was the
    first one's: QIDO matched them all on it. Ingest files them apart now; reindex mends a store
    made before (the old state rebuilt here in SQL)."""

    from medcodec.delivery.catalog import patients, studies

    names = ("Nobody^First", "Citizen^Jan")
    uids = []
    for k, name in enumerate(names):
        ds = pydicom.dcmread(series_files(shared_data, CHEST, 2)[k])
        ds.StudyInstanceUID, ds.PatientID, ds.PatientName = pydicom.uid.generate_uid(), "", name
        ds.save_as(tmp_path / f"{k}.dcm", enforce_file_format=True)
        uids.append(str(ds.StudyInstanceUID))
    assert store.ingest([tmp_path / "0.dcm", tmp_path / "1.dcm"], precompress=False).ok
    with store.catalog.engine.begin() as conn:  # the store as an earlier version left it
        conn.execute(
            patients.insert().values(patient_key="\\", patient_id="", patient_name=names[0], birth_date="", sex="")
        )
        conn.execute(studies.update().where(studies.c.study_uid.in_(uids)).values(patient_key="\\"))
        conn.execute(patients.delete().where(patients.c.patient_key != "\\", patients.c.patient_id == ""))

    def found(name: str) -> set[str]:
        return {s["0020000D"]["Value"][0] for s in store.find_studies({"PatientName": name})}

    assert found(names[0]) == set(uids) and found(names[1]) == set()  # the old fault
    assert store.reindex() >= 2
    assert found(names[0]) == {uids[0]} and found(names[1]) == {uids[1]}
    assert store.reindex() == 0  # idempotent


@pytest.mark.realdata
def test_an_instance_of_another_patient_is_filed_and_said_in_words(shared_data: Path, store, tmp_path: Path) -> None:
    """A study's instance that names another Patient ID, or none, is filed into the study with a
    warning that names both patients as people read them (until 2026-12-02 an instance without a
    Patient ID was shown as its study UID, the internal key of a patient of its own)."""
    first, second, third = series_files(shared_data, CHEST)[:3]
    source = pydicom.dcmread(first)
    assert store.ingest([first], precompress=False).ok
    for path, patient_id, said in ((second, "", "no Patient ID"), (third, "OTHER", "Patient ID 'OTHER'")):
        ds = pydicom.dcmread(path)
        ds.PatientID = patient_id
        changed = tmp_path / f"{path.name}.{patient_id or 'none'}.dcm"
        ds.save_as(changed)
        (outcome,) = store.ingest([changed], precompress=False).outcomes
        assert outcome.status == "stored" and outcome.message.startswith("warning:")
        assert f"stored for Patient ID {str(source.PatientID)!r}" in outcome.message
        assert f"this instance has {said}:" in outcome.message
        assert outcome.message.count(str(source.StudyInstanceUID)) == 1  # the study, not a patient


def test_file_names_that_are_not_utf8_are_ingested(shared_data: Path, store, tmp_path: Path) -> None:
    """Latin-1 and Shift_JIS file names (CDs burned on Windows, old shares) are stored, their source
    recorded with the undecodable bytes as ``\\xNN``. Until 2026-12-02 they were rejected with a
    UnicodeEncodeError from the database driver (an outside audit)."""
    import os

    folder = tmp_path / "legacy"
    folder.mkdir()
    data = [p.read_bytes() for p in series_files(shared_data, MR, 2)]
    names = [b"M\xfcller.dcm", b"\x8eR\x93c.dcm"]  # Latin-1 "Müller", Shift_JIS "山田"
    for raw, content in zip(names, data):
        with open(os.path.join(os.fsencode(folder), raw), "wb") as fh:
            fh.write(content)
    report = store.ingest([folder], precompress=False)
    assert report.ok and [o.status for o in report.outcomes] == ["stored", "stored"], report.outcomes
    sources = sorted(r.source for r in store.instances(report.outcomes[0].study_uid))
    assert any(s.endswith("M\\xfcller.dcm") for s in sources), sources
    assert all(s.encode("utf-8") for s in sources)


def test_a_store_folder_that_cannot_be_made_is_an_output_error(tmp_path: Path) -> None:
    """open_store raised mkdir's raw FileNotFoundError (a library call, no CLI to catch it): it is an
    OutputError (also an OSError) naming the folder (found by the thirteenth session's audit)."""
    from medcodec.delivery import open_store
    from medcodec.errors import OutputError

    (tmp_path / "afile").write_bytes(b"")
    for where in (Path("/proc/medcodec-store"), tmp_path / "afile" / "store"):
        with pytest.raises(OutputError, match="cannot create the store folder") as caught:
            open_store(where)
        assert caught.value.path == str(where)


def test_a_store_folder_that_cannot_be_written_is_said_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only mount (EROFS, which root meets too) gave "cannot create the catalog ...
    OperationalError"; the folder's state is said with what to do. (``os.access`` is made to
    answer as on a read-only mount: the test runs as root in CI, and mounting needs privileges.)"""
    from medcodec.delivery import store as store_module
    from medcodec.errors import OutputError

    with open_store(tmp_path / "store") as store:
        assert store.find_studies({}) == []
    real = os.access
    monkeypatch.setattr(store_module.os, "access", lambda p, mode: False if mode == os.W_OK else real(p, mode))
    with pytest.raises(OutputError, match="cannot be written.*read-write"):
        open_store(tmp_path / "store", create=False)


@pytest.mark.realdata
def test_a_lossless_copy_is_a_duplicate_and_every_real_change_a_conflict(shared_data: Path, tmp_path: Path) -> None:
    """What a lossless transcode rewrites (Bits Stored / High Bit, sign, rescale, Rescale Type for a
    series that had no rescale, the Real World Value Mapping's stored-value range, trailing padding)
    leaves the instance the same; anything else is a conflict (two outside re-checks, 2026-12-03:
    copies of files with trailing padding were refused, a top-level intercept added to an enhanced
    object, a Real World Value Mapping slope, a Rescale Type or High Bit 14 were accepted)."""
    from pydicom.data import get_testdata_file

    from medcodec.delivery.live import instance_bytes

    ect = pydicom.dcmread(shared_data / "singles" / "ct_enhanced_multiframe_2f_512x512.dcm")  # signed, shifted
    ect.PixelData = (ect.pixel_array.astype(np.int32) - 1024).astype("<i2").tobytes()
    ect.PixelRepresentation = 1
    shared = ect.SharedFunctionalGroupsSequence[0]
    shared.PixelValueTransformationSequence[0].RescaleIntercept = "0"
    rwvm = Dataset()
    rwvm.RealWorldValueFirstValueMapped, rwvm.RealWorldValueLastValueMapped = 0, 4095
    rwvm.RealWorldValueIntercept, rwvm.RealWorldValueSlope, rwvm.LUTLabel = -1024.0, 1.0, "HU"
    shared.RealWorldValueMappingSequence = [rwvm]
    ect.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ect.save_as(tmp_path / "ect.dcm", enforce_file_format=True)
    sources = [tmp_path / "ect.dcm", Path(get_testdata_file("CT_small.dcm"))]  # CT_small ends in (FFFC,FFFC)
    with open_store(tmp_path / "store") as store:
        report = store.ingest(sources, precompress=False)
        records = [o.record for o in report.stored]
        assert len(records) == 2, report.summary()

        def outcome(ds: pydicom.Dataset) -> str:
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            return store.ingest_bytes(buf.getvalue(), source="test").status

        copies = {}
        for rec in records:
            data, _ = instance_bytes(store, rec, "1.2.840.10008.1.2.4.80")
            copies[rec.sop_uid] = data
            assert store.ingest_bytes(data, source="test").status == "duplicate", rec.sop_uid
        ect_copy = pydicom.dcmread(io.BytesIO(copies[records[0].sop_uid]))
        assert ect_copy.PixelRepresentation == 0  # it was shifted: its groups' rescale and mapping moved
        ct_copy = pydicom.dcmread(io.BytesIO(copies[records[1].sop_uid]))

        changed = copy.deepcopy(ect_copy)
        changed.RescaleIntercept, changed.RescaleSlope = "5000", "1"  # a top-level rescale the frames don't use
        assert outcome(changed) == "conflict"
        changed = copy.deepcopy(ect_copy)
        changed.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0].RealWorldValueSlope = 2.0
        assert outcome(changed) == "conflict"
        changed = copy.deepcopy(ect_copy)
        changed.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleType = "HU"
        assert outcome(changed) == "conflict"
        changed = copy.deepcopy(ct_copy)
        changed.RescaleType = "OD"
        assert outcome(changed) == "conflict"
        changed = copy.deepcopy(ct_copy)
        changed.HighBit = 14
        assert outcome(changed) == "conflict"
        changed = copy.deepcopy(ct_copy)
        changed.PatientName = "Someone^Else"
        assert outcome(changed) == "conflict"


def test_a_study_dated_the_acr_nema_way_is_found_by_date_queries(store, tmp_path: Path) -> None:
    """An outside audit (2026-12-04): a 1993 study dated ``1993.04.30`` (the pre-3.0 DA form that
    PS3.5 §6.2 asks readers to accept) was found by no StudyDate query but the dotted literal."""
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyDate = "1993.04.30"
    ds.StudyTime = "11:27:24"  # the ACR-NEMA time form too
    ds.PatientBirthDate = "1950.01.02"
    old = tmp_path / "old.dcm"
    ds.save_as(old, enforce_file_format=True)
    out = store.ingest_bytes(old.read_bytes(), source="old")
    assert out.status == "stored"

    def found(**query: str) -> list[str]:
        return [s["0020000D"]["Value"][0] for s in store.find_studies(query)]

    for date in ("19930430", "1993.04.30", "19930101-19931231", "19930430-", "-19930430"):
        assert found(StudyDate=date) == [out.study_uid], date
    for date in ("19930429", "19940101-"):
        assert found(StudyDate=date) == [], date
    for time in ("112724", "11:27:24", "112000-113000", "1127-"):
        assert found(StudyTime=time) == [out.study_uid], time
    assert found(StudyTime="113000-120000") == []
    assert found(PatientBirthDate="19500102") == [out.study_uid]
    assert found(PatientBirthDate="19490101-19501231") == [out.study_uid]


def test_a_range_finds_only_entities_with_a_value_in_it(store, tmp_path: Path) -> None:
    """Left by the outside re-check of 2026-12-04: ``PatientBirthDate=-20000101`` ("born before
    2000") also found the patients with no birth date, whose empty value sorted below the bound.
    A range (PS3.4 C.2.2.2.5) matches values in it; single values and universal matching as before."""
    from pydicom.data import get_testdata_file

    uids = {}
    for name, birth, time in (("dated", "19500102", "112724"), ("undated", "", "")):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.PatientID, ds.PatientBirthDate, ds.StudyTime = name, birth, time
        path = tmp_path / f"{name}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out = store.ingest_bytes(path.read_bytes(), source=name)
        assert out.status == "stored", out.message
        uids[name] = out.study_uid

    def found(**query: str) -> set[str]:
        return {s["0020000D"]["Value"][0] for s in store.find_studies(query)}

    for birth in ("-20000101", "19000101-", "19000101-20000101"):
        assert found(PatientBirthDate=birth) == {uids["dated"]}, birth
    assert found(StudyTime="-120000") == {uids["dated"]}
    assert found(PatientBirthDate="19500102") == {uids["dated"]}
    assert found(PatientBirthDate="") == set(uids.values())  # universal matching: every study
    assert found(PatientID="undated") == {uids["undated"]}


def test_the_same_instance_in_implicit_vr_with_private_elements_is_a_duplicate(store, tmp_path: Path) -> None:
    """An outside audit (2026-12-04): an SCU that offers only Implicit VR sends the Explicit VR
    original's private elements without their VR; pydicom reads them as UN (and OB Pixel Data as
    OW), so the same instance was a conflict (0xC111). Elements are now compared by their value
    bytes when their VRs differ; another private value is still a conflict."""
    from pydicom.data import get_testdata_file
    from pydicom.dataset import Dataset as Ds

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    block = ds.private_block(0x0013, "ACME 1.0", create=True)  # no dictionary knows it: UN in Implicit VR
    block.add_new(0x01, "LO", "a private note")
    block.add_new(0x02, "US", [3, 4])
    item = Ds()
    item.add_new(0x00130010, "LO", "ACME 1.0")
    item.add_new(0x00131001, "SH", "nested")
    block.add_new(0x03, "SQ", [item])
    explicit = tmp_path / "explicit.dcm"
    ds.save_as(explicit, enforce_file_format=True)
    assert store.ingest_bytes(explicit.read_bytes(), source="modality").status == "stored"
    implicit = tmp_path / "implicit.dcm"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(implicit, enforce_file_format=True)
    read = pydicom.dcmread(implicit)
    note = block.get_tag(0x01)
    assert read[note].VR == "UN"  # what an Implicit VR transfer leaves of it
    out = store.ingest_bytes(implicit.read_bytes(), source="old-scu")
    assert out.status == "duplicate", out.message
    read[note].value = b"another note  "
    other = tmp_path / "other.dcm"
    read.save_as(other, enforce_file_format=True)
    assert store.ingest_bytes(other.read_bytes(), source="other").status == "conflict"
    assert len(_objects(store)) == 1


@pytest.mark.realdata
def test_a_lossy_copy_of_our_own_sent_back_is_not_stored_again(shared_data: Path, store, tmp_path: Path) -> None:
    """A PACS that forwards what it receives sent medcodec's own diagnostic copies back (STOW-RS or
    C-STORE): each was stored beside its original, and every WADO-RS answer and archive of the study
    then held the image twice (an outside audit with Orthanc, 2026-12-05). Such a copy is a
    duplicate of its original now; in a store without that original it is an instance like any."""
    from medcodec.delivery.presets import PRESETS

    files = series_files(shared_data, MR, 3)
    study = store.ingest(files, precompress=False).studies[0]
    series = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
    copy = PRESETS["diagnostic"].encode_instance(files[0].read_bytes(), mapping=store.series_mapping(series, "diagnostic"))
    outcome = store.ingest_bytes(copy.data, source="PACS")
    assert outcome.status == "duplicate" and "lossy copy this store makes" in outcome.message
    assert outcome.record is not None and outcome.record.sop_uid == pydicom.dcmread(files[0]).SOPInstanceUID
    assert len(store.instances(study)) == 3
    with open_store(tmp_path / "other") as other:  # a store that does not hold the original takes it
        assert other.ingest_bytes(copy.data, source="PACS").status == "stored"
    # a copy someone changed after us (a PACS's reconciliation: another name, another study) is
    # a new instance, not ours: it was dropped as a duplicate, nothing stored (the re-audit)
    from pydicom.uid import generate_uid

    for change in ({"PatientName": "Reconciled^Patient"}, {"StudyInstanceUID": generate_uid()}):
        changed = pydicom.dcmread(io.BytesIO(copy.data))
        for keyword, value in change.items():
            setattr(changed, keyword, value)
        changed.SOPInstanceUID = changed.file_meta.MediaStorageSOPInstanceUID = generate_uid(prefix="2.25.")
        buf = io.BytesIO()
        changed.save_as(buf, enforce_file_format=True)
        assert store.ingest_bytes(buf.getvalue(), source="PACS").status == "stored", change
