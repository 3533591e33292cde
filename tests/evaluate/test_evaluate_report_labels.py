"""What the report's words and pictures say, per modality (an outside audit, 2026-12-03): units
(HU only where the data is in HU), the soft-tissue zoom only for CT, the figures of the frame
shown, lossless cells, one legend, the label of the JPEG process used, the series not evaluated."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file
from test_evaluate_runner import StepCodec

from medcodec.evaluate.peers import Jpeg12Peer, ZlibPeer
from medcodec.evaluate.report import figures, points_csv, render_html
from medcodec.evaluate.runner import run_evaluation
from medcodec.spec import PixelSpec


def _texts(fig: Any) -> list[str]:
    return [ax.get_title() for ax in fig.axes] + [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.fixture(scope="module")
def mr() -> Any:
    """Two 64x64 MR frames in signal units, some of them inside -150..250 (the HU soft-tissue range)."""
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[:64, :64]
    frames = [np.clip(120 + 90 * np.sin(xx / (4 + k)) + 30 * rng.standard_normal((64, 64)) + 3 * yy, 0, 4095)
              for k in range(2)]  # fmt: skip
    spec = PixelSpec(bits_stored=12)
    return run_evaluation(
        np.stack(frames).round().astype(np.uint16), spec, [StepCodec(), ZlibPeer()], rates=(0.5, 1.0, 2.0, 3.0),
        modality="MR", calibration_frames=2, view_frame=1, info={"source": "mr", "modality": "MR"},
    )  # fmt: skip


def test_mr_report_says_output_units_and_has_no_soft_tissue_zoom(mr: Any) -> None:
    figs = dict(figures(mr))
    assert "Soft-tissue zoom (texture)" not in figs  # the HU range means nothing on MR signal
    texts = " ".join(_texts(figs["Difference images"]))
    assert "HU" not in texts and "output units here" in texts
    page = render_html(mr)
    assert "rmse (output units)" in page and "max |error| (output units)" in page and "rmse hu" not in page


def test_difference_titles_give_the_shown_frame_s_own_error(mr: Any) -> None:
    pixels_step = {p["knob_value"]: p for p in mr.points if p["codec"] == "step" and p["mode"] == "lossy"}
    p, decoded = mr.view_decoded["step"]
    assert p["knob_value"] in pixels_step
    own = float(np.max(np.abs(decoded.astype(np.int64) - mr.view_original.astype(np.int64))))
    title = next(t for t in _texts(dict(figures(mr))["Difference images"]) if t.startswith(StepCodec.label))
    assert f"max |err| {own:.0f} output units here" in title


def test_constant_image_lossless_cells_and_one_legend() -> None:
    px = np.full((2, 32, 32), 1064, dtype=np.uint16)
    spec = PixelSpec(bits_stored=12, rescale_intercept=-1024.0, rescale_type="HU")
    r = run_evaluation(px, spec, [StepCodec(), ZlibPeer()], rates=(0.5, 1.0, 2.0, 3.0), calibration_frames=2,
                       info={"source": "constant"})  # fmt: skip
    rd = dict(figures(r))["Rate-distortion"]
    assert rd.legends and [t.get_text() for t in rd.legends[0].texts] == [StepCodec.label]
    assert sum("every point decodes exactly" in t for t in _texts(rd)) >= 1  # the empty PSNR panels say why
    rows = list(csv.DictReader(io.StringIO(points_csv(r))))
    assert rows and all(row["psnr_db"] == "inf" for row in rows if row["lossless"] == "True")
    page = render_html(r)
    points = page[page.index("<h2>All points</h2>"):]
    assert "&infin;" in points


def test_jpeg_peer_label_follows_the_coding_process() -> None:
    peer = Jpeg12Peer()
    assert "8-bit baseline" in peer.label_for(PixelSpec(bits_stored=8))
    assert "12-bit" in peer.label_for(PixelSpec(bits_stored=12))


def test_cli_names_the_series_it_does_not_evaluate(tmp_path: Path) -> None:
    from medcodec.cli.evaluate import evaluate

    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(get_testdata_file(name), folder / name)
    out = CliRunner().invoke(evaluate, [str(folder), "--codecs", "zlib", "--report", str(tmp_path / "r"),
                                        "--no-progress"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "2 series in the input; evaluating" in out.output and "--series" in out.output
    assert "not evaluated:" in out.output
