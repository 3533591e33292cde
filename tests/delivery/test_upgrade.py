"""A store made by an older medcodec, opened by this one: what ``--refresh`` makes again.

An outside audit (2026-12-02) built stores with six older releases and served them with HEAD: a
head CT kept at the body-CT operating point, archives of lossy originals saying ``lossy: false``
and lossy originals coded a second time were served as current, and neither ``ingest --refresh``
nor ``store reindex`` redid them (the staleness rule looked at the series mapping only); refresh
without ``--presets`` looked at ``diagnostic`` and ``preview`` only, and an instance ingested
into a study dropped its ``lossless`` archive for good. Entries now carry the coding revision
(:data:`medcodec.delivery.manifest.CODING_REVISION`), the catalog records the presets and
revision each study's archives were made under. An older store is simulated here the way it
differs: renditions without a revision, no build record (the table did not exist).
"""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from delivery_data import store  # noqa: F401 (fixture)

from medcodec.cli.main import cli
from medcodec.delivery import open_store
from medcodec.delivery.manifest import CODING_REVISION

pytestmark = pytest.mark.realdata

HEAD = "ct_head_phantom_philips_ingenuity"


def _age(path: Path) -> None:
    """Make the store at ``path`` look as an older medcodec left it."""
    with sqlite3.connect(path / "catalog.sqlite") as db:
        for sop, preset, entry in db.execute("SELECT sop_uid, preset, entry FROM renditions").fetchall():
            old = json.loads(entry)
            old.pop("revision", None)
            db.execute("UPDATE renditions SET entry = ? WHERE sop_uid = ? AND preset = ?",
                       (json.dumps(old), sop, preset))  # fmt: skip
        db.execute("DROP TABLE archive_builds")


def _zip_members(store: Any, archive: Any) -> dict[str, tuple[Any, ...]]:
    """Each member of a stored archive: (crc32 hex, date_time, compression) by name, in order; the
    manifest's rows by file name."""
    with store.objects.open(archive.path) as fh, zipfile.ZipFile(io.BytesIO(fh.read())) as z:
        out = {i.filename: (f"{i.CRC:08x}", i.date_time, i.compress_type) for i in z.infolist()}
        out.update({f"manifest: {row['file']}": tuple(sorted(row.items())) for row in json.loads(z.read("manifest.json"))["files"]})
    return out


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What two archives' members differ in (names, order, contents, times)."""
    out = [f"order {list(before)} != {list(after)}"] if list(before) != list(after) else []
    out += [f"{name}: {before.get(name)} != {after.get(name)}" for name in {*before, *after} if before.get(name) != after.get(name)]
    return out


def test_refresh_remakes_what_an_older_medcodec_made(shared_data: Path, tmp_path: Path) -> None:
    files = sorted((shared_data / HEAD).glob("*.dcm"))[60:64]
    with open_store(tmp_path / "s") as store:
        report = store.ingest(files, presets=["diagnostic", "preview", "lossless"])
        (study,) = report.studies
        assert store.pending_work() == {}  # made now: nothing to do
        before = {p: store.archive(study, None, p).etag for p in ("diagnostic", "lossless")}
        kept = {p: _zip_members(store, store.archive(study, None, p)) for p in ("diagnostic", "lossless")}
        (record, *_) = store.instances(study)
        created = store.rendition(record, "diagnostic").created_at
    _age(tmp_path / "s")
    # `store list` does not show what the server will not serve as pre-computed (it listed sizes and
    # ratios of every outdated archive: an outside audit of upgrades, 2026-12-05)
    listed = CliRunner().invoke(cli, ["store", "list", "--store", str(tmp_path / "s"), "--json"])
    (row,) = [json.loads(line) for line in listed.output.splitlines()]
    assert listed.exit_code == 0 and row["archives"] == {}, listed.output
    assert sorted(row["outdated_archives"]) == ["diagnostic", "lossless", "preview"], row
    listed = CliRunner().invoke(cli, ["store", "list", "--store", str(tmp_path / "s")])
    assert "1 study(ies) with archives made under other coding rules" in listed.output, listed.output
    with open_store(tmp_path / "s", create=False) as store:  # store commands open so: the table comes back
        # until refreshed, what the older rules made is not served: archives and renditions live
        assert store.archive(study, None, "diagnostic") is None
        assert store.rendition(store.instances(study)[0], "diagnostic") is None
        # every preset the study has, lossless too, not only the default ones
        assert store.pending_work() == {study: ["diagnostic", "lossless", "preview"]}
        assert store.pending_work(["lossless"]) == {study: ["lossless"]}
        written = store.refresh()
        assert sorted(w.split(":")[0] for w in written if w.count(":") == 1) == ["diagnostic", "lossless", "preview"]
        assert store.pending_work() == {}
        (record, *_) = store.instances(study)
        rendition = store.rendition(record, "diagnostic")
        assert rendition.created_at > created  # coded again, not only re-archived
        assert json.loads(rendition.entry)["revision"] == CODING_REVISION
        # the same coding rules give the same files: the archives' bytes are those made fresh
        after = {p: store.archive(study, None, p).etag for p in ("diagnostic", "lossless")}
        # (once, after other test files in the same process, the lossless one differed: say where)
        assert after == before, {p: _differences(kept[p], _zip_members(store, store.archive(study, None, p))) for p in after}
    listed = CliRunner().invoke(cli, ["store", "list", "--store", str(tmp_path / "s"), "--json"])
    (row,) = [json.loads(line) for line in listed.output.splitlines()]
    assert sorted(row["archives"]) == ["diagnostic", "lossless", "preview"] and "outdated_archives" not in row


def test_an_instance_ingested_into_a_study_brings_back_every_preset_it_had(shared_data: Path, tmp_path: Path) -> None:
    files = sorted((shared_data / HEAD).glob("*.dcm"))[70:74]
    with open_store(tmp_path / "s") as store:
        (study,) = store.ingest(files[:3], presets=["diagnostic", "preview", "lossless", "original"]).studies
        report = store.ingest(files[3:])  # default presets asked: the study's lossless and original come back too
        assert report.ok and store.pending_work() == {}
        for preset in ("diagnostic", "preview", "lossless", "original"):
            archive = store.archive(study, None, preset)
            assert archive is not None and archive.files == 4, preset
        # an instance stored without pre-computation (STOW, --no-precompress) leaves the study pending
        # for every preset it had, which refresh makes
        extra = sorted((shared_data / HEAD).glob("*.dcm"))[74]
        store.ingest([extra], precompress=False)
        assert store.pending_work() == {study: ["diagnostic", "lossless", "original", "preview"]}
        store.refresh()
        assert all(store.archive(study, None, p).files == 5 for p in ("diagnostic", "lossless", "original", "preview"))


def test_an_older_study_keeps_its_presets_when_an_instance_comes(shared_data: Path, tmp_path: Path) -> None:
    """A study an older medcodec pre-computed for ``lossless`` and ``original`` (no build record):
    one more instance drops its archives; what it had is remembered, and the ingest makes them all."""
    files = sorted((shared_data / HEAD).glob("*.dcm"))[80:84]
    with open_store(tmp_path / "s") as store:
        (study,) = store.ingest(files[:3], presets=["diagnostic", "preview", "lossless", "original"]).studies
    _age(tmp_path / "s")
    with open_store(tmp_path / "s") as store:
        assert store.ingest(files[3:]).ok  # default presets asked; the others are remembered
        assert store.pending_work() == {}
        assert all(store.archive(study, None, p).files == 4 for p in ("diagnostic", "preview", "lossless", "original"))
