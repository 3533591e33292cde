"""``medcodec evaluate`` end to end on 3 slices of a real chest CT, checked independently.

The independent check re-reads the same slices with pydicom, re-encodes them with imagecodecs
called directly (not through the adapters) at the knob value recorded in results.json, and
recomputes PSNR and SSIM with scikit-image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medcodec.cli.evaluate import evaluate

CHEST = "ct_chest_lungpetctdx_A0001_philips"
RATES = [0.5, 1.0, 1.5, 2.0]
CODECS = ["medcodec", "jpeg2000", "htj2k", "jpeg12", "zlib"]


@pytest.fixture(scope="module")
def report(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, str]:
    out = tmp_path_factory.mktemp("evaluate") / "report"
    args = [
        str(shared_data / CHEST), "--report", str(out), "--max-frames", "3",
        "--rates", ",".join(map(str, RATES)), "--codecs", ",".join(CODECS), "--no-progress",
    ]  # fmt: skip
    result = CliRunner().invoke(evaluate, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, json.loads((out / "results.json").read_text()), result.output


@pytest.mark.realdata
def test_report_files_and_every_metric_for_every_codec_and_rate(report: tuple[Path, Any, str]) -> None:
    out, d, output = report
    assert (out / "report.html").stat().st_size > 50_000
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5  # RD, speed, two windowed views, differences
    assert (out / "results.csv").read_text().count("\n") == len(d["points"]) + 1
    assert d["input"]["frames_evaluated"] == 3 and d["input"]["bits_stored"] == 12
    ran = [c for c in CODECS if c not in d["skipped"]]
    assert {"jpeg2000", "htj2k", "jpeg12", "zlib"} <= set(ran)
    for codec in ran:
        pts = [p for p in d["points"] if p["codec"] == codec]
        if codec == "zlib":
            assert [p["mode"] for p in pts] == ["lossless"]
            continue
        lossy = [p for p in pts if p["mode"] == "lossy"]
        assert sorted({p["target_bpp"] for p in lossy} | {t for p in lossy for t in p.get("also_targets", [])}) == RATES
        for p in lossy:
            for key in ("bpp", "ratio", "psnr_db", "psnr_minmax_db", "rmse", "max_abs_error", "rmse_hu",
                        "max_abs_error_hu", "ssim", "encode_mb_s", "decode_mb_s"):  # fmt: skip
                assert isinstance(p[key], float | int), (codec, key)
            for w in ("soft_tissue", "lung"):
                assert {"psnr_db", "max_abs_error_levels", "ssim"} <= set(p["windows"][w])
    assert {r["codec"] for r in d["bd"]} == set(ran) - {"jpeg2000", "zlib"}
    assert d["anchor"] == "jpeg2000"
    assert "PSNR@1bpp" in output and "json:" in output


def _frames(sources: list[str]) -> np.ndarray:
    return np.stack([pydicom.dcmread(path).pixel_array for path in sources])


@pytest.mark.realdata
@pytest.mark.parametrize("codec", ["jpeg2000", "htj2k"])
def test_peer_psnr_and_ssim_agree_with_scikit_image(codec: str, report: tuple[Path, Any, str], shared_data: Path) -> None:
    _, d, _ = report
    assert all(Path(p).parent == shared_data / CHEST for p in d["input"]["frame_sources"])
    frames = _frames(d["input"]["frame_sources"])
    point = next(p for p in d["points"] if p["codec"] == codec and p["target_bpp"] == 1.0)
    v = point["knob_value"]
    if codec == "jpeg2000":
        streams = [imagecodecs.jpeg2k_encode(f, level=v, codecformat="J2K", bitspersample=12, reversible=False)
                   for f in frames]  # fmt: skip
        decoded = np.stack([imagecodecs.jpeg2k_decode(s) for s in streams])
    else:
        streams = [imagecodecs.htj2k_encode(f, level=v, reversible=False) for f in frames]
        decoded = np.stack([np.clip(imagecodecs.htj2k_decode(s), 0, 4095) for s in streams])
    assert point["bytes"] == sum(len(s) for s in streams)
    psnr = peak_signal_noise_ratio(frames, decoded, data_range=4095)
    ssim = np.mean([
        structural_similarity(f.astype(float), g.astype(float), data_range=4095, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
        for f, g in zip(frames, decoded)
    ])  # fmt: skip
    assert point["psnr_db"] == pytest.approx(psnr, abs=1e-9)
    assert point["ssim"] == pytest.approx(ssim, abs=1e-9)
    assert point["max_abs_error_hu"] == np.max(np.abs(frames.astype(int) - decoded))  # slope 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rates", "0.5,abc"], "comma-separated numbers"),
        (["--rates", "-1"], "positive"),
        (["--codecs", "jpeg3000"], "unknown codec"),
        (["--qualities", "nope=1,2"], "unknown codec"),
        (["--qualities", "50,500"], "500 outside its quality 1..100"),  # was recorded as asked, coded at 100
        (["--qualities", "jpegls=2,300"], "300 outside its near 0..255"),
        (["--window", "bone"], "NAME=CENTER,WIDTH"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "x.dcm").write_bytes(b"")
    result = CliRunner().invoke(evaluate, [str(tmp_path / "x.dcm"), "--report", str(tmp_path / "r"), *args])
    assert result.exit_code == 2 and message in result.output


def test_unreadable_input_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "x.dcm").write_bytes(b"not dicom")
    result = CliRunner().invoke(evaluate, [str(tmp_path / "x.dcm"), "--report", str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code == 2 and "error:" in result.output and "no readable DICOM image" in result.output
