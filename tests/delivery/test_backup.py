"""``medcodec store backup``: a consistent copy of a store in use, itself a store; a second backup
copies what is new; damage in the source is named and the rest is copied; refusals."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from delivery_data import CHEST, HEAD, MR, series_files, store  # noqa: F401 (fixture)

from medcodec.cli.main import cli
from medcodec.delivery import open_store
from medcodec.errors import InvalidInputError, OutputExistsError
from medcodec.testing.server import start_server, stop_server

pytestmark = pytest.mark.realdata


def _objects(root: Path) -> dict[str, str]:
    """Every object file under a store (not the catalog, not tmp/) with its sha256."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for sub in ("objects", "renditions", "archives")
        for p in (root / sub).rglob("*")
        if p.is_file()
    }


def test_a_backup_is_a_store_with_the_same_studies_objects_and_archives(shared_data: Path, store, tmp_path) -> None:
    chest, mr = series_files(shared_data, CHEST, 6), series_files(shared_data, MR, 4)
    assert store.ingest(chest + mr, presets=("diagnostic",)).ok
    dest = tmp_path / "backup"
    report = store.backup(dest)
    source_root = Path(store.objects.root)
    assert report.complete and report.instances == 10 and report.present == 0 and report.snapshots == 1
    assert _objects(dest) == _objects(source_root)  # every original, rendition and archive, byte for byte
    assert report.copied == len(_objects(dest)) and report.copied_bytes == sum(
        (source_root / rel).stat().st_size for rel in _objects(dest)
    )
    assert sorted(p.name for p in (dest / "tmp").iterdir()) == []  # no snapshot or part left behind
    with open_store(dest, create=False) as copy:
        found = copy.check()
        assert found.consistent and not found.orphans and found.checked == report.copied
        assert copy.find_studies({}) == store.find_studies({})
        assert copy.catalog.study_summaries() == store.catalog.study_summaries()
    # served as it is: the pre-computed archive is the same bytes (and so the same ETag)
    proc, url, _ = start_server(dest)
    try:
        study = str(store.find_studies({"ModalitiesInStudy": "CT"})[0]["0020000D"]["Value"][0])
        got = httpx.get(f"{url}/studies/{study}/archive.zip?preset=diagnostic", timeout=60)
        original = store.archive(study, None, "diagnostic")
        assert got.status_code == 200 and got.headers["etag"] == f'"{original.etag}"'
    finally:
        stop_server(proc)


def test_a_second_backup_copies_only_what_is_new(shared_data: Path, store, tmp_path) -> None:
    assert store.ingest(series_files(shared_data, CHEST, 4), precompress=False).ok
    dest = tmp_path / "backup"
    first = store.backup(dest)
    assert first.copied == 4 and first.present == 0
    before = {p: p.stat().st_mtime_ns for p in (dest / "objects").rglob("*.dcm")}
    assert store.ingest(series_files(shared_data, MR, 3), precompress=False).ok
    second = store.backup(dest)
    assert (second.copied, second.present, second.instances) == (3, 4, 7)
    assert {p: p.stat().st_mtime_ns for p in before} == before  # the objects there already were not rewritten
    with open_store(dest, create=False) as copy:
        assert copy.check().consistent and len(copy.find_studies({})) == 2


def test_damage_in_the_source_is_named_and_everything_else_copied(shared_data: Path, store, tmp_path) -> None:
    files = series_files(shared_data, CHEST, 4)
    assert store.ingest(files, presets=("diagnostic",)).ok
    root = Path(store.objects.root)
    originals = sorted((root / "objects").rglob("*.dcm"))
    damaged, lost = originals[0], originals[1]
    data = bytearray(damaged.read_bytes())
    data[-100] ^= 0x01  # a flipped bit in pixel data: same size, another sha256
    damaged.write_bytes(bytes(data))
    lost.unlink()
    rendition = next((root / "renditions").rglob("*.dcm"))
    rendition.unlink()  # derived data gone: left out of the copy, served live / made again
    result = CliRunner().invoke(cli, ["store", "backup", "--store", str(root), str(tmp_path / "b"), "--no-progress"])
    assert result.exit_code == 1, result.output
    damaged_rel, lost_rel = (p.relative_to(root).as_posix() for p in (damaged, lost))
    assert f"corrupt in the store, not copied: {damaged_rel}" in result.output
    assert f"missing from the store, not copied: {lost_rel}" in result.output
    assert "1 rendition(s) / archive(s) left out" in result.output
    dest = tmp_path / "b"
    assert not (dest / damaged_rel).exists() and not (dest / lost_rel).exists()
    with open_store(dest, create=False) as copy:
        found = copy.check()
        assert sorted(found.missing) == sorted([damaged_rel, lost_rel]) and not found.corrupt  # named there too
        assert found.checked == len(_objects(dest)) + 2
        assert len(copy.catalog.referenced()) == len(store.catalog.referenced()) - 1  # the rendition's row


def test_originals_only(shared_data: Path, store, tmp_path) -> None:
    assert store.ingest(series_files(shared_data, MR, 3), presets=("diagnostic",)).ok
    report = store.backup(tmp_path / "b", originals_only=True)
    derived = len(store.catalog.referenced()) - 3  # 3 renditions, the study's and its series' archives
    assert report.complete and report.copied == 3 and report.dropped == derived == 5
    dest = tmp_path / "b"
    assert set(_objects(dest)) == {rel for rel in _objects(Path(store.objects.root)) if rel.startswith("objects/")}
    with open_store(dest, create=False) as copy:
        assert copy.check().consistent
        study = str(copy.find_studies({})[0]["0020000D"]["Value"][0])
        assert "diagnostic" in copy.pending_work()[study]  # `ingest --refresh` makes it again


def test_a_backup_taken_during_an_ingest_is_consistent(shared_data: Path, tmp_path) -> None:
    """A real writer in another process: every backup taken while it ingests and pre-computes is a
    consistent store (each catalog snapshot with all its objects), and the last one, taken after,
    has everything."""
    source = tmp_path / "store"
    with open_store(source):
        pass
    files = series_files(shared_data, HEAD, 40)
    log = tmp_path / "ingest.log"
    with open(log, "wb") as err:
        writer = subprocess.Popen(
            [sys.executable, "-m", "medcodec", "ingest", *map(str, files), "--store", str(source), "--presets",
             "diagnostic", "--no-progress"],
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    dest = tmp_path / "backup"
    seen: list[int] = []
    try:
        with open_store(source, create=False) as opened:
            deadline = time.monotonic() + 300
            while writer.poll() is None and time.monotonic() < deadline:
                report = opened.backup(dest)
                seen.append(report.instances)
                with open_store(dest, create=False) as copy:
                    found = copy.check(verify_hashes=True)
                    assert found.consistent, (found.missing, found.corrupt)
            assert writer.wait(60) == 0, log.read_text()
            final = opened.backup(dest)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(10)
    assert len(seen) >= 2 and seen == sorted(seen)  # taken while instances arrived
    assert final.instances == 40
    with open_store(dest, create=False) as copy:
        assert copy.check().consistent and copy.archive(copy.find_studies({})[0]["0020000D"]["Value"][0], None,
                                                        "diagnostic") is not None  # fmt: skip


def test_refusals(shared_data: Path, store, tmp_path) -> None:
    assert store.ingest(series_files(shared_data, CHEST, 1), precompress=False).ok
    root = Path(store.objects.root)
    for inside in (root / "backup", root, f"file://{root}", f"file://{root}/x"):  # file:// skipped every check
        with pytest.raises(InvalidInputError, match=r"would be \(inside\) the (store|folder of its catalog)"):
            store.backup(inside)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"not a store")
    with pytest.raises(OutputExistsError, match="holds files"):
        store.backup(other)
    assert sorted(p.name for p in other.iterdir()) == ["holiday.jpg"]  # nothing written there
    result = CliRunner().invoke(cli, ["store", "backup", "--store", str(tmp_path / "nothing"), str(tmp_path / "x")])
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output


def test_a_backup_never_replaces_another_stores_catalog(shared_data: Path, store, tmp_path) -> None:
    """An outside audit of the backup (2026-12-03): a backup into another working store replaced its
    catalog (F1), a catalog kept outside the store could be overwritten through its folder (F3), a
    bind mount of the store was accepted (F3), and a first backup stopped before its catalog was in
    place blocked every later one (F4)."""
    import shutil
    import subprocess

    chest, mr = series_files(shared_data, CHEST, 2), series_files(shared_data, MR, 2)
    assert store.ingest(chest, precompress=False).ok
    with open_store(tmp_path / "other") as other:
        assert other.ingest(mr, precompress=False).ok
    with pytest.raises(OutputExistsError, match="replace its catalog"):
        store.backup(tmp_path / "other")
    with open_store(tmp_path / "other", create=False) as other:
        assert len(other.catalog.referenced()) == 2  # untouched
    # a backup of another store is not overwritten either
    with open_store(tmp_path / "other", create=False) as other:
        other.backup(tmp_path / "other-backup")
    with pytest.raises(OutputExistsError, match="is a backup of"):
        store.backup(tmp_path / "other-backup")
    # a catalog outside the store: its folder is refused
    outside = tmp_path / "catalogs"
    outside.mkdir()
    with open_store(tmp_path / "s2", catalog=f"sqlite:///{outside / 'catalog.sqlite'}") as s2:
        assert s2.ingest(chest, precompress=False).ok
        with pytest.raises(InvalidInputError, match="the folder of its catalog"):
            s2.backup(outside)
    # the store seen through a bind mount (another path, the same folder)
    mount = tmp_path / "mounted"
    mount.mkdir()
    if subprocess.run(["mount", "--bind", str(store.objects.root), str(mount)], capture_output=True).returncode == 0:
        try:
            with pytest.raises(InvalidInputError, match="the store"):
                store.backup(mount / "backup")
        finally:
            subprocess.run(["umount", str(mount)], check=True)
    # a first backup stopped before its catalog: the marker and some objects, no catalog; run again
    dest = tmp_path / "b"
    store.backup(dest)
    (dest / "catalog.sqlite").unlink()
    shutil.rmtree(dest / "objects" / next(p.name for p in (dest / "objects").iterdir()))
    again = store.backup(dest)
    assert again.complete and again.instances == 2
    with open_store(dest, create=False) as copy:
        assert copy.check().consistent
