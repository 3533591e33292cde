"""Shared by the delivery tests: the real series they use from ``shared_data`` (never copied into the repo), and
the external-tool rule. A plain module, not a conftest: only one module can be `conftest` in sys.modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcodec.testing.tools import require_tool  # noqa: F401  (used by the delivery tests)

CHEST = "ct_chest_lungpetctdx_A0001_philips"
HEAD = "ct_head_phantom_philips_ingenuity"
MR = "mr_head_ge_signa_t1_ctk"
US_RGB = "singles/us_US1_480x640_rgb_uncompressed.dcm"
US_YBR_JPEG = "singles/us_576x768_ybr_jpeg_extended.dcm"  # YBR_FULL, lossy JPEG extended
US_PALETTE = "singles/us_600x800_palette_rle.dcm"
BAD_UID = "singles/ct_512x512_12bit_jpeg_lossless.dcm"  # hashes instead of UIDs
# the same SOP Instance UID with other bytes (dirty high bits): a real conflict
CONFLICT_A = "singles/mr_384x384_12bit_unsigned.dcm"
CONFLICT_B = "singles/mr_384x384_12bit_unsigned_dirty_high_bits.dcm"


def series_files(shared_data: Path, folder: str, count: int | None = None) -> list[Path]:
    files = sorted(p for p in (shared_data / folder).iterdir() if p.is_file() and not p.name.startswith("."))
    return files if count is None else files[:count]


@pytest.fixture()
def store(tmp_path: Path):
    from medcodec.delivery import open_store

    with open_store(tmp_path / "store") as s:
        yield s




def ingested_record(store, path: Path):  # type: ignore[no-untyped-def]
    """Ingest ``path`` (no pre-computation) and return its catalog record."""
    import pydicom

    assert store.ingest([path], precompress=False).ok
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    (record,) = [r for r in store.instances(str(ds.StudyInstanceUID)) if r.sop_uid == ds.SOPInstanceUID]
    return record


#: pydicom's character-set test files (real names in Cyrillic, Greek, German, Japanese, Chinese, Korean)
#: and name keys that must find each: the stored value typed in another case, one component
#: group alone, a wildcard; and keys that must not.
NAME_CASES = {
    "chrRuss.dcm": (["Люкceмбypг", "люкceмбypг", "ЛЮКCEМБYPГ", "Люк*"], ["Люк"]),
    "chrGreek.dcm": (["Διονυσιος", "διονυσιος", "ΔΙΟΝΥΣΙΟΣ", "Διον*"], ["Διον"]),
    "chrGerm.dcm": (["Äneas^Rüdiger", "äneas^rüdiger", "ÄNEAS^RÜDIGER", "Äneas*", "Äneas^Rüdiger^^"],
                    ["Äneas", "Äneas^^Rüdiger"]),
    "chrH31.dcm": (["Yamada^Tarou", "yamada^tarou", "山田^太郎", "やまだ^たろう", "山田*", "Yamada^Tarou^^^",
                    "Yamada^Tarou=山田^太郎=やまだ^たろう", "Yamada^Tarou^=山田^太郎^^=やまだ^たろう=="],
                   ["山田", "Yamada^Tarou=山田^太郎"]),
    "chrX2.dcm": (["王^小东", "wang^xiaodong", "Wang^XiaoDong=王^小东", "王*"], ["王"]),
    "chrI2.dcm": (["홍^길동", "洪^吉洞", "Hong^Gildong"], ["홍"]),
}  # fmt: skip


def check_name_matching(store) -> None:  # type: ignore[no-untyped-def]
    """Ingest :data:`NAME_CASES`' files into ``store`` and check every key against QIDO-style
    matching (PS3.4 C.2.2.2.1.1: person names case-insensitive, every script alike; a key without
    ``=`` matches any component group), then ``fuzzymatching`` on a component after ``=``."""
    import pydicom
    from pydicom.data import get_charset_files

    paths = [Path(get_charset_files(name)[0]) for name in NAME_CASES]
    assert store.ingest(paths, precompress=False).ok
    for path, (hits, misses) in zip(paths, NAME_CASES.values()):
        study = str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
        for key in hits:
            found = [s["0020000D"]["Value"][0] for s in store.find_studies({"PatientName": key})]
            assert found == [study], (path.name, key, found)
        for key in misses:
            assert store.find_studies({"PatientName": key}) == [], (path.name, key)
    # trailing empty components may be left out, stored or asked (PS3.5 §6.2): "OB^^^^" is "OB" (an outside audit)
    import tempfile

    from pydicom.uid import generate_uid

    made = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, pid in (("Zweig^Stefan^^^", "ZWEIG-1"), ("Adam^A\\Eve^E", "TWO-NAMES")):
            ds = pydicom.dcmread(paths[2])  # chrGerm
            ds.PatientName, ds.PatientID = name, pid
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(Path(folder) / f"{pid}.dcm", enforce_file_format=True)
            assert store.ingest([Path(folder) / f"{pid}.dcm"], precompress=False).ok
            made[pid] = str(ds.StudyInstanceUID)
    for key in ("Zweig^Stefan", "zweig^stefan^", "Zweig^Stefan^^^", "Zweig*", "Zweig^Stefan^^^^=", "Zweig^*",
                "Zweig^Stefan^*", "Zweig^Stefan=*", "zweig^stef*^^"):  # fmt: skip
        found = [s["0020000D"]["Value"][0] for s in store.find_studies({"PatientName": key})]
        assert found == [made["ZWEIG-1"]], (key, found)
    for key in ("Zweig", "Zweig^^Stefan", "Zweig^Stefan^x", "Zweig^Stefan^x*"):
        assert store.find_studies({"PatientName": key}) == [], key
    assert len(store.find_studies({"PatientName": "zweig^stef^^"}, fuzzy=True)) == 1  # fuzzy trims the key too
    everyone = len(store.find_studies({}))
    for key in ("^", "=", "^^^", "^=^"):  # separators only: no key (was: names with an empty group)
        assert len(store.find_studies({"PatientName": key})) == everyone, key
    # a name of two values (invalid for the IOD, found in the wild): each matches, and both are answered
    for key in ("Adam^A", "eve^e", "Eve*"):
        found = store.find_studies({"PatientName": key})
        assert [s["0020000D"]["Value"][0] for s in found] == [made["TWO-NAMES"]], key
    assert found[0]["00100010"]["Value"] == [{"Alphabetic": "Adam^A"}, {"Alphabetic": "Eve^E"}]
    fuzzy = store.find_studies({"PatientName": "山田"}, fuzzy=True)  # the ideographic family name
    assert len(fuzzy) == 1, fuzzy
    assert len(store.find_studies({"PatientName": "rüdiger"}, fuzzy=True)) == 1
    assert len(store.find_studies({"PatientName": "ΔΙΟΝ"}, fuzzy=True)) == 1
    check_times_padding_and_first_patients(store, paths[2])


def check_times_padding_and_first_patients(store, source: Path) -> None:  # type: ignore[no-untyped-def]
    """StudyTime ranges compare times, whatever precision either side has; padding spaces of a key
    are no part of it; ``^**`` is ``^*``; a patient whose first study is deleted takes its next
    study's name (an outside audit of QIDO-RS and C-FIND matching, 2026-12-05: all four failed)."""
    import tempfile

    import pydicom
    from pydicom.uid import generate_uid

    series_made: list[str] = []

    def made(folder: Path, pid: str, study: str | None = None, **values: str) -> str:
        ds = pydicom.dcmread(source)
        ds.PatientID = pid
        for key, value in values.items():
            setattr(ds, key, value)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study or generate_uid(), generate_uid(), generate_uid()
        series_made.append(str(ds.SeriesInstanceUID))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
        assert store.ingest([folder / f"{ds.SOPInstanceUID}.dcm"], precompress=False).ok
        return str(ds.StudyInstanceUID)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        times = {t: made(folder, "TIMES", StudyTime=t, StudyDescription="Time CT") for t in
                 ("120000", "1200", "08", "235959.123456", "120000.5", "121530")}  # fmt: skip

        def at(query: str) -> set[str]:
            found = store.find_studies({"StudyTime": query, "PatientID": "TIMES"})
            return {t for t, uid in times.items() if uid in {s["0020000D"]["Value"][0] for s in found}}

        assert at("120000-120100") == {"120000", "1200", "120000.5"}
        assert at("120000-") == {"120000", "1200", "120000.5", "121530", "235959.123456"}
        assert at("120000.000000-") == at("120000-")
        assert at("120000.0-120000.9") == {"120000", "1200", "120000.5"}
        assert at("080000-090000") == at("0800-0900") == at("08-09") == {"08"}
        assert at("-1159") == {"08"} and at("12-12") == {"120000", "1200", "120000.5", "121530"}
        assert at("1215-1215") == {"121530"}  # a bound of minutes: the whole minute
        # padding spaces of a key are no part of it (C-FIND's values come without them)
        assert len(store.find_studies({"StudyDescription": "Time CT ", "PatientID": "TIMES"})) == len(times)
        assert len(store.find_studies({"StudyDescription": " ", "PatientID": "TIMES"})) == len(times)  # universal
        for key in ("StudyTime", "StudyDate", "StudyInstanceUID", "PatientBirthDate"):  # ``*``: any value
            assert len(store.find_studies({key: "*", "PatientID": "TIMES"})) == len(times), key
        doe = made(folder, "DOE-1", PatientName="Doe")
        for key in ("Doe^*", "Doe^**", "doe^*^**"):
            assert [s["0020000D"]["Value"][0] for s in store.find_studies({"PatientName": key})] == [doe], key
        # a patient's values are its first study's; once that study is deleted, the next one's
        first = made(folder, "P13", PatientName="Alpha^One")
        second = made(folder, "P13", PatientName="Beta^Two")
        assert sorted(s["0020000D"]["Value"][0] for s in store.find_studies({"PatientName": "alpha*"})) == sorted(
            [first, second]
        )
        store.delete(first)
        (left,) = store.find_studies({"PatientName": "beta*"})
        assert left["0020000D"]["Value"] == [second] and left["00100010"]["Value"] == [{"Alphabetic": "Beta^Two"}]
        assert store.find_studies({"PatientName": "alpha*"}) == []
        # a series of the first study (the patient's first instance) deleted: the next instance's name
        third = made(folder, "P14", PatientName="Gamma^One")
        first_series = series_made[-1]
        made(folder, "P14", study=third, PatientName="Gamma^Renamed")
        store.delete(third, first_series)
        (left,) = store.find_studies({"PatientID": "P14"})
        assert left["00100010"]["Value"] == [{"Alphabetic": "Gamma^Renamed"}], left["00100010"]
