"""``medcodec demo``: the main job on real images anyone can get with pip.

Uses the real CT, MR and CR images of the ``pydicom-data`` package (NEMA WG04 and
pydicom test images, MIT licensed), or any DICOM files given with ``--input``. Each image
is encoded at several qualities; the table shows size, ratio, bpp, PSNR (peak
2^bits_stored - 1), max abs error (stored units and HU), SSIM and timings, and the output
folder gets a rate-distortion plot, difference images and results.json.
"""

from __future__ import annotations

import json
import math
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from .. import codec
from ..errors import CodecError, InvalidInputError, failure_message
from ..fileio import atomic_write
from ..metrics import SSIM_MIN_SIDE
from ._common import check_dir_can_be_made, ensure_dir, handle_errors, jobs_option, progress

#: (file, what it is, where it comes from). Real images, no synthetic ones.
SAMPLES = (
    ("693_UNCR.dcm", "CT head, 14-bit signed (pydicom issue 693)", "pydicom-data"),
    ("MR2_UNCR.dcm", "MR, 12-bit, 1024x1024 (NEMA WG04 MR2)", "pydicom-data"),
    ("RG3_UNCR.dcm", "CR, 10-bit, 1760x1760, MONOCHROME1 (NEMA WG04 RG3)", "pydicom-data"),
    ("CT_small.dcm", "CT, 16-bit signed, 128x128 (NEMA CT1, downsized; ships with pydicom)", "pydicom"),
)
#: Samples known to be head CTs (no Body Part Examined in their headers): read in a brain window.
HEAD_CT_SAMPLES = {"693_UNCR.dcm"}
_HEAD_WORDS = ("HEAD", "BRAIN", "SKULL", "NEURO", "CRAN", "KOPF", "SCHAEDEL", "SCHÄDEL")


@dataclass
class DemoImage:
    name: str
    label: str
    pixels: np.ndarray
    spec: Any
    modality: str
    head: bool = False

    def reading_window(self) -> Any:
        """The window a reader would use, for display and the windowed PSNR: brain (40/80) for a
        head CT, soft tissue (40/400) for other CT, else the header's window (else none)."""
        from ..render import WINDOW_PRESETS, Window

        if self.modality == "CT":
            name = "brain" if self.head else "soft_tissue"
            return Window(name, *WINDOW_PRESETS[name])
        s = self.spec
        if s.window_center is not None and s.window_width and s.window_width >= 1:
            return Window("header", float(s.window_center), float(s.window_width))
        return None


def _sample_paths() -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """The sample files found, and the ones missing as (name, label, package)."""
    from pydicom.data import get_testdata_file

    found, missing = [], []
    for name, label, package in SAMPLES:
        path = get_testdata_file(name, download=False)
        if path:
            found.append((str(path), label))
        else:
            missing.append((name, label, package))
    return found, missing


def _is_head(name: str, dataset: Any) -> bool:
    if name in HEAD_CT_SAMPLES:
        return True
    text = " ".join(
        str(dataset.get(k, "")) for k in ("BodyPartExamined", "StudyDescription", "SeriesDescription", "ProtocolName")
    ).upper()
    return any(w in text for w in _HEAD_WORDS)


def _load(paths: list[tuple[str, str]]) -> tuple[list[DemoImage], list[tuple[str, Exception]]]:
    from ..dicom import read_image

    images: list[DemoImage] = []
    failures: list[tuple[str, Exception]] = []
    for path, label in paths:
        try:
            img = read_image(path)
            name = Path(path).name
            images.append(
                DemoImage(
                    name,
                    label,
                    img.pixels[0],
                    img.spec,
                    img.modality,
                    head=img.modality == "CT" and _is_head(name, img.dataset),
                )
            )
        except CodecError as exc:
            failures.append((path, exc))
    return images, failures


def _encode_row(image: DemoImage, quality: float, fmt: str, jobs: int | None) -> dict[str, Any] | None:
    from ..evaluate.metrics import bits_per_pixel, compare, compression_ratio, texture_retention

    spec = image.spec
    t0 = time.perf_counter()
    try:
        data = codec.encode(
            image.pixels,
            bits_stored=spec.bits_stored,
            signed=spec.signed,
            quality=quality,
            format=fmt,
            spec=spec if fmt == "mdc" else None,
            jobs=jobs,
        )
    except CodecError:
        return None  # e.g. standard JPEG cannot hold 14-bit signed data
    t1 = time.perf_counter()
    decoded = codec.decode(data, jobs=jobs)
    t2 = time.perf_counter()
    window = image.reading_window()
    m = compare(image.pixels, decoded, spec, windows=[window] if window else ())
    n = image.pixels.size
    return {
        "window": None if window is None else {"name": window.name, "center": window.center, "width": window.width},
        "psnr_window_db": m["windows"][window.name]["psnr_db"] if window else None,
        "image": image.name,
        "format": fmt,
        "quality": quality,
        "bytes": len(data),
        "ratio": compression_ratio(len(data), n, spec.bits_stored),
        "bpp": bits_per_pixel(len(data), n),
        "psnr_db": m["psnr_db"],
        "psnr_minmax_db": m["psnr_minmax_db"],
        "max_abs_error": m["max_abs_error"],
        "max_abs_error_hu": m["max_abs_error_hu"],
        "ssim": m["ssim"],
        "encode_ms": 1e3 * (t1 - t0),
        "decode_ms": 1e3 * (t2 - t1),
        "_decoded": decoded,
        # soft-tissue texture kept (CT: blocks in -150..250 HU with std >= 8 HU; issue 11)
        "texture": texture_retention(
            image.pixels, decoded, rescale_slope=spec.rescale_slope, rescale_intercept=spec.rescale_intercept
        )
        if image.modality == "CT"
        else None,
    }


def _window(image: DemoImage) -> tuple[float, float]:
    """Display range in stored units: the reading window (brain for a head CT), else the 1st-99th percentile."""
    spec = image.spec
    window = image.reading_window()
    if window is not None:
        lo_hu = window.center - window.width / 2
        hi_hu = window.center + window.width / 2
        lo, hi = sorted(
            (
                (lo_hu - spec.rescale_intercept) / spec.rescale_slope,
                (hi_hu - spec.rescale_intercept) / spec.rescale_slope,
            )
        )
        return lo, hi
    lo, hi = np.percentile(image.pixels, [1, 99])
    return float(lo), float(max(hi, lo + 1))


def _plots(
    images: list[DemoImage], rows: list[dict[str, Any]], out: Path, diff_quality: float
) -> tuple[list[Path], dict[str, Any]]:
    """Rate-distortion plot (one panel per bit depth: PSNR with peak 2^bits-1 is only comparable
    between images of one depth) and a difference image per image; returns the files and what
    each figure shows (panels, colour limits, whether the colour scale is clipped)."""
    from .._jitcache import matplotlib_config

    matplotlib_config()  # before matplotlib: a home it cannot write made it warn every run
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    figures: dict[str, Any] = {}
    depths = sorted({img.spec.bits_stored for img in images})
    fig, axes = plt.subplots(1, max(1, len(depths)), figsize=(4.2 * max(1, len(depths)), 4.5), dpi=110, squeeze=False)
    for ax, bits in zip(axes[0], depths):
        for image in (i for i in images if i.spec.bits_stored == bits):
            for fmt, style in (("mdc", "-o"), ("jpeg", "--s")):
                pts = sorted((r["bpp"], r["psnr_db"]) for r in rows if r["image"] == image.name and r["format"] == fmt)
                if pts:
                    ax.plot(*zip(*pts), style, label=f"{image.name} ({fmt})", ms=4)
        ax.set_title(f"{bits}-bit images (PSNR peak {(1 << bits) - 1})", fontsize=9)
        ax.set_xlabel("bits per pixel (compressed bits / pixels)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("PSNR (dB, peak 2^bits_stored - 1)")
    fig.suptitle("medcodec rate-distortion on real images, one panel per bit depth")
    fig.tight_layout()
    written.append(out / "rate_distortion.png")
    fig.savefig(written[-1])
    plt.close(fig)
    figures["rate_distortion.png"] = {"panels": [f"{b}-bit" for b in depths]}

    for image in images:
        row = next(
            (r for r in rows if r["image"] == image.name and r["format"] == "mdc" and r["quality"] == diff_quality),
            None,
        )
        if row is None:
            continue
        lo, hi = _window(image)
        window = image.reading_window()
        diff = row["_decoded"].astype(np.float64) - image.pixels
        lim = max(1.0, float(np.percentile(np.abs(diff), 99.9)))
        beyond = int(np.count_nonzero(np.abs(diff) > lim))
        # constrained layout leaves room for the two-line suptitle above the panels' own titles
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.6), dpi=100, layout="constrained")
        cmap = "gray_r" if image.spec.photometric_interpretation == "MONOCHROME1" else "gray"
        axes[0].imshow(image.pixels, cmap=cmap, vmin=lo, vmax=hi)
        where = f"window {window.name} C={window.center:g} W={window.width:g}" if window else "1-99th percentile"
        axes[0].set_title(f"original ({where})", fontsize=9)
        axes[1].imshow(row["_decoded"], cmap=cmap, vmin=lo, vmax=hi)
        axes[1].set_title(f"decoded, quality {diff_quality:g} ({row['ratio']:.1f}:1)", fontsize=9)
        im = axes[2].imshow(diff, cmap="coolwarm", vmin=-lim, vmax=lim)
        clipped = f"\ncolour scale clipped at ±{lim:.0f}: {beyond} pixel(s) beyond it" if beyond else ""
        axes[2].set_title(f"difference (stored units), max |e| = {row['max_abs_error']:.0f}{clipped}", fontsize=9)
        fig.colorbar(im, ax=axes[2], fraction=0.046, extend="both" if beyond else "neither")
        for a in axes:
            a.axis("off")
        win_psnr = f", {window.name}-window PSNR {row['psnr_window_db']:.1f} dB" if window else ""
        ssim = "n/a (image smaller than the SSIM window)" if row["ssim"] is None else f"{row['ssim']:.4f}"
        # two lines (what the image is; what was measured), each wrapped to the figure's width:
        # one line of both runs off both sides for the samples' labels
        title = [f"{image.name}: {image.label}", f"PSNR {row['psnr_db']:.1f} dB{win_psnr}, SSIM {ssim}"]
        fig.suptitle("\n".join(textwrap.fill(t, width=110) for t in title), fontsize=11)
        written.append(out / f"difference_{Path(image.name).stem}.png")
        fig.savefig(written[-1])
        plt.close(fig)
        figures[written[-1].name] = {
            "colour_limit": lim,
            "clipped": beyond > 0,
            "pixels_beyond": beyond,
            "display_window": None if window is None else window.name,
        }
    return written, figures


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
@click.option(
    "--delivery/--no-delivery",
    default=True,
    show_default=True,
    help="Then ingest the images into a store, serve it on 127.0.0.1, download the studies raw, "
    "pre-computed and compressed on the fly through a shaped link, print the times and how to open the viewer.",
)
@click.option("--store", type=click.Path(path_type=Path), help="Store folder of the delivery part, kept so that "
              "`medcodec serve --store` can show it again [default: OUTPUT/store, reused].")  # fmt: skip
@click.option("--mbit", type=click.FloatRange(min=0, min_open=True), default=100.0, show_default=True,
              help="Link speed (Mbit/s) of the delivery part's downloads.")  # fmt: skip
@jobs_option
@handle_errors
def demo(inputs: tuple[Path, ...], qualities: str, output: Path, progress: bool, delivery: bool, store: Path | None,
         mbit: float, jobs: int | None) -> None:  # fmt: skip
    """Encode real sample images at several qualities and show what it costs and what is lost;
    then deliver them: ingest, serve on 127.0.0.1, download raw and compressed, print both times.

    The first run after installing compiles the numba kernels it needs unless the install
    warmed them up (`python -m medcodec.codec.warmup`, run by `make install`; minutes on 2 cores,
    cached).
    """
    try:
        qs = [float(q) for q in qualities.split(",") if q.strip()]
    except ValueError:
        raise click.BadParameter(f"{qualities!r}: expected numbers like 30,50,75,90") from None
    check_dir_can_be_made(output)  # stops here, not after the work; made once there is something to write
    if delivery:  # so are the delivery part's options (the re-audit: checked only after the codec part)
        if not math.isfinite(mbit):
            raise click.BadParameter(f"{mbit}: a link speed in Mbit/s", param_hint="--mbit")
        # one store under the output folder, used again by the next run (a new temporary folder each
        # run left 34 MB behind every time: an outside audit on a clean machine, 2026-12-05)
        store = store if store is not None else output / "store"
        from ..delivery.store import check_store_folder, local_store_path

        local = local_store_path(str(store))  # file:///d as d (the click Path made it "file:/d")
        if local is None:
            raise click.BadParameter(f"{store}: the demo's store is a local folder", param_hint="--store")
        store = local
        check_dir_can_be_made(store)
        check_store_folder(str(store), store)  # not after the codec part
    missing: list[tuple[str, str, str]] = []
    if inputs:  # folders walked as every command walks them; ZIP members counted and said, not read
        from ..service.demo import input_files

        files, zipped = input_files(list(inputs))
        paths = [(str(p), "given on the command line") for p in files]
        if not paths:
            raise InvalidInputError(f"no files in {', '.join(map(str, inputs))}{zipped and f' ({zipped})'}")
        if zipped:
            click.echo(f"note: {zipped}", err=True)
    else:
        paths, missing = _sample_paths()
        if missing:
            names = ", ".join(f"{n} ({label})" for n, label, _ in missing)
            packages = sorted({pkg for *_, pkg in missing})
            message = (
                f"{len(missing)} of {len(SAMPLES)} sample images are missing: {names}. They come with "
                f"{' and '.join(packages)}: pip install {' '.join(packages)} (or pass --input FILE)"
            )
            if not paths:
                raise click.ClickException(message)
            click.echo(f"note: {message}; running on the {len(paths)} image(s) found", err=True)
    images, failures = _load(paths)
    jobs_list = [(img, q, fmt) for img in images for q in qs for fmt in ("mdc", "jpeg")]
    rows = []
    for img, q, fmt in progress_iter(jobs_list, progress):
        row = _encode_row(img, q, fmt, jobs)
        if row is not None:
            rows.append(row)
    if not rows:  # nothing to show: an empty table, results file and plot would look like success
        why = "; ".join(failure_message(path, exc) for path, exc in failures)
        if images:
            why = "; ".join(filter(None, [why, f"{', '.join(i.name for i in images)}: no quality could be encoded"]))
        raise InvalidInputError(f"no grayscale image could be coded: {why}")
    _print_table(images, rows)
    ensure_dir(output)
    diff_q = 75.0 if 75.0 in qs else qs[len(qs) // 2]
    written, figures = _plots(images, rows, output, diff_q)
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    meta = {
        img.name: {
            "label": img.label,
            "modality": img.modality,
            "shape": list(img.pixels.shape),
            "bits_stored": img.spec.bits_stored,
            "signed": img.spec.signed,
            "head_ct": img.head,
            "reading_window": (w := img.reading_window()) and w.name,
        }
        for img in images
    }
    results = {
        "images": meta,
        "results": clean,
        "figures": figures,
        "missing_samples": [{"file": n, "label": label, "package": pkg} for n, label, pkg in missing],
    }
    atomic_write(output / "results.json", json.dumps(results, indent=2).encode())
    click.echo(f"\nwrote {output / 'results.json'}, " + ", ".join(str(p) for p in written))
    click.echo(
        "ratio: raw = 2 bytes/pixel for 9-16-bit data, 1 for 8-bit. PSNR dB: peak 2^bits_stored - 1 "
        "(the convention; generous for 14-16-bit data that uses part of its range, so PSNRs of different bit "
        "depths are not comparable); PSNR rng: peak = max - min of the image; PSNR win: on the display scale "
        "of the reading window named above each table, peak = the window (brain for a head CT). "
        "max|e|: stored units; out: "
        "after the modality rescale. Times include loading the compiled kernels on first use (the first "
        "row), and compiling them on the first run after an install that did not warm them up."
    )
    for path, exc in failures:
        click.echo(f"skipped {path}: {exc}", err=True)
    if delivery:
        from ..service.demo import main as delivery_demo

        click.echo("\ndelivery: ingest, serve on 127.0.0.1, download raw and compressed")
        argv = ["--mbit", str(mbit)] + (["--store", str(store)] if store else [])
        # the given images; without them the delivery demo's own pydicom-data samples (more modalities),
        # or, when pydicom-data is missing, the images found above
        argv += [a for path, _ in paths for a in ("--input", path)] if inputs or missing else []
        try:
            code = delivery_demo(argv)
        except SystemExit as exc:  # the delivery demo's own one-line errors (argparse's say themselves)
            raise click.ClickException(f"delivery demo: {exc.code}" if isinstance(exc.code, str) else
                                       "delivery demo: stopped (see above)") from None  # fmt: skip
        if code:
            raise click.exceptions.Exit(code)


def progress_iter(items: list[Any], enabled: bool) -> Any:
    return progress(items, total=len(items), desc="encoding", enabled=enabled)


def _print_table(images: list[DemoImage], rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'':4s} {'fmt':4s} {'q':>4s} {'bytes':>9s} {'ratio':>8s} {'bpp':>6s} {'PSNR dB':>8s} {'PSNR rng':>8s} "
        f"{'PSNR win':>8s} {'max|e|':>7s} {'max|e| out':>10s} {'SSIM':>7s} {'enc ms':>7s} {'dec ms':>7s} "
        f"{'flat %':>6s} {'texture':>7s}"
    )
    for image in images:
        s = image.spec
        unit = "HU" if image.modality == "CT" else "rescaled units"
        w = image.reading_window()
        win = f"PSNR win in the {w.name} window C={w.center:g} W={w.width:g}" if w else "no reading window"
        click.echo(
            f"\n{image.name}: {image.label}; {image.modality} {image.pixels.shape[0]}x{image.pixels.shape[1]}, "
            f"{s.bits_stored}-bit {'signed' if s.signed else 'unsigned'}; max|e| out in {unit}; {win}"
        )
        click.echo(header)
        for r in (r for r in rows if r["image"] == image.name):
            click.echo(
                f"{'':4s} {r['format']:4s} {r['quality']:4.0f} {r['bytes']:9d} {r['ratio']:6.1f}:1 {r['bpp']:6.3f} "
                f"{r['psnr_db']:8.2f} {_cell(r['psnr_minmax_db'], '8.2f')} {_cell(r['psnr_window_db'], '8.2f')} "
                f"{r['max_abs_error']:7.0f} {r['max_abs_error_hu']:10.1f} {_cell(r['ssim'], '7.4f')} "
                f"{r['encode_ms']:7.1f} {r['decode_ms']:7.1f} {_texture_cells(r.get('texture'))}"
            )
    click.echo(
        "\nflat %: share of soft-tissue 8x8 blocks (CT, -150..250 HU, std >= 8 HU) decoded flat (std below 35 % "
        "of the original's); texture: their median std(decoded) / std(original). '-': not CT or no such block. "
        f"SSIM '-': image smaller than the {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} SSIM window (not defined)."
    )


def _cell(value: float | None, spec: str) -> str:
    """A number in a table column, '-' (right-aligned to the same width) when not available."""
    return format(value, spec) if value is not None else f"{'-':>{spec.split('.')[0]}s}"


def _texture_cells(t: dict[str, Any] | None) -> str:
    if not t or not t.get("blocks"):
        return f"{'-':>6s} {'-':>7s}"
    return f"{t['flattened_fraction'] * 100:6.2f} {t['median_retention']:7.3f}"
