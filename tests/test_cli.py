"""The CLI through main(argv): encode, decode (npy, png, dicom), info, demo, errors and exit codes."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

import medcodec
from medcodec.cli.main import main

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def ct_series(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six slices of the real chest CT, copied so tests can also add a bad file beside them."""
    folder = tmp_path_factory.mktemp("series")
    src = shared_data / "ct_chest_lungpetctdx_A0001_philips"
    for name in sorted(p.name for p in src.glob("*.dcm"))[20:26]:
        shutil.copy(src / name, folder / name)
    return folder


def test_decode_to_dicom_is_all_or_nothing_and_finds_what_it_wrote(
    ct_series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outside audit (2026-12-05): an interrupted ``decode --to dicom`` left part of a series, a
    second decode into the same folder added a second series (files named by new UIDs), a damaged
    stream left an empty folder, and a staging folder a killed run left stayed for ever."""

    from medcodec.dicom import write as dicom_write
    from medcodec.fileio import STAGING_PREFIX, _host

    out = tmp_path / "ct.mdc"
    assert main(["encode", str(ct_series), "-o", str(out), "-q", "90", "--no-progress"]) == 0
    dcm = tmp_path / "dcm"
    real = dicom_write.write_derived
    calls = []

    def failing(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt  # as Ctrl-C in the middle of the series
        return real(path, *args, **kwargs)

    monkeypatch.setattr("medcodec.dicom.series_mdc.write_derived", failing)
    assert main(["decode", str(out), "-o", str(dcm), "--to", "dicom"]) == 130
    assert not dcm.exists()  # nothing written, and not the folder either
    monkeypatch.setattr("medcodec.dicom.series_mdc.write_derived", real)
    dcm.mkdir()
    left = dcm / f"{STAGING_PREFIX}999999999@{_host()}-x"  # a killed run's (no such process)
    (left / "part.dcm").parent.mkdir()
    (left / "part.dcm").write_bytes(b"half")
    assert main(["decode", str(out), "-o", str(dcm), "--to", "dicom"]) == 0
    first = sorted(p.name for p in dcm.iterdir())
    assert first == [f"ct_{k:04d}.dcm" for k in range(6)], first  # the killed run's folder is gone
    capsys.readouterr()
    assert main(["decode", str(out), "-o", str(dcm), "--to", "dicom"]) == 2  # found: not a second series
    assert "exists already" in capsys.readouterr().err
    assert main(["decode", str(out), "-o", str(dcm), "--to", "dicom", "--overwrite"]) == 0
    assert sorted(p.name for p in dcm.iterdir()) == first
    assert len({pydicom.dcmread(p).SeriesInstanceUID for p in dcm.iterdir()}) == 1
    cut = tmp_path / "cut.mdc"
    cut.write_bytes(out.read_bytes()[: len(out.read_bytes()) // 2])
    assert main(["decode", str(cut), "-o", str(tmp_path / "never"), "--to", "dicom"]) == 2
    assert not (tmp_path / "never").exists()


def test_progress_goes_to_a_log_as_lines(
    ct_series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """stderr not a terminal (a log): tqdm drew nothing, so a long run said nothing until it ended,
    --progress or not (an outside audit, 2026-12-05); now a plain line now and then (every update
    here, the interval set to 0), no carriage returns."""
    import medcodec.cli._common as common

    monkeypatch.setattr(common, "PROGRESS_LINE_SECONDS", 0.0)
    assert main(["encode", str(ct_series), "-o", str(tmp_path / "ct.mdc"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "reading DICOM: 6/6 file(s) (100 %)" in err and "\r" not in err, err
    assert main(["ingest", str(ct_series), "--store", str(tmp_path / "store"), "--no-precompress"]) == 0
    err = capsys.readouterr().err
    assert "ingest: 6/6 file(s) (100 %)" in err and "\r" not in err, err
    assert main(["store", "backup", "--store", str(tmp_path / "store"), str(tmp_path / "backup")]) == 0
    err = capsys.readouterr().err  # bytes, in kB / MB (drew nothing into a log until 2026-12-06)
    assert re.search(r"^backup: [\d.]+ MB of [\d.]+ MB \(100 %\)$", err, re.MULTILINE) and "\r" not in err, err
    assert main(["store", "reindex", "--store", str(tmp_path / "store")]) == 0
    err = capsys.readouterr().err
    assert "reindex: 6/6 file(s) (100 %)" in err and "\r" not in err, err
    assert main(["encode", str(ct_series), "-o", str(tmp_path / "q.mdc"), "--no-progress"]) == 0
    assert "file(s)" not in capsys.readouterr().err


def test_encode_info_decode_dicom_round_trip(ct_series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ct.mdc"
    assert main(["encode", str(ct_series), "-o", str(out), "-q", "90", "--no-progress"]) == 0
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["shape"] == [6, 512, 512] and info["bits_stored"] == 12
    types = [s["type"] for s in info["segments"]]
    assert types[:2] == ["HEAD", "QTAB"] and types.count("FRAM") == 6 and types[-1] == "MEND"
    # the text says what overhead_bytes counts: the embedded DICOM headers, not the container's framing
    # (an outside audit, 2026-12-04, read the framing as uncounted)
    assert main(["info", str(out)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("overhead_bytes"))
    assert int(line.split()[1]) == info["overhead_bytes"] > 0 and "framing" in line and "DICOM headers" in line

    dcm_dir = tmp_path / "dcm"
    assert main(["decode", str(out), "-o", str(dcm_dir), "--to", "dicom"]) == 0
    written = sorted(dcm_dir.glob("*.dcm"))
    assert len(written) == 6
    originals = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in ct_series.glob("*.dcm")}
    series_uids = set()
    for path in written:
        ds = pydicom.dcmread(path)
        assert ds.LossyImageCompression == "01"
        assert ds.ImageType[0] == "DERIVED"
        assert "MEDCODEC_DCT" in list(np.atleast_1d(ds.LossyImageCompressionMethod))
        assert ds.SOPInstanceUID not in originals
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        series_uids.add(ds.SeriesInstanceUID)
        src = next(o for o in originals.values() if o.ImagePositionPatient == ds.ImagePositionPatient)
        hu_out = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        hu_in = src.pixel_array * float(src.RescaleSlope) + float(src.RescaleIntercept)
        assert hu_out.shape == hu_in.shape
        assert np.abs(hu_out - hu_in).max() <= info["max_abs_error_bound"][0]
        assert np.sqrt(np.mean((hu_out - hu_in) ** 2)) < 10
    assert len(series_uids) == 1 and series_uids.pop() != next(iter(originals.values())).SeriesInstanceUID


def test_decode_npy_and_png(ct_series: Path, tmp_path: Path) -> None:
    out = tmp_path / "ct.mdc"
    assert main(["encode", str(ct_series), "-o", str(out), "--no-progress"]) == 0
    assert main(["decode", str(out), "-o", str(tmp_path / "a.npy"), "--frames", "1-2"]) == 0
    arr = np.load(tmp_path / "a.npy")
    assert arr.shape == (2, 512, 512) and arr.dtype == np.uint16
    np.testing.assert_array_equal(arr, medcodec.decode(out.read_bytes(), frames=[1, 2]))
    assert main(["decode", str(out), "-o", str(tmp_path / "png"), "--frames", "0", "--png-raw"]) == 0
    import imagecodecs

    png = imagecodecs.png_decode((tmp_path / "png" / "ct_0000.png").read_bytes())
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png, medcodec.decode(out.read_bytes(), frames=0))


def test_batch_goes_on_past_a_bad_file(ct_series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    shutil.copytree(ct_series, folder)
    good = sorted(folder.glob("*.dcm"))[0]
    (folder / "broken.dcm").write_bytes(good.read_bytes()[: 3000])
    out = tmp_path / "out"
    code = main(["encode", str(folder), "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken.dcm" in err and "1 input(s) failed" in err
    assert len(list(out.glob("*.mdc"))) == 1
    assert medcodec.read_header((next(out.glob("*.mdc"))).read_bytes()).frames == 6


def test_errors_are_one_line_and_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encode", str(tmp_path / "missing"), "-o", str(tmp_path / "x.mdc")]) != 0
    assert "missing" in capsys.readouterr().err
    bad = tmp_path / "bad.mdc"
    bad.write_bytes(b"\x89MDC\r\n\x1a\n" + bytes(40))
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_never_overwrites_input_or_existing_output(ct_series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ct.mdc"
    assert main(["encode", str(ct_series), "-o", str(out), "--no-progress"]) == 0
    before = out.read_bytes()
    assert main(["encode", str(ct_series), "-o", str(out), "--no-progress", "-q", "10"]) == 2  # as decode: --help
    assert out.read_bytes() == before
    err = capsys.readouterr().err
    assert "exists" in err and "--overwrite" in err and "overwrite=True" not in err and "failed" not in err
    # decode onto its own input is refused
    assert main(["decode", str(out), "-o", str(out), "--to", "npy", "--overwrite"]) == 2
    assert out.read_bytes() == before


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ([], ["encode"], ["decode"], ["info"], ["demo"]):
        assert main([*cmd, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_version_names_the_coding_revision(capsys: pytest.CaptureFixture[str]) -> None:
    from medcodec import __version__
    from medcodec.delivery.manifest import CODING_REVISION

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"medcodec, version {__version__} (coding revision {CODING_REVISION})"


def test_python_dash_m_runs_the_same_cli(tmp_path: Path) -> None:
    """``python -m medcodec`` (a venv whose bin is not on PATH): the same commands and exit codes
    (it was "No module named medcodec.__main__" until 2026-12-02)."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "medcodec", "info", "--help"], capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0 and "Usage: medcodec info" in run.stdout, run.stderr
    run = subprocess.run([sys.executable, "-m", "medcodec", "info", str(tmp_path / "missing.mdc")],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == 2 and run.stderr.startswith("error: "), run.stderr


@pytest.mark.parametrize("k", [0, 3])
def test_max_error_encode_info_decode(ct_series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], k: int) -> None:
    out = tmp_path / "ct.mdc"
    assert main(["encode", str(ct_series), "-o", str(out), "--max-error", str(k), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == "2.10" and info["max_abs_error_bound"] == [float(k)]
    assert ("bit-exact" in info["guarantee"]) == (k == 0)
    dcm_dir = tmp_path / "dcm"
    assert main(["decode", str(out), "-o", str(dcm_dir), "--to", "dicom"]) == 0
    originals = [pydicom.dcmread(p) for p in ct_series.glob("*.dcm")]
    for path in dcm_dir.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        src = next(o for o in originals if o.ImagePositionPatient == ds.ImagePositionPatient)
        err = np.abs(ds.pixel_array.astype(int) - src.pixel_array.astype(int)).max()
        assert err <= k
        assert (ds.get("LossyImageCompression") == "01") == (k > 0)


def test_max_error_excludes_quality(ct_series: Path, tmp_path: Path) -> None:
    assert main(["encode", str(ct_series), "-o", str(tmp_path / "x.mdc"), "--max-error", "0", "-q", "90"]) != 0
    assert not (tmp_path / "x.mdc").exists()


def test_entropy_arith_encode_info_decode(ct_series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huff, arith = tmp_path / "h.mdc", tmp_path / "a.mdc"
    assert main(["encode", str(ct_series), "-o", str(huff), "-q", "80", "--entropy", "huffman", "--no-progress"]) == 0
    assert main(["encode", str(ct_series), "-o", str(arith), "-q", "80", "--no-progress"]) == 0  # the default
    capsys.readouterr()
    assert main(["info", str(arith), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == "2.12" and info["max_abs_error_bound"][0] > 0  # the multi-symbol coder, intra, compact
    assert info["intra_frames"] == info["shape"][0]
    assert "all frames intra" in info["guarantee"]  # intra frames keep the bound at any effort
    assert main(["info", str(huff), "--json"]) == 0
    assert "effort=fast" in json.loads(capsys.readouterr().out)["guarantee"]  # v1: best's trellis is unchecked
    assert arith.stat().st_size < 0.95 * huff.stat().st_size
    # same levels, reconstruction offsets toward the centroids: no larger error than Huffman's
    originals = [pydicom.dcmread(p).pixel_array.astype(float) for p in ct_series.glob("*.dcm")]
    a, h = medcodec.decode(arith.read_bytes()).astype(float), medcodec.decode(huff.read_bytes()).astype(float)

    def sse(frames: np.ndarray) -> float:  # each decoded frame against its original (the closest one)
        return sum(min(float(np.sum((d - o) ** 2)) for o in originals) for d in frames)

    assert sse(a) <= sse(h)


def test_intra_flag(ct_series: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default .mdc coder uses intra frames (2.4, compact); --no-intra writes none; the flag is refused with
    --max-error."""
    plain, intra = tmp_path / "p.mdc", tmp_path / "i.mdc"
    assert main(["encode", str(ct_series), "-o", str(plain), "-q", "60", "--no-intra", "--no-progress"]) == 0
    assert main(["encode", str(ct_series), "-o", str(intra), "-q", "60", "--no-progress"]) == 0
    h_plain, h_intra = medcodec.read_header(plain.read_bytes()), medcodec.read_header(intra.read_bytes())
    assert h_plain.version == (2, 4) and h_intra.version == (2, 12) and h_plain.compact and h_intra.compact  # compact layout
    capsys.readouterr()
    assert main(["info", str(plain), "--json"]) == 0 and json.loads(capsys.readouterr().out)["intra_frames"] == 0
    capsys.readouterr()
    assert main(["encode", str(ct_series), "-o", str(tmp_path / "x.mdc"), "--max-error", "0", "--intra"]) == 2
    assert "--intra" in capsys.readouterr().err


def test_encode_into_the_folder_it_reads_twice(shared_data: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """``encode DIR -o DIR/series.mdc`` run again with --overwrite: the walk passes over its own
    .mdc (it read it as a failed input, exit 1); the same for a folder of .mdc files inside DIR."""
    src = shared_data / "ct_head_phantom_philips_ingenuity"
    folder = tmp_path / "in"
    folder.mkdir()
    for name in sorted(p.name for p in src.glob("*.dcm"))[60:62]:
        shutil.copy(src / name, folder / name)
    for out in (folder / "series.mdc", folder / "mdc"):
        for extra in ([], ["--overwrite"]):
            assert main(["encode", str(folder), "-o", str(out), "-q", "60", "--no-progress", *extra]) == 0
            printed = capsys.readouterr()
            assert "failed" not in printed.out + printed.err and "2 frame(s)" in printed.out
    assert medcodec.decode((folder / "series.mdc").read_bytes()).shape == (2, 512, 512)


def test_encode_lossy_dicom_into_the_folder_it_reads_twice(shared_data: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """``encode DIR --to dicom-jpeg -o DIR/lossy`` run again with --overwrite: the walk leaves out
    its own output folder (the rerun read the lossy files as inputs and refused to overwrite
    them, exit 2); the input folder itself as --output is a usage error, nothing written."""
    src = shared_data / "ct_head_phantom_philips_ingenuity"
    folder = tmp_path / "in"
    folder.mkdir()
    for name in sorted(p.name for p in src.glob("*.dcm"))[60:62]:
        shutil.copy(src / name, folder / name)
    out = folder / "lossy"
    for extra in ([], ["--overwrite"]):
        argv = ["encode", str(folder), "--to", "dicom-jpeg", "-o", str(out), "-q", "60", "--no-progress", *extra]
        assert main(argv) == 0
        printed = capsys.readouterr()
        assert "error" not in printed.err and "series: 2 file(s)" in printed.out
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == 2 and all(pydicom.dcmread(p).LossyImageCompression == "01" for p in written)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    assert main(["encode", str(folder), "--to", "dicom-jpeg", "-o", str(folder), "--no-progress"]) == 2
    assert "is also one of the inputs" in capsys.readouterr().err
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


def test_encode_to_dicom_says_where_a_first_run_s_wait_went(ct_series: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """The first `--to dicom-jpeg` after an install compiles in the coder's self-test (a minute), and
    the series line, which times the coding, said "in 0.0 s" (the pip-install re-audit): a self-test
    longer than 3 s is named. Here a slow self-test stands in for the compile."""
    import time

    from medcodec.dicom.coding import LossySyntax

    real = LossySyntax.check_available

    def slow(self: LossySyntax) -> None:
        time.sleep(3.2)
        real(self)

    monkeypatch.setattr(LossySyntax, "check_available", slow)
    files = sorted(ct_series.glob("*.dcm"))[:1]
    assert main(["encode", str(files[0]), "--to", "dicom-jpeg", "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "note: compiling the coder's kernels on first use took 3 s" in capsys.readouterr().err


@pytest.mark.parametrize("to", ["mdc", "dicom-jpeg"])
def test_encode_deflated_dicom(to: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Deflated Explicit VR Little Endian (pydicom's image_dfl.dcm) encodes like any other file: the
    frame-by-frame path inflates the dataset first (it found no Pixel Data in the raw file)."""
    from pydicom.data import get_testdata_file

    src = Path(str(get_testdata_file("image_dfl.dcm")))
    expected = pydicom.dcmread(src).pixel_array
    out = tmp_path / ("dfl.mdc" if to == "mdc" else "dfl")
    extra = ["--max-error", "0"] if to == "mdc" else ["-q", "90"]
    assert main(["encode", str(src), "-o", str(out), "--to", to, "--no-progress", *extra]) == 0
    err = capsys.readouterr().err
    assert "failed" not in err and "warning" not in err, err
    if to == "mdc":
        np.testing.assert_array_equal(medcodec.decode(out.read_bytes())[0], expected)  # lossless
    else:
        (written,) = out.glob("*/*.dcm")
        assert pydicom.dcmread(written).pixel_array.shape == expected.shape


def test_encode_psnr_target_is_checked_on_the_whole_series(ct_series: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """``encode --psnr`` (the streaming series path) searched on a sample and never measured what it
    wrote: an unreachable target was missed in silence (outside audit, 2026-12-01). The written
    file is decoded and measured; a miss is a warning naming the PSNR reached, a hit says nothing."""
    from medcodec.metrics import psnr

    capsys.readouterr()
    out = tmp_path / "hit.mdc"
    assert main(["encode", str(ct_series), "-o", str(out), "--psnr", "50", "--no-progress"]) == 0
    assert "not reached" not in capsys.readouterr().err
    (series,) = medcodec.dicom.read_series(ct_series)
    original = np.stack(list(series.iter_frames()))
    assert psnr(original, medcodec.decode(out.read_bytes()), bits_stored=12) >= 50 - 0.5
    # no DCT stream reaches 130 dB: the lossless one does (as medcodec.encode gives it, since 2026-12-03)
    assert main(["encode", str(ct_series), "-o", str(tmp_path / "exact.mdc"), "--psnr", "130", "--no-progress"]) == 0
    said = capsys.readouterr()
    assert "lossless, bit-exact" in said.out and "not reached" not in said.err
    assert np.array_equal(medcodec.decode((tmp_path / "exact.mdc").read_bytes()), original)
    with warnings.catch_warnings():  # as on a command line (pytest makes warnings errors)
        warnings.simplefilter("default", medcodec.errors.RateTargetWarning)
        # a DCT stream asked for by name (--no-intra) is kept: the miss is said
        assert main(["encode", str(ct_series), "-o", str(tmp_path / "miss.mdc"), "--psnr", "130", "--no-intra",
                     "--no-progress"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "PSNR 130 dB not reached: the 6-frame series decodes at" in err, err


def test_encode_psnr_says_when_the_peak_is_far_above_the_data(shared_data: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """PSNR's peak is 2^bits_stored - 1: the GE MR (Bits Stored 16, values 0..~250 here) asked for
    45 dB may err by ~370, more than its whole range, and nothing said so (README walk-through,
    2026-12-01). A note now, the definition unchanged; none for the 12-bit CT, whose values fill it."""
    mr = sorted((shared_data / "mr_head_ge_signa_t1_ctk").glob("*.dcm"))[:3]
    folder = tmp_path / "mr"
    folder.mkdir()
    for path in mr:
        shutil.copy(path, folder / path.name)
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("default", medcodec.errors.RateTargetWarning)
        assert main(["encode", str(folder), "-o", str(tmp_path / "mr.mdc"), "--psnr", "45", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "measured against the peak 65535" in err and "dB more" in err, err
