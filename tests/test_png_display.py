"""Issue 10 item 6: ``decode --to png`` writes images a person can view, checked on real images.

The expected display values are recomputed here from the decoded stored values with the DICOM
linear VOI function written out independently (PS3.3 C.11.2.1.2.1), not with medcodec.render.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pytest

from medcodec.cli.main import main

pytestmark = pytest.mark.realdata


def voi(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 linear function to 0..255, written out."""
    y = ((hu - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.clip(np.rint(y), 0, 255)


def to_mdc(src: Path, tmp: Path, name: str) -> Path:
    folder = tmp / f"in_{name}"
    folder.mkdir()
    shutil.copy(src, folder / src.name)
    out = tmp / f"{name}.mdc"
    assert main(["encode", str(folder), "-o", str(out), "-q", "90", "--no-progress"]) == 0
    return out


def decoded(stream: Path, tmp: Path) -> np.ndarray:
    npy = tmp / f"{stream.stem}.npy"
    assert main(["decode", str(stream), "-o", str(npy), "--overwrite"]) == 0
    return np.load(npy)[0].astype(np.float64)


def png(stream: Path, tmp: Path, *options: str) -> tuple[np.ndarray, str]:
    folder = tmp / ("png_" + "_".join(o.strip("-").replace(",", "_") for o in options) if options else "png")
    assert main(["decode", str(stream), "-o", str(folder), "--to", "png", *options]) == 0
    (path,) = folder.glob("*.png")
    return imagecodecs.png_decode(path.read_bytes()), folder.name


def test_signed_ct_png_has_contrast(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A signed 16-bit CT (stored = HU, no header window): once a flat grey (+32768 shift)."""
    stream = to_mdc(shared_data / "singles/ct_512x512_signed16_j2k_lossless.dcm", tmp_path, "signed_ct")
    hu = decoded(stream, tmp_path)
    image, _ = png(stream, tmp_path)
    assert image.dtype == np.uint8 and image.shape == hu.shape
    assert image.std() > 30 and len(np.unique(image)) > 150  # contrast, not one grey
    lo, hi = np.percentile(hu, [0.5, 99.5])  # the auto window: 0.5-99.5 percentile of the HU
    assert abs(int(image[hu <= lo].max()) - 0) <= 1 and int(image[hu >= hi].min()) >= 254
    raw, _ = png(stream, tmp_path, "--png-raw")
    assert raw.dtype == np.uint16 and raw.std() / 65535 < 0.02  # what it used to be: flat grey
    capsys.readouterr()
    soft, _ = png(stream, tmp_path, "--window", "soft-tissue")
    np.testing.assert_allclose(soft, voi(hu, 40, 400), atol=1)
    assert "window soft_tissue C=40 W=400" in capsys.readouterr().out


def test_head_ct_uses_the_header_window_and_brain_preset(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "ct_head_phantom_philips_ingenuity/0070.dcm"
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    assert [float(v) for v in ds.WindowCenter] == [40, 40] and [float(v) for v in ds.WindowWidth] == [80, 80]
    stream = to_mdc(src, tmp_path, "head")
    hu = decoded(stream, tmp_path) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    header, _ = png(stream, tmp_path)
    np.testing.assert_allclose(header, voi(hu, 40, 80), atol=1)
    brain, _ = png(stream, tmp_path, "--window", "brain")
    np.testing.assert_array_equal(brain, header)
    custom, _ = png(stream, tmp_path, "--window", "300,1500")
    np.testing.assert_allclose(custom, voi(hu, 300, 1500), atol=1)


def test_monochrome1_png_is_inverted(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = shared_data / "singles/cr_RG3_1760x1760_10bit_uncompressed.dcm"
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    stream = to_mdc(src, tmp_path, "cr")
    stored = decoded(stream, tmp_path)
    capsys.readouterr()
    image, _ = png(stream, tmp_path)
    assert "MONOCHROME1 inverted" in capsys.readouterr().out
    expected = 255 - voi(stored, float(ds.WindowCenter), float(ds.WindowWidth))
    np.testing.assert_allclose(image, expected, atol=1)
    assert np.corrcoef(image.ravel(), stored.ravel())[0, 1] < -0.9  # high stored value = dark


@pytest.mark.parametrize("options, named", [(["--window", "bogus"], "--window"), (["--window", "40"], "--window"),
                                             (["--window", "40,0"], "width"),
                                             (["--window", "brain", "--png-raw"], "exclude each other"),
                                             (["--window", "brain", "--to", "npy"], "--to png only")])  # fmt: skip
def test_window_option_errors(options: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stream = Path(__file__).resolve().parent / "data" / "fuzz" / "base.u2.b12.f3.mdc"
    args = ["decode", str(stream), "-o", str(tmp_path / "out"), *options]
    if "--to" not in options:
        args += ["--to", "png"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and named in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
