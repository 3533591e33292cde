"""ZIPs inside ZIPs (an export of one ZIP per series), hidden files and inputs with no DICOM: read,
or listed as skipped, never dropped in silence; the exit code says when nothing was DICOM (an
outside audit of the delivery documents, 2026-12-03: a ZIP holding only ZIPs stored nothing and
exited 0 without a word; hidden files were dropped unsaid)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from delivery_data import CHEST, MR, series_files, store  # noqa: F401 (fixture)

from medcodec.cli.main import cli
from medcodec.dicom import iter_sources, read_series
from medcodec.dicom.sources import MAX_ZIP_NESTING, ZipMember

pytestmark = pytest.mark.realdata


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_zip_of_series_zips_is_read_member_by_member(shared_data: Path, store, tmp_path: Path) -> None:
    chest, mr = series_files(shared_data, CHEST, 3), series_files(shared_data, MR, 2)
    stored_inner = _zip(tmp_path / "ct.zip", {f"CT/{p.name}": p.read_bytes() for p in chest}, zipfile.ZIP_STORED)
    deflated_inner = _zip(tmp_path / "mr.zip", {f"MR/{p.name}": p.read_bytes() for p in mr})
    outer = _zip(tmp_path / "study.zip", {"series/ct.zip": stored_inner.read_bytes(),
                                          "series/mr.zip": deflated_inner.read_bytes(), "notes.txt": b"x"})  # fmt: skip
    found = list(iter_sources(outer))
    assert all(isinstance(s, ZipMember) for s in found) and len(found) == 5
    assert found[0].name == f"{outer}::series/ct.zip::CT/{chest[0].name}"
    assert [s.read_bytes() for s in found] == [p.read_bytes() for p in chest + mr]  # byte for byte
    (series_ct, series_mr) = sorted(read_series(outer).series, key=lambda s: s.modality)
    assert (len(series_ct.images), len(series_mr.images)) == (3, 2)
    report = store.ingest([outer], precompress=False)
    assert report.ok and len(report.stored) == 5
    assert [o.source for o in report.skipped] == [f"{outer}::notes.txt"]
    stored = {store.catalog.get_instance(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)).sha256
              for p in chest + mr}  # fmt: skip
    assert len(stored) == 5


def test_zips_nested_too_deep_and_zips_without_dicom_are_listed(shared_data: Path, store, tmp_path: Path) -> None:
    one = series_files(shared_data, CHEST, 1)[0]
    data = _zip(tmp_path / "level0.zip", {one.name: one.read_bytes()}).read_bytes()
    for level in range(1, MAX_ZIP_NESTING + 2):  # one level past the limit
        data = _zip(tmp_path / f"level{level}.zip", {f"level{level - 1}.zip": data}).read_bytes()
    too_deep = tmp_path / f"level{MAX_ZIP_NESTING + 1}.zip"
    report = store.ingest([too_deep], precompress=False)
    reasons = {o.source: o.message for o in report.skipped}
    assert not report.stored and not report.ok  # nothing was DICOM that could be read: said, exit 1
    assert any("nested deeper than" in why for why in reasons.values())
    assert "a ZIP with no DICOM member" in reasons[str(too_deep)]
    just_deep_enough = tmp_path / f"level{MAX_ZIP_NESTING}.zip"
    assert len(store.ingest([just_deep_enough], precompress=False).stored) == 1
    empty = _zip(tmp_path / "empty.zip", {"inner.zip": _zip(tmp_path / "i.zip", {"readme.txt": b"x"}).read_bytes()})
    result = CliRunner().invoke(cli, ["ingest", str(empty), "--store", str(store.objects.root), "--no-progress"])
    assert result.exit_code == 1, result.output  # was 0 with "0 stored ... 0 studies" and nothing said
    assert f"{empty}::inner.zip" in result.output and "no DICOM member" in result.output


def test_hidden_files_and_folders_of_an_input_folder_are_listed(shared_data: Path, store, tmp_path: Path) -> None:
    a, b, c = series_files(shared_data, CHEST, 3)
    folder = tmp_path / "in"
    (folder / ".sub").mkdir(parents=True)
    (folder / "img.dcm").write_bytes(a.read_bytes())
    (folder / ".scan.dcm").write_bytes(b.read_bytes())
    (folder / ".sub" / "x.dcm").write_bytes(c.read_bytes())
    report = store.ingest([folder], precompress=False)
    assert report.ok and len(report.stored) == 1  # hidden ones are not read (macOS ._ files, .DS_Store)...
    reasons = {o.source: o.message for o in report.skipped}  # ... but said
    assert sorted(reasons) == [str(folder / ".scan.dcm"), str(folder / ".sub")]
    assert "a hidden file" in reasons[str(folder / ".scan.dcm")]
    assert "a hidden folder: not walked" in reasons[str(folder / ".sub")]


def _overlapping_zip(member: bytes, name: str, copies: int) -> bytes:
    """A ZIP whose central directory lists one stored member ``copies`` times (same local header)."""
    import struct
    import zlib

    crc, size, raw = zlib.crc32(member), len(member), name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, size, size, len(raw), 0) + raw + member
    entries = [
        struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, size, size, len(raw), 0, 0, 0, 0, 0, 0)
        + raw
        for _ in range(copies)
    ]
    central = b"".join(entries)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, copies, copies, len(central), len(local), 0)
    return local + central + end


def test_overlapping_members_nested_bombs_and_unreadable_inner_zips(shared_data: Path, store, tmp_path: Path) -> None:
    """An outside audit of the nested reader (2026-12-03): a 45 kB ZIP whose layers list one member
    many times expanded to 810,000 members; a 0.6 MB nested deflate bomb held every level in memory
    (2.1 GB); a damaged inner ZIP was 'skipped', exit 0, and a DICOM file named image.zip inside a
    ZIP never stored."""
    import resource

    one = series_files(shared_data, CHEST, 1)[0]
    layer = _overlapping_zip(one.read_bytes(), "a.dcm", 40)
    for depth in range(3):
        layer = _overlapping_zip(layer, f"l{depth}.zip", 40)
    (tmp_path / "amplified.zip").write_bytes(layer)
    report = store.ingest([tmp_path / "amplified.zip"], precompress=False)
    assert not report.stored and [o.source for o in report.rejected] == [str(tmp_path / "amplified.zip")]
    assert "overlap" in report.rejected[0].message
    # an inner ZIP of ~300 MB (a stored member of zeros) deflated to ~300 kB in the outer one, beside a
    # real member: spooled to a temporary file, never held in memory
    bomb = tmp_path / "bomb_inner.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_STORED) as zf:
        with zf.open("zeros.dcm", "w", force_zip64=True) as fh:
            block = bytes(1 << 20)
            for _ in range(300):
                fh.write(block)
        zf.writestr("b.dcm", one.read_bytes())
    outer = _zip(tmp_path / "bomb.zip", {"inner.zip": bomb.read_bytes()})
    bomb.unlink()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = store.ingest([outer], precompress=False)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(report.duplicates) + len(report.stored) == 1 and len(report.rejected) == 1  # zeros: not DICOM
    assert grown_mb < 200, grown_mb  # ~600 MB when the inner ZIP (300 MB) was held in memory, twice
    broken = _zip(tmp_path / "broken.zip", {"damaged.zip": b"PK\x03\x04 cut short", "image.zip": one.read_bytes()})
    report = store.ingest([broken], precompress=False)
    assert len(report.stored) + len(report.duplicates) == 1  # the DICOM file named image.zip
    assert [o.source for o in report.rejected] == [f"{broken}::damaged.zip"] and not report.ok
