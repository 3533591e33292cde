"""The sweep, the tables and the report files, with a small stand-in codec (no real data needed)."""

from __future__ import annotations

import csv
import json
import struct
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from medcodec.errors import InvalidInputError
from medcodec.evaluate import metrics as M
from medcodec.evaluate.peers import BaseAdapter, Knob, ZlibPeer, from_unsigned
from medcodec.evaluate.report import REPORT_FILES, figures, write_report
from medcodec.evaluate.runner import matched_table, run_evaluation
from medcodec.spec import PixelSpec


class StepCodec(BaseAdapter):
    """Uniform quantiser + zlib: size falls monotonically as the step grows."""

    name: ClassVar[str] = "step"
    label: ClassVar[str] = "uniform quantiser + zlib"
    knob = Knob("step", "quantisation step in stored units", 1.0, 256.0, size_increases=False, log_scale=True)
    lossless = True

    def encode(self, frame: np.ndarray, spec: PixelSpec, *, target: float | None) -> bytes:
        step = 1.0 if target is None else float(target)
        q = np.round(frame.astype(np.float64) / step).astype(np.int32)
        return struct.pack("<dII", step, *frame.shape) + zlib.compress(q.tobytes(), 9)

    def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> np.ndarray:
        step, rows, cols = struct.unpack("<dII", data[:16])
        q = np.frombuffer(zlib.decompress(data[16:]), np.int32).reshape(rows, cols)
        return from_unsigned(np.round(q * step).astype(np.int32), spec, 0)


class Unavailable(StepCodec):
    name: ClassVar[str] = "missing"

    def _probe(self) -> str | None:
        return "libmissing is not installed"


class TwelveBitOnly(StepCodec):
    name: ClassVar[str] = "twelve"
    max_bits_stored: ClassVar[int] = 12


@pytest.fixture(scope="module")
def phantom() -> tuple[np.ndarray, PixelSpec]:
    """Three 64x64 12-bit frames: smooth body, noise, a sharp insert (stored 0..4095, HU -1024..)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:64, :64]
    body = ((xx - 32) ** 2 + (yy - 32) ** 2 < 26**2) * 1064.0
    frames = []
    for k in range(3):
        f = body + 40 * np.sin(xx / (5 + k)) + rng.normal(0, 15, body.shape)
        f[20:30, 20:30] = 2500 + 100 * k
        frames.append(np.clip(np.round(f), 0, 4095).astype(np.uint16))
    return np.stack(frames), PixelSpec(bits_stored=12, rescale_intercept=-1024.0, rescale_type="HU")


@pytest.fixture(scope="module")
def result(phantom: tuple[np.ndarray, PixelSpec]) -> Any:
    pixels, spec = phantom
    return run_evaluation(
        pixels, spec, [StepCodec(), Unavailable(), ZlibPeer()], rates=(0.5, 1.0, 2.0, 3.0),
        anchor="step", calibration_frames=2, info={"source": "phantom", "frames_evaluated": 3},
    )  # fmt: skip


def test_points_cover_every_rate_with_every_metric(result: Any) -> None:
    d = result.to_dict()
    lossy = [p for p in d["points"] if p["codec"] == "step" and p["mode"] == "lossy"]
    assert sorted(p["target_bpp"] for p in lossy) == [0.5, 1.0, 2.0, 3.0]
    for p in lossy:
        assert p["target_hit"] and abs(p["bpp"] / p["target_bpp"] - 1) < 0.25
        for key in ("bytes", "bpp", "ratio", "psnr_db", "psnr_minmax_db", "rmse", "max_abs_error", "rmse_hu",
                    "max_abs_error_hu", "ssim", "encode_mb_s", "decode_mb_s"):  # fmt: skip
            assert isinstance(p[key], (int, float)), key
        assert set(p["windows"]) == {"soft_tissue", "lung"}
        assert p["ratio"] == pytest.approx(16 / p["bpp"])  # 2 bytes per raw pixel
    lossless = [p for p in d["points"] if p["mode"] == "lossless"]
    assert {p["codec"] for p in lossless} == {"step", "zlib"}
    assert all(p["psnr_db"] is None and p["max_abs_error"] == 0 for p in lossless)  # inf -> null


def test_points_agree_with_an_independent_recomputation(result: Any, phantom: Any) -> None:
    pixels, spec = phantom
    point = next(p for p in result.points if p["codec"] == "step" and p["target_bpp"] == 1.0)
    codec = StepCodec()
    data = [codec.encode(f, spec, target=point["knob_value"]) for f in pixels]
    decoded = np.stack([codec.decode(b, spec) for b in data])
    diff = decoded.astype(np.float64) - pixels
    assert point["bytes"] == sum(map(len, data))
    assert point["psnr_db"] == pytest.approx(10 * np.log10(4095**2 / np.mean(diff**2)), abs=1e-9)
    assert point["max_abs_error"] == np.max(np.abs(diff))


def test_unavailable_codec_is_skipped_with_its_message(result: Any) -> None:
    assert result.skipped == {"missing": "missing skipped: libmissing is not installed"}
    assert all(p["codec"] != "missing" for p in result.points)


def test_unsupported_data_is_skipped(phantom: Any) -> None:
    pixels, _ = phantom
    wide = pixels.astype(np.uint16) * 8  # 16-bit data spanning 15 bits: no 12-bit codec can take it
    spec16 = PixelSpec(bits_stored=16)
    messages: list[str] = []
    r = run_evaluation(wide, spec16, [TwelveBitOnly(), ZlibPeer()], rates=(1.0,), log=messages.append, anchor=None,
                       with_ssim=False)  # fmt: skip
    assert "twelve skipped: handles 8-12-bit data, this input has bits_stored=16" in r.skipped["twelve"]
    assert messages == [r.skipped["twelve"]]


@pytest.mark.realdata
def test_a_series_declaring_more_bits_than_it_spans_is_shifted_for_the_12_bit_codecs(shared_data: Path) -> None:
    """A real CT declaring 16 signed bits for -1024..1186 HU: the standard JPEG codecs (medcodec's and
    libjpeg-turbo) were left out of its evaluation; they now code its values shifted into 12 bits,
    as the lossy DICOM writer maps such a series, and are measured in the source's units."""
    import pydicom

    from medcodec.evaluate.peers import Jpeg12Peer, MedcodecJpegAdapter

    ds = pydicom.dcmread(shared_data / "singles" / "ct_512x512_signed16_j2k_lossless.dcm")
    pixels = ds.pixel_array[None]
    spec = PixelSpec(bits_stored=16, signed=True, rescale_type="HU")
    messages: list[str] = []
    r = run_evaluation(pixels, spec, [MedcodecJpegAdapter(), Jpeg12Peer()], rates=(1.0, 2.0), log=messages.append,
                       anchor=None, with_ssim=False)  # fmt: skip
    assert not r.skipped, r.skipped
    low = int(pixels.min())
    for name in ("medcodec-jpeg", "jpeg12"):
        assert r.codecs[name]["shifted"] == {"low": low, "bits": 12}
        assert f"values {-low:+d} in 12 bits" in r.codecs[name]["label"]
        points = [p for p in r.points if p["codec"] == name]
        assert len(points) == 2 and all(45 < p["psnr_db"] < 100 for p in points), points  # peak 2^16 - 1
        assert all(p["max_abs_error"] < 200 for p in points), points
    assert any("fit in 12 bits" in m for m in messages), messages


def test_bd_and_matched_tables(result: Any) -> None:
    # the anchor is the only lossy codec: no BD rows, matched rows for it alone
    assert result.bd == []
    rows = [r for r in result.matched if r["codec"] == "step"]
    assert [r["target"] for r in rows] == ["0.25 bpp", "0.5 bpp", "1 bpp", "2 bpp", "40:1", "20:1", "10:1"]
    by = {r["target"]: r for r in rows}
    assert by["0.25 bpp"]["psnr_db"] is None  # below the lowest point: never extrapolated
    assert by["1 bpp"]["psnr_db"] is not None and by["20:1"]["target_bpp"] == pytest.approx(0.8)


def test_matched_interpolates_in_log_bpp() -> None:
    pts = [
        {"codec": "c", "mode": "lossy", "bpp": 0.5, "psnr_db": 40.0, "ssim": 0.9, "psnr_minmax_db": 38.0},
        {"codec": "c", "mode": "lossy", "bpp": 2.0, "psnr_db": 50.0, "ssim": 0.99, "psnr_minmax_db": 48.0},
    ]
    rows = {r["target"]: r for r in matched_table(pts, ["c"], PixelSpec(bits_stored=12), bpps=(1.0,), ratios=())}
    assert rows["1 bpp"]["psnr_db"] == pytest.approx(45.0)  # halfway in log2: 0.5 -> 1 -> 2


def test_bd_rate_against_anchor(phantom: Any) -> None:
    pixels, spec = phantom

    class Coarser(StepCodec):
        """The same quantiser with a 25 % size overhead: BD-rate must be +25 %."""

        name: ClassVar[str] = "coarser"

        def encode(self, frame: np.ndarray, spec: PixelSpec, *, target: float | None) -> bytes:
            data = super().encode(frame, spec, target=target)
            return data + bytes(len(data) // 4)

        def decode(self, data: bytes, spec: PixelSpec, *, shape: tuple[int, int] | None = None) -> np.ndarray:
            return super().decode(data[: len(data) * 4 // 5 + 1], spec)

    r = run_evaluation(pixels, spec, [StepCodec(), Coarser()], knob_values={"step": [4, 8, 16, 32, 64],
                       "coarser": [4, 8, 16, 32, 64]}, anchor="step", include_lossless=False, with_ssim=False,
                       windows=())  # fmt: skip
    row = r.bd[0]
    assert row["codec"] == "coarser" and row["anchor"] == "step"
    assert row["bd_rate_pchip_pct"] == pytest.approx(25.0, abs=0.3)
    assert row["bd_psnr_pchip_db"] < 0


def test_invalid_inputs(phantom: Any) -> None:
    pixels, spec = phantom
    with pytest.raises(InvalidInputError, match="outside"):
        run_evaluation(pixels, PixelSpec(bits_stored=8), [ZlibPeer()])
    with pytest.raises(InvalidInputError, match="rates"):
        run_evaluation(pixels, spec, [ZlibPeer()], rates=(0.0,))
    with pytest.raises(InvalidInputError, match="qualities"):
        run_evaluation(pixels, spec, [ZlibPeer()], knob_values={"jpeg2000": [40]})


def test_report_files(result: Any, tmp_path: Path) -> None:
    paths = write_report(result, tmp_path / "rep")
    assert {p.name for p in paths.values()} == set(REPORT_FILES.values())
    d = json.loads(paths["json"].read_text())
    assert d["definitions"]["raw_size"].startswith("2 byte(s) per pixel")
    assert "2^bits_stored - 1 = 4095" in d["definitions"]["psnr_db"]
    with paths["csv"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(d["points"]) and "soft_tissue_psnr_db" in rows[0]
    html = paths["html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("data:image/png;base64,") == len(figures(result))
    assert "missing skipped: libmissing is not installed" in html
    with pytest.raises(InvalidInputError, match="exists"):
        write_report(result, tmp_path / "rep")
    write_report(result, tmp_path / "rep", overwrite=True)


def test_raw_size_of_8_bit_data() -> None:
    rng = np.random.default_rng(3)
    px = rng.integers(0, 256, size=(1, 32, 32)).astype(np.uint8)
    r = run_evaluation(px, PixelSpec(bits_stored=8), [ZlibPeer()], with_ssim=False)
    p = r.points[0]
    assert p["raw_bytes"] == 32 * 32 and p["ratio"] == pytest.approx(M.compression_ratio(p["bytes"], 1024, 8))


def test_ct_points_carry_texture_and_the_report_zooms_on_soft_tissue(result: Any, phantom: Any) -> None:
    """Issue 11: every CT point reports the soft-tissue texture, recomputed here independently."""
    from medcodec.evaluate import report
    from medcodec.evaluate.metrics import texture_retention

    pixels, spec = phantom
    d = result.to_dict()
    lossy = [p for p in d["points"] if p["codec"] == "step" and p["mode"] == "lossy"]
    for p in lossy:
        assert p["texture_blocks"] > 0
        assert 0.0 <= p["texture_flattened_fraction"] <= 1.0
    # the coarsest point: recompute its texture from a fresh encode/decode at the same step
    p = min(lossy, key=lambda p: p["bpp"])
    codec = StepCodec()
    dec = np.stack([codec.decode(codec.encode(f, spec, target=p["knob_value"]), spec) for f in pixels])
    t = texture_retention(pixels, dec, rescale_intercept=-1024.0)
    assert p["texture_blocks"] == t["blocks"]
    assert p["texture_median_retention"] == pytest.approx(t["median_retention"])
    assert any(r.get("texture_median_retention") is not None for r in d["matched"])
    names = [name for name, _ in report.figures(result)]
    assert "Soft-tissue zoom (texture)" in names


def test_soft_tissue_crop_finds_the_tissue() -> None:
    from medcodec.evaluate.report import _soft_tissue_crop

    rng = np.random.default_rng(0)
    hu = np.full((128, 160), -1000.0)  # air ...
    hu[64:128, 96:160] = 40 + 20 * rng.standard_normal((64, 64))  # ... and noisy tissue bottom right
    assert _soft_tissue_crop(hu, 48) == (64, 96, 48)  # the first square wholly inside the tissue
    assert _soft_tissue_crop(np.full((64, 64), -1000.0)) is None
