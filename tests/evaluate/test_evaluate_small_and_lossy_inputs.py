"""``medcodec evaluate`` on inputs that broke it (audit findings), on real pydicom test images.

* a report in the way stops the run before any coding, not after the sweep;
* 8x8 and 10x10 crops of a real CT (smaller than SSIM's 11x11 Gaussian window) are evaluated,
  SSIM reported as not available, instead of every codec failing and an empty report exiting 0;
* a run where no codec produced anything is an error (exit 2), not an empty report;
* a source that is already lossy (JPGExtended.dcm: JPEG .51, Lossy Image Compression 01) is said
  to be, and a BD-rate whose cubic fit blows up is replaced by PCHIP's, with the reason printed.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

import medcodec.cli.evaluate as cli_evaluate
from medcodec.cli.main import main
from medcodec.errors import LossySourceWarning
from medcodec.evaluate import bd_rate, load_series
from medcodec.evaluate.peers import get_adapter
from medcodec.evaluate.runner import bd_table


def crop(tmp_path: Path, size: int) -> Path:
    """A ``size`` x ``size`` crop of pydicom's CT_small.dcm (a real CT), written as a DICOM file."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelData = ds.pixel_array[60 : 60 + size, 60 : 60 + size].copy().tobytes()
    ds.Rows = ds.Columns = size
    path = tmp_path / f"tiny{size}.dcm"
    ds.save_as(path)
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["evaluate", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_existing_report_stops_the_run_before_any_coding(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    report = tmp_path / "report"
    report.mkdir()
    (report / "results.csv").write_text("earlier run\n")
    calls: list[Any] = []
    monkeypatch.setattr(cli_evaluate, "run_evaluation", lambda *a, **k: calls.append(a))  # would code every codec
    code, _out, err = run([str(crop(tmp_path, 16)), "--report", str(report)], capsys)
    assert code == 2
    assert (
        err.strip().splitlines()[-1]
        == f"error: {report / 'results.csv'}: exists already (pass --overwrite to replace it)"
    )
    assert calls == []  # nothing was coded
    assert sorted(p.name for p in report.iterdir()) == ["results.csv"]  # nothing new written
    assert (report / "results.csv").read_text() == "earlier run\n"


@pytest.mark.parametrize("size", [8, 10])
def test_images_smaller_than_the_ssim_window_are_evaluated_with_ssim_not_available(
    size: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codecs = ["medcodec", "jpeg2000", "jpegls", "zlib"]
    report = tmp_path / "report"
    code, _out, err = run([str(crop(tmp_path, size)), "--report", str(report), "--codecs", ",".join(codecs),
                          "--rates", "4,8,16"], capsys)  # fmt: skip
    assert code == 0, err
    assert "win_size" not in err and "failed" not in err
    d = json.loads((report / "results.json").read_text())
    assert d["skipped"] == {}
    assert {p["codec"] for p in d["points"]} == set(codecs)
    for p in d["points"]:
        assert p["ssim"] is None  # SSIM (11x11 Gaussian window) is not defined on these frames
        assert all(w["ssim"] is None for w in p["windows"].values())
        assert p["bpp"] > 0 and p["max_abs_error"] >= 0
        if p["mode"] == "lossy":
            assert p["psnr_db"] > 20
    assert "11x11" in d["definitions"]["ssim"]


def test_no_codec_able_to_code_the_input_is_an_error_not_an_empty_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import pydicom

    # CT_small (16-bit signed) with its values spread over 15 bits: 12-bit JPEG cannot hold them, even
    # shifted (a series spanning 12 bits is now coded shifted, as the DICOM writer maps it)
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelData = (ds.pixel_array.astype(np.int32) * 8).astype(np.int16).tobytes()
    ds.save_as(tmp_path / "wide.dcm")
    report = tmp_path / "report"
    code, _out, err = run([str(tmp_path / "wide.dcm"), "--report", str(report), "--codecs", "jpeg12"], capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: no codec could code this input, no report written: jpeg12 skipped: ")
    assert "bits_stored=16" in last
    assert not report.exists()


def test_every_codec_failing_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    adapter = type(get_adapter("jpegls"))

    def broken(self: Any, *args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(adapter, "encode", broken)
    report = tmp_path / "report"
    code, _out, err = run([str(crop(tmp_path, 16)), "--report", str(report), "--codecs", "jpegls"], capsys)
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "error: no codec could code this input, no report written: jpegls failed: RuntimeError: encoder crashed"
    )
    assert not report.exists()


def test_unreadable_inputs_beside_good_ones_exit_1_with_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder with bad files: the report is of what could be read, each bad file is named, and the
    exit is 1 as encode and ingest give for a batch past bad inputs (it was 0: an outside audit, 2026-12-05)."""
    folder = tmp_path / "in"
    folder.mkdir()
    crop(folder, 16)
    (folder / "notes.txt").write_text("not an image\n")
    whole = crop(tmp_path, 16).read_bytes()
    (folder / "cut.dcm").write_bytes(whole[: len(whole) // 3])
    report = tmp_path / "report"
    code, _out, err = run([str(folder), "--report", str(report), "--codecs", "jpegls", "--rates", "4"], capsys)
    assert code == 1, err
    # (the text file is no DICOM file: not an input of a folder walk)
    assert err.count("unreadable input:") == 1 and "cut.dcm" in err and "1 input(s) could not be read" in err
    assert (report / "results.json").exists()


# --------------------------------------------------------------------------- lossy source, BD-rate

JPG_EXTENDED = "JPGExtended.dcm"  # 1024x256 12-bit NM, JPEG extended (.51), Lossy Image Compression 01
# the lossy points `medcodec evaluate JPGExtended.dcm` measured (bpp, PSNR dB): JPEG 2000 (anchor) and
# 12-bit JPEG, which re-codes the source's own JPEG and jumps by 9 dB between its two lowest rates
J2K = [(0.247589, 69.8707), (0.400452, 73.0755), (0.503418, 74.9181), (0.804077, 79.6363), (1.017029, 82.5653),
       (1.046997, 83.0833)]  # fmt: skip
JPEG12 = [(0.250732, 79.4610), (0.407349, 88.5488), (0.473480, 88.6323), (0.676758, 89.4399)]


def _curves() -> tuple[list[float], list[float], list[float], list[float]]:
    return [r for r, _ in J2K], [p for _, p in J2K], [r for r, _ in JPEG12], [p for _, p in JPEG12]


def test_bd_rate_whose_cubic_fit_turns_back_is_pchip_with_the_reason() -> None:
    from medcodec.evaluate.bjontegaard import bd_delta  # new: imported here so the other tests run on older code

    args = _curves()
    assert bd_rate(*args, method="cubic") == pytest.approx(-100.0, abs=0.01)  # the artefact reported before
    d = bd_delta(*args)
    assert d.method == "pchip"
    assert d.value == pytest.approx(bd_rate(*args, method="pchip"))
    assert d.value == pytest.approx(-72.5, abs=0.1)
    assert d.notes[0].startswith("PCHIP: the cubic fit of the test curve is not monotonic over the overlap")
    # overlap 79.46..83.08 dB: 27 % of the anchor's 13.2 dB, 36 % of the test's 10.0 dB
    assert (
        "small overlap: the curves share 3.62 dB of PSNR, 27 % of the anchor curve's and 36 % of the test" in d.notes[1]
    )


def test_bd_rate_of_well_behaved_curves_stays_the_cubic_without_notes() -> None:
    from medcodec.evaluate.bjontegaard import bd_delta

    rates = [0.25, 0.5, 1.0, 2.0]
    psnrs = [40.0, 44.0, 48.5, 53.0]
    d = bd_delta(rates, psnrs, [r * 0.8 for r in rates], psnrs)  # 20 % fewer bits at every PSNR
    assert d == type(d)(pytest.approx(-20.0), "cubic", ())


def test_bd_table_states_pchip_and_says_why() -> None:
    points = [{"codec": c, "mode": "lossy", "bpp": r, "psnr_db": p} for c, curve in (("jpeg2000", J2K), ("jpeg12", JPEG12))
              for r, p in curve]  # fmt: skip
    (row,) = bd_table(points, ["jpeg2000", "jpeg12"], "jpeg2000")
    assert row["bd_rate_cubic_pct"] == pytest.approx(-100.0, abs=0.01)  # kept, for the record
    assert row["bd_rate_method"] == "pchip" and row["bd_rate_pct"] == pytest.approx(row["bd_rate_pchip_pct"])
    assert "BD-rate: PCHIP: the cubic fit of the test curve is not monotonic" in row["note"]
    assert "small overlap" in row["note"]


def test_load_series_says_when_the_source_is_already_lossy() -> None:
    with pytest.warns(LossySourceWarning, match="already lossy-compressed"):
        series = load_series(get_testdata_file(JPG_EXTENDED))
    assert series.lossy_source and series.info()["lossy_source"] is True
    with warnings.catch_warnings():
        warnings.simplefilter("error", LossySourceWarning)
        plain = load_series(get_testdata_file("CT_small.dcm"))  # uncompressed, no (0028,2110)
    assert plain.lossy_source is False


@pytest.mark.filterwarnings("always::medcodec.errors.LossySourceWarning")  # shown as the CLI shows it, not raised
def test_evaluate_of_a_lossy_jpeg_source_warns_and_states_pchip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report"
    code, out, err = run([get_testdata_file(JPG_EXTENDED), "--report", str(report), "--codecs", "jpeg2000,jpeg12",
                          "--no-lossless"], capsys)  # fmt: skip
    assert code == 0, err
    assert "warning: series " in err and "the source is already lossy-compressed" in err
    row = next(line for line in out.splitlines() if line.startswith("JPEG 12-bit"))
    assert row.endswith("(PCHIP)") and "-100.0 %" not in row
    note = next(line for line in out.splitlines() if line.startswith("note: JPEG 12-bit"))
    assert "not monotonic over the overlap" in note and "small overlap" in note
    d = json.loads((report / "results.json").read_text())
    assert d["input"]["lossy_source"] is True
    (bd,) = d["bd"]
    assert bd["bd_rate_method"] == "pchip" and -90 < bd["bd_rate_pct"] < -50
    assert "already lossy-compressed" in (report / "report.html").read_text()


def test_crop_helper_is_a_real_ct_crop(tmp_path: Path) -> None:
    ds = pydicom.dcmread(crop(tmp_path, 8))
    full = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array
    assert ds.pixel_array.shape == (8, 8) and np.array_equal(ds.pixel_array, full[60:68, 60:68])
