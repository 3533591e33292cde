"""``medcodec demo``: the main job on real images anyone can get with pip.

Uses the real CT, MR and CR images of the ``pydicom-data`` package (NEMA WG04 and
pydicom test images, MIT licensed), or any DICOM files given with ``--input``. Each image
is encoded at several qualities; the table shows size, ratio, bpp, PSNR (peak
2^bits_stored - 1), max abs error (stored units and HU), SSIM and timings, and the output
folder gets a rate-distortion plot, difference images and results.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from .. import codec
from ..errors import CodecError
from ..fileio import atomic_write
from ._common import ensure_dir, handle_errors, jobs_option, progress

#: (pydicom-data file, what it is). Real images, no synthetic ones.
SAMPLES = (
    ("693_UNCR.dcm", "CT, 14-bit signed (pydicom issue 693)"),
    ("MR2_UNCR.dcm", "MR, 12-bit, 1024x1024 (NEMA WG04 MR2)"),
    ("RG3_UNCR.dcm", "CR, 10-bit, 1760x1760, MONOCHROME1 (NEMA WG04 RG3)"),
    ("CT_small.dcm", "CT, 16-bit signed, 128x128 (NEMA CT1, downsized; ships with pydicom)"),
)


@dataclass
class DemoImage:
    name: str
    label: str
    pixels: np.ndarray
    spec: Any
    modality: str


def _sample_paths() -> list[tuple[str, str]]:
    from pydicom.data import get_testdata_file

    found = []
    for name, label in SAMPLES:
        path = get_testdata_file(name, download=False)
        if path:
            found.append((str(path), label))
    return found


def _load(paths: list[tuple[str, str]]) -> tuple[list[DemoImage], list[tuple[str, Exception]]]:
    from ..dicom import read_image

    images: list[DemoImage] = []
    failures: list[tuple[str, Exception]] = []
    for path, label in paths:
        try:
            img = read_image(path)
            images.append(DemoImage(Path(path).name, label, img.pixels[0], img.spec, img.modality))
        except CodecError as exc:
            failures.append((path, exc))
    return images, failures


def _encode_row(image: DemoImage, quality: float, fmt: str, jobs: int | None) -> dict[str, Any] | None:
    from ..evaluate.metrics import bits_per_pixel, compare, compression_ratio, texture_retention

    spec = image.spec
    t0 = time.perf_counter()
    try:
        data = codec.encode(image.pixels, bits_stored=spec.bits_stored, signed=spec.signed, quality=quality,
                            format=fmt, spec=spec if fmt == "mdc" else None, jobs=jobs)  # fmt: skip
    except CodecError:
        return None  # e.g. standard JPEG cannot hold 14-bit signed data
    t1 = time.perf_counter()
    decoded = codec.decode(data, jobs=jobs)
    t2 = time.perf_counter()
    m = compare(image.pixels, decoded, spec)
    n = image.pixels.size
    return {
        "image": image.name, "format": fmt, "quality": quality, "bytes": len(data),
        "ratio": compression_ratio(len(data), n, spec.bits_stored), "bpp": bits_per_pixel(len(data), n),
        "psnr_db": m["psnr_db"], "psnr_minmax_db": m["psnr_minmax_db"], "max_abs_error": m["max_abs_error"],
        "max_abs_error_hu": m["max_abs_error_hu"], "ssim": m["ssim"], "encode_ms": 1e3 * (t1 - t0),
        "decode_ms": 1e3 * (t2 - t1), "_decoded": decoded,
        # soft-tissue texture kept (CT: blocks in -150..250 HU with std >= 8 HU; issue 11)
        "texture": texture_retention(image.pixels, decoded, rescale_slope=spec.rescale_slope,
                                     rescale_intercept=spec.rescale_intercept) if image.modality == "CT" else None,
    }  # fmt: skip


def _window(image: DemoImage) -> tuple[float, float]:
    """Display range in stored units: the header window, else the 1st-99th percentile."""
    spec = image.spec
    if spec.window_center is not None and spec.window_width:
        lo_hu = spec.window_center - spec.window_width / 2
        hi_hu = spec.window_center + spec.window_width / 2
        lo, hi = sorted(((lo_hu - spec.rescale_intercept) / spec.rescale_slope,
                         (hi_hu - spec.rescale_intercept) / spec.rescale_slope))  # fmt: skip
        return lo, hi
    lo, hi = np.percentile(image.pixels, [1, 99])
    return float(lo), float(max(hi, lo + 1))


def _plots(images: list[DemoImage], rows: list[dict[str, Any]], out: Path, diff_quality: float) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for image in images:
        for fmt, style in (("mdc", "-o"), ("jpeg", "--s")):
            pts = sorted((r["bpp"], r["psnr_db"]) for r in rows if r["image"] == image.name and r["format"] == fmt)
            if pts:
                ax.plot(*zip(*pts), style, label=f"{image.name} ({fmt})", ms=4)
    ax.set_xlabel("bits per pixel (compressed bits / pixels)")
    ax.set_ylabel("PSNR (dB, peak 2^bits_stored - 1)")
    ax.set_title("medcodec rate-distortion on real images")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(out / "rate_distortion.png")
    fig.savefig(written[-1])
    plt.close(fig)

    for image in images:
        row = next(
            (r for r in rows if r["image"] == image.name and r["format"] == "mdc" and r["quality"] == diff_quality),
            None,
        )
        if row is None:
            continue
        lo, hi = _window(image)
        diff = row["_decoded"].astype(np.float64) - image.pixels
        lim = max(1.0, float(np.percentile(np.abs(diff), 99.9)))
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.3), dpi=100)
        cmap = "gray_r" if image.spec.photometric_interpretation == "MONOCHROME1" else "gray"
        axes[0].imshow(image.pixels, cmap=cmap, vmin=lo, vmax=hi)
        axes[0].set_title("original")
        axes[1].imshow(row["_decoded"], cmap=cmap, vmin=lo, vmax=hi)
        axes[1].set_title(f"decoded, quality {diff_quality:g} ({row['ratio']:.1f}:1)")
        im = axes[2].imshow(diff, cmap="coolwarm", vmin=-lim, vmax=lim)
        axes[2].set_title(f"difference (stored units), max |e| = {row['max_abs_error']:.0f}")
        fig.colorbar(im, ax=axes[2], fraction=0.046)
        for a in axes:
            a.axis("off")
        fig.suptitle(f"{image.name}: {image.label}; PSNR {row['psnr_db']:.1f} dB, SSIM {row['ssim']:.4f}")
        fig.tight_layout()
        written.append(out / f"difference_{Path(image.name).stem}.png")
        fig.savefig(written[-1])
        plt.close(fig)
    return written


@click.command()
@click.option(
    "--input",
    "inputs",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="DICOM files to use instead of the pydicom-data samples (repeatable).",
)
@click.option("--qualities", default="30,50,75,90", show_default=True, help="Comma-separated qualities.")
@click.option(
    "-o",
    "--output",
    default=Path("demo-out"),
    type=click.Path(path_type=Path),
    show_default=True,
    help="Folder for results.json, the rate-distortion plot and difference images.",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@jobs_option
@handle_errors
def demo(inputs: tuple[Path, ...], qualities: str, output: Path, progress: bool, jobs: int | None) -> None:
    """Encode real sample images at several qualities and show what it costs and what is lost.

    The first run after installing compiles the numba kernels (a few seconds, cached).
    """
    try:
        qs = [float(q) for q in qualities.split(",") if q.strip()]
    except ValueError:
        raise click.BadParameter(f"{qualities!r}: expected numbers like 30,50,75,90") from None
    paths = [(str(p), "given on the command line") for p in inputs] if inputs else _sample_paths()
    if not paths:
        raise click.ClickException("no sample images: install pydicom-data (pip install pydicom-data) or pass --input")
    images, failures = _load(paths)
    jobs_list = [(img, q, fmt) for img in images for q in qs for fmt in ("mdc", "jpeg")]
    rows = []
    for img, q, fmt in progress_iter(jobs_list, progress):
        row = _encode_row(img, q, fmt, jobs)
        if row is not None:
            rows.append(row)
    _print_table(images, rows)
    ensure_dir(output)
    diff_q = 75.0 if 75.0 in qs else qs[len(qs) // 2]
    written = _plots(images, rows, output, diff_q)
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    meta = {img.name: {"label": img.label, "modality": img.modality, "shape": list(img.pixels.shape),
                       "bits_stored": img.spec.bits_stored, "signed": img.spec.signed} for img in images}  # fmt: skip
    atomic_write(output / "results.json", json.dumps({"images": meta, "results": clean}, indent=2).encode())
    click.echo(f"\nwrote {output / 'results.json'}, " + ", ".join(str(p) for p in written))
    click.echo(
        "ratio: raw = 2 bytes/pixel for 9-16-bit data, 1 for 8-bit. PSNR dB: peak 2^bits_stored - 1 "
        "(the convention; generous for 14-16-bit data that uses part of its range); PSNR rng: peak = max - min "
        "of the image. max|e|: stored units; out: after the modality rescale. The first row includes loading "
        "the compiled kernels."
    )
    for path, exc in failures:
        click.echo(f"skipped {path}: {exc}", err=True)


def progress_iter(items: list[Any], enabled: bool) -> Any:
    return progress(items, total=len(items), desc="encoding", enabled=enabled)


def _print_table(images: list[DemoImage], rows: list[dict[str, Any]]) -> None:
    header = (f"{'':4s} {'fmt':4s} {'q':>4s} {'bytes':>9s} {'ratio':>8s} {'bpp':>6s} {'PSNR dB':>8s} {'PSNR rng':>8s} "
              f"{'max|e|':>7s} {'max|e| out':>10s} {'SSIM':>7s} {'enc ms':>7s} {'dec ms':>7s} {'flat %':>6s} "
              f"{'texture':>7s}")  # fmt: skip
    for image in images:
        s = image.spec
        unit = "HU" if image.modality == "CT" else "rescaled units"
        click.echo(f"\n{image.name}: {image.label}; {image.modality} {image.pixels.shape[0]}x{image.pixels.shape[1]}, "
                   f"{s.bits_stored}-bit {'signed' if s.signed else 'unsigned'}; max|e| out in {unit}")  # fmt: skip
        click.echo(header)
        for r in (r for r in rows if r["image"] == image.name):
            click.echo(
                f"{'':4s} {r['format']:4s} {r['quality']:4.0f} {r['bytes']:9d} {r['ratio']:6.1f}:1 {r['bpp']:6.3f} "
                f"{r['psnr_db']:8.2f} {r['psnr_minmax_db']:8.2f} {r['max_abs_error']:7.0f} "
                f"{r['max_abs_error_hu']:10.1f} "
                f"{r['ssim']:7.4f} {r['encode_ms']:7.1f} {r['decode_ms']:7.1f} {_texture_cells(r.get('texture'))}"
            )
    click.echo(
        "\nflat %: share of soft-tissue 8x8 blocks (CT, -150..250 HU, std >= 8 HU) decoded flat (std below 35 % "
        "of the original's); texture: their median std(decoded) / std(original). '-': not CT or no such block."
    )


def _texture_cells(t: dict[str, Any] | None) -> str:
    if not t or not t.get("blocks"):
        return f"{'-':>6s} {'-':>7s}"
    return f"{t['flattened_fraction'] * 100:6.2f} {t['median_retention']:7.3f}"
