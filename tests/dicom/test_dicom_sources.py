"""Finding inputs (folders, ZIPs, DICOMDIRs) and failing cleanly on bad ones."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medcodec.dicom import ZipMember, derive_dataset, iter_sources, read_image, read_series, write_derived
from medcodec.errors import DicomError, InputNotFoundError, InvalidInputError, NotAnImageError

CHEST = "ct_chest_lungpetctdx_A0001_philips"
SMALL_CT = "singles/ct_CT1_small_128x128_signed16.dcm"
MR_JPEGLS = "transfer_syntaxes_mr/mr_384x384_jpegls_lossless_dcmtk.dcm"


def _non_image(path: Path) -> Path:
    """A valid DICOM file without Pixel Data (a bare Basic Text SR header)."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "SR"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    dcmwrite(path, ds, enforce_file_format=True)
    return path


def test_missing_path_raises_input_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.dcm"
    with pytest.raises(InputNotFoundError) as info:
        read_image(missing)
    assert info.value.path == str(missing) and isinstance(info.value, FileNotFoundError)
    with pytest.raises(InputNotFoundError):
        list(iter_sources(missing))
    with pytest.raises(InputNotFoundError):
        read_series([missing], on_error="raise")
    found = read_series([missing])
    assert found.series == [] and [p for p, _ in found.failures] == [str(missing)]


def test_non_image_dicom_is_not_an_image(tmp_path: Path) -> None:
    path = _non_image(tmp_path / "sr.dcm")
    with pytest.raises(NotAnImageError) as info:
        read_image(path)
    assert str(path) in str(info.value) and "(7FE0,0010)" in str(info.value)


def test_not_dicom_and_bad_on_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.dcm"
    text.write_text("not a DICOM file at all\n" * 20)
    with pytest.raises(DicomError, match="not a DICOM file"):
        read_image(text)
    with pytest.raises(InvalidInputError):
        read_series(text, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        read_image(12345)  # type: ignore[arg-type]


@pytest.mark.realdata
def test_truncation_sweep_gives_only_dicom_errors(shared_data: Path, tmp_path: Path) -> None:
    for name in (SMALL_CT, MR_JPEGLS, "singles/mr_enhanced_multiframe_10f_64x64_rle.dcm"):
        data = (shared_data / name).read_bytes()
        for k in range(1, 16):
            cut = data[: len(data) * k // 16]
            path = tmp_path / f"cut_{k}.dcm"
            path.write_bytes(cut)
            with pytest.raises(DicomError):
                read_image(path)  # header-only failures and decode failures alike


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "marker", "syntax"),
    [
        (MR_JPEGLS, b"\xff\xd8\xff", "JPEG-LS"),
        ("transfer_syntaxes_mr/mr_384x384_jpeg_lossless_sv1_dcmtk.dcm", b"\xff\xd8\xff", "JPEG Lossless"),
        ("transfer_syntaxes_mr/mr_384x384_j2k_lossless_gdcm.dcm", b"\xff\x4f\xff\x51", "JPEG 2000"),
    ],
)
def test_damaged_codestream_gives_a_dicom_error(shared_data: Path, name: str, marker: bytes, syntax: str) -> None:
    data = bytearray((shared_data / name).read_bytes())
    start = data.find(marker)  # SOI / SOC+SIZ at the start of the first fragment
    data[start : start + 32] = bytes(32)
    with pytest.raises(DicomError, match="cannot decode") as info:
        read_image(bytes(data))
    assert syntax in str(info.value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(min_size=0, max_size=600), prefix=st.booleans())
def test_arbitrary_bytes_raise_only_dicom_errors(body: bytes, prefix: bool) -> None:
    data = (b"\0" * 128 + b"DICM" + body) if prefix else body
    try:
        read_image(data)
    except DicomError:
        pass


@pytest.mark.realdata
def test_batch_goes_on_past_bad_files(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in (1, 2, 3):
        shutil.copy(shared_data / CHEST / f"{i:04d}.dcm", folder / f"{i:04d}.dcm")
    (folder / "0004.dcm").write_bytes((shared_data / CHEST / "0004.dcm").read_bytes()[:3000])
    _non_image(folder / "sr.dcm")
    found = read_series(folder)
    assert [len(s) for s in found.series] == [3]
    failed = {Path(p).name: type(e) for p, e in found.failures}
    assert set(failed) == {"0004.dcm", "sr.dcm"}
    assert failed["sr.dcm"] is NotAnImageError and issubclass(failed["0004.dcm"], DicomError)
    with pytest.raises(DicomError) as info:
        read_series(folder, on_error="raise")
    assert info.value.path == str(folder / "0004.dcm")


@pytest.mark.realdata
def test_folder_walk_skips_hidden_and_named_non_dicom_and_finds_extensionless(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    shutil.copy(shared_data / SMALL_CT, folder / "IM0001")  # no extension, DICM prefix
    shutil.copy(shared_data / SMALL_CT, folder / ".hidden" / "copy.dcm")
    shutil.copy(shared_data / SMALL_CT, folder / ".dotfile")
    (folder / "README.md").write_text("# not DICOM\n")
    (folder / "LICENSE").write_text("Creative Commons\n")  # beside a TCIA series: skipped like README.md
    (folder / "scan.par").write_text("# Philips PAR\n")
    (folder / "LOCKFILE").write_bytes(b"\x00" * 300)  # no prefix, not a dataset either
    ds = dcmread(shared_data / MR_JPEGLS)
    ds.preamble = None  # preamble-less file (PS3.10 not followed): must still be found
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=False)
    assert buffer.getvalue()[128:132] != b"DICM"
    (folder / "sub" / "raw").write_bytes(buffer.getvalue())

    sources = list(iter_sources(folder))
    # LOCKFILE is not DICOM, but only reading can tell: it is reported, never silently dropped (issue 10 item 9)
    assert sources == [folder / "IM0001", folder / "LOCKFILE", folder / "sub" / "raw"]
    found = read_series(folder)
    assert [(Path(p).name, "not a DICOM file" in str(e)) for p, e in found.failures] == [("LOCKFILE", True)]
    assert sorted(len(s) for s in found.series) == [1, 1]
    np.testing.assert_array_equal(read_image(folder / "sub" / "raw").pixels, read_image(shared_data / MR_JPEGLS).pixels)


def test_folder_walk_leaves_out_excluded_folders_and_files(shared_data: Path, tmp_path: Path) -> None:
    """``exclude``: a caller's output folder inside the input folder is not walked (by resolved
    path, so a relative or symlinked spelling matches); an input named explicitly is still read."""
    folder = tmp_path / "study"
    (folder / "out" / "series").mkdir(parents=True)
    for name in ("a.dcm", "out/series/b.dcm", "c.dcm"):
        shutil.copy(shared_data / SMALL_CT, folder / name)
    (tmp_path / "link").symlink_to(folder / "out")
    assert list(iter_sources(folder, exclude=[tmp_path / "link"])) == [folder / "a.dcm", folder / "c.dcm"]
    assert list(iter_sources(folder, exclude=[folder / "c.dcm"])) == [folder / "a.dcm", folder / "out/series/b.dcm"]
    assert list(iter_sources([folder / "out"], exclude=[folder / "out"])) == [folder / "out/series/b.dcm"]
    # three copies of one image: the walk without exclude reports two duplicates, with it one
    assert [len(read_series(folder, exclude=e).failures) for e in ([], [folder / "out"])] == [2, 1]


@pytest.mark.realdata
def test_zip_reads_the_same_as_the_files(shared_data: Path, tmp_path: Path) -> None:
    names = [f"{CHEST}/{i:04d}.dcm" for i in (3, 1, 2)] + [SMALL_CT, MR_JPEGLS]
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            zf.write(shared_data / name, arcname=f"study/{name}")
        zf.writestr("study/README.md", "not DICOM")
        zf.writestr("__MACOSX/study/._0001.dcm", b"junk")
        zf.writestr("study/empty/", b"")

    members = list(iter_sources(archive))
    assert all(isinstance(m, ZipMember) for m in members)
    assert sorted(m.member for m in members) == sorted(f"study/{n}" for n in names)
    assert not (tmp_path / "study").exists()  # nothing extracted

    found = read_series(archive)
    assert found.failures == []
    chest = next(s for s in found.series if len(s) == 3)
    assert chest.images[0].path.startswith(f"{archive}::study/{CHEST}/")
    files = sorted((read_image(shared_data / CHEST / f"{i:04d}.dcm") for i in (1, 2, 3)), key=lambda im: im.position)
    assert [im.path.split("/")[-1] for im in chest.images] == [im.path.split("/")[-1] for im in files]
    np.testing.assert_array_equal(chest.pixels(), np.concatenate([im.pixels for im in files]))
    for name in (SMALL_CT, MR_JPEGLS):
        member = read_image(ZipMember(archive, f"study/{name}"))
        np.testing.assert_array_equal(member.pixels, read_image(shared_data / name).pixels)

    with pytest.raises(InputNotFoundError):
        read_image(ZipMember(archive, "study/absent.dcm"))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK not really")
    with pytest.raises(DicomError, match="ZIP"):
        list(iter_sources(bad))


@pytest.mark.realdata
def test_dicomdir_is_followed_not_read_as_an_image(shared_data: Path, tmp_path: Path) -> None:
    fileset = FileSet()
    for i in (5, 6, 7, 8):
        ds = dcmread(shared_data / CHEST / f"{i:04d}.dcm")
        for keyword, value in (("StudyID", "1"), ("StudyDate", "20070404"), ("StudyTime", "000000")):
            if not ds.get(keyword):
                setattr(ds, keyword, value)
        fileset.add(ds)
    fileset.write(tmp_path / "media")
    fileset._stage["t"].cleanup()  # pydicom's staging folder would otherwise warn when collected
    dicomdir = tmp_path / "media" / "DICOMDIR"

    sources = list(iter_sources(dicomdir))
    assert len(sources) == 4 and dicomdir not in sources and all(p.exists() for p in sources)
    found = read_series(dicomdir)
    assert found.failures == [] and [len(s) for s in found.series] == [4]
    files = sorted((read_image(shared_data / CHEST / f"{i:04d}.dcm") for i in (5, 6, 7, 8)), key=lambda im: im.position)
    np.testing.assert_array_equal(found.series[0].pixels(), np.concatenate([im.pixels for im in files]))
    # the folder walk skips the DICOMDIR itself and finds the same four files once
    walked = read_series(tmp_path / "media")
    assert walked.failures == [] and [len(s) for s in walked.series] == [4]
    both = read_series([dicomdir, tmp_path / "media"])
    assert [len(s) for s in both.series] == [4]  # de-duplicated
    with pytest.raises(NotAnImageError, match="DICOMDIR"):
        read_image(dicomdir)


@pytest.mark.realdata
def test_series_split_by_size_and_rescale_differences_flagged(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    images = [read_image(shared_data / CHEST / f"{i:04d}.dcm") for i in (1, 2, 3)]
    for image in images[:2]:
        shutil.copy(image.path, folder / Path(image.path).name)
    third = images[2]  # same Series Instance UID, other intercept
    write_derived(folder / "rescaled.dcm", derive_dataset(
        third.dataset, third.pixels, third.spec.replace(rescale_intercept=-1000.0),
        ratio=1, method="ISO_10918_1", description="x"))
    write_derived(folder / "cropped.dcm", derive_dataset(  # same Series Instance UID, other size
        third.dataset, third.pixels[:, :256, :300], third.spec, ratio=1, method="ISO_10918_1", description="x"))

    calls: list[tuple[int, int | None]] = []
    found = read_series(folder, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]  # one report per file, the library draws nothing
    assert capsys.readouterr().err == ""
    with pytest.raises(InvalidInputError, match="callable"):
        read_series(folder, progress=True)  # type: ignore[arg-type]
    assert found.failures == []
    by_shape = {s.shape: s for s in found.series}
    assert set(by_shape) == {(3, 512, 512), (1, 256, 300)}
    assert len({s.series_instance_uid for s in found.series}) == 1
    full = by_shape[(3, 512, 512)]
    assert full.rescale_varies and full.spec.extra["rescale_varies"] is True
    assert sorted(s.rescale_intercept for s in full.specs) == [-1024.0, -1024.0, -1000.0]
    assert not by_shape[(1, 256, 300)].rescale_varies
    assert full.description == "5mm" and full.modality == "CT" and full.study_instance_uid == images[0].study_instance_uid


@pytest.mark.parametrize("name", ["DICOMDIR-reordered", "DICOMDIR-implicit", "DICOMDIR-bigEnd", "DICOMDIR-nopatient"])
def test_a_dicomdir_is_known_by_its_meta_not_its_name(name: str, tmp_path: Path) -> None:
    """pydicom's DICOMDIR variants are Media Storage Directories named otherwise: given as an
    input they list their files (they were refused as "a dataset without SOP UIDs"); met inside
    a folder, ingest says what they are."""
    from pydicom.data import get_testdata_file

    from medcodec.delivery.header import read_header
    from medcodec.errors import NotDicomError

    path = Path(get_testdata_file(name))
    files = list(iter_sources(path))
    assert len(files) == 31 and all(p.is_file() and p.name != path.name for p in files)
    with pytest.raises(NotDicomError, match="a DICOMDIR .*give it as an input"):
        read_header(path.read_bytes(), name)


@pytest.mark.realdata
def test_a_dicom_file_named_like_a_document_is_read_not_skipped(shared_data: Path, tmp_path: Path) -> None:
    """Names like LICENSE or README are skipped (a TCIA download's LICENSE made ingest exit 1), but a
    file carrying the DICM prefix is read whatever its name, in a folder and in a ZIP (an outside
    re-check, 2026-12-04: a DICOM file named ``readme`` or ``image.rec`` was skipped unread)."""
    folder = tmp_path / "study"
    folder.mkdir()
    for name in ("readme", "NOTICE", "image.rec"):
        shutil.copy(shared_data / SMALL_CT, folder / name)
    (folder / "LICENSE").write_text("not DICOM\n")
    assert list(iter_sources(folder)) == [folder / "NOTICE", folder / "image.rec", folder / "readme"]
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(folder / "readme", "s/readme")
        zf.writestr("s/LICENSE", "not DICOM\n")
    assert [m.member for m in iter_sources(archive)] == ["s/readme"]
