"""``medcodec demo`` and the SSIM metric on inputs that broke them (audit findings), on pydicom's
own test images: an 8x8 crop of a real CT (smaller than SSIM's 11x11 Gaussian window), an RGB
image only (nothing the demo can code), and the difference plot's title for CT_small.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from matplotlib.image import imread
from pydicom.data import get_testdata_file

from medcodec.cli.demo import SAMPLES, _encode_row, _load, _plots
from medcodec.cli.main import main
from medcodec.errors import InvalidInputError
from medcodec.metrics import MetricsAccumulator, compare, ssim
from medcodec.spec import PixelSpec


@pytest.fixture
def ct_crop(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """An 8x8 crop of pydicom's CT_small.dcm (real CT, 16-bit signed), written as DICOM."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    pixels = ds.pixel_array[60:68, 60:68].copy()
    ds.PixelData = pixels.tobytes()
    ds.Rows = ds.Columns = 8
    path = tmp_path / "tiny8.dcm"
    ds.save_as(path)
    return path, pixels


# --------------------------------------------------------------------------- SSIM


def test_ssim_window_is_the_papers_11x11() -> None:
    from medcodec.metrics import SSIM_MIN_SIDE  # new: imported here so the other tests run on older code

    assert SSIM_MIN_SIDE == 11  # Gaussian sigma 1.5 truncated at 3.5 sigma: 2 * int(5.75) + 1


@pytest.mark.parametrize("side", [8, 10])
def test_ssim_of_frames_smaller_than_the_window_is_not_available(side: int) -> None:
    ref = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array[:side, :side].astype(np.int32)
    test = ref + np.arange(ref.size).reshape(ref.shape) % 3  # errors 0, 1, 2
    with pytest.raises(InvalidInputError, match="smaller than the 11x11 Gaussian window"):
        ssim(ref, test, data_range=65535)
    spec = PixelSpec(bits_stored=16, signed=True, rescale_intercept=-1024.0)
    m = compare(ref, test, spec, windows=[])
    assert m["ssim"] is None
    assert m["max_abs_error"] == 2.0 and np.isfinite(m["psnr_db"])  # the other metrics are still there


def test_ssim_from_11x11_on_is_computed() -> None:
    ref = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array[:11, :11].astype(np.int32)
    acc = MetricsAccumulator(PixelSpec(bits_stored=16, signed=True))
    acc.add(ref, ref + 1)
    assert 0.9 < acc.result()["ssim"] <= 1.0


# --------------------------------------------------------------------------- demo


def test_demo_on_an_image_smaller_than_the_ssim_window(ct_crop: tuple[Path, np.ndarray], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    path, _ = ct_crop
    out = tmp_path / "demo"
    assert main(["demo", "--input", str(path), "--qualities", "50,90", "-o", str(out), "--no-progress",
                 "--no-delivery"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    d = json.loads((out / "results.json").read_text())
    assert [r["format"] for r in d["results"]] == ["mdc", "mdc"]  # 16-bit signed: no standard JPEG
    assert all(r["ssim"] is None and r["psnr_db"] > 30 for r in d["results"])
    rows = [line.split() for line in text.splitlines() if line.strip().startswith("mdc")]
    assert len(rows) == 2 and all(row[10] == "-" for row in rows)  # the SSIM column
    assert "SSIM '-': image smaller than the 11x11 SSIM window" in text
    assert (out / "difference_tiny8.png").is_file()


def test_demo_with_only_a_colour_image_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rgb = get_testdata_file("SC_rgb_small_odd.dcm")
    out = tmp_path / "demo"
    assert main(["demo", "--input", rgb, "-o", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: no grayscale image could be coded: {rgb}: (0028,0004) Photometric Interpretation 'RGB' is not "
        "supported yet: medcodec compresses grayscale (MONOCHROME1/2) only"
    ]
    assert not out.exists()  # no empty results.json, no blank plot


def test_demo_checks_its_output_folder_before_the_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output folder that cannot be made stops the demo before it encodes (it used to say so
    after all the work); one that can is not made until there is something to write (above)."""
    (tmp_path / "afile").write_bytes(b"")
    args = ["demo", "--input", get_testdata_file("CT_small.dcm"), "-o", str(tmp_path / "afile" / "out"),
            "--no-progress", "--no-delivery"]  # fmt: skip
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "afile is a file, not a folder" in captured.err and "PSNR" not in captured.out


def test_difference_plot_title_fits_in_the_figure(tmp_path: Path) -> None:
    """The demo's own CT_small sample, labelled as the demo labels it: no text touches the left or
    right edge of the PNG in the title band (a title wider than the figure is cut off there)."""
    label = {name: text for name, text, _ in SAMPLES}["CT_small.dcm"]
    images, failures = _load([(get_testdata_file("CT_small.dcm"), label)])
    assert not failures
    rows = [_encode_row(images[0], 75.0, "mdc", None)]
    _plots(images, rows, tmp_path, 75.0)
    png = imread(tmp_path / "difference_CT_small.png")[..., :3]
    title_band = png[: png.shape[0] // 10]
    edges = np.concatenate([title_band[:, :3], title_band[:, -3:]], axis=1)
    assert edges.min() > 0.95, "the title runs off the figure's side"
    assert title_band[:, 3:-3].min() < 0.2  # the title is there (black text)
