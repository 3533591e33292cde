"""``medcodec encode``: DICOM files / folders / ZIPs -> one ``.mdc`` per series, or lossy DICOM series."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import click

from ..codec.quantize import MDC_DEFAULT_TABLE
from ..dicom import Series, SeriesSet, read_series
from ..dicom.series_mdc import encode_series_to_mdc
from ..errors import InvalidInputError, failure_message
from ..fileio import check_output_path, safe_name
from ..metrics import compression_ratio, raw_size
from ..ratecontrol import RateTarget
from ._common import (
    EXIT_PARTIAL,
    ensure_dir,
    handle_errors,
    human_bytes,
    jobs_option,
    progress_bar,
    report_failures,
)

#: ``--to`` choices: the .mdc container, or lossy DICOM under a standard transfer syntax.
TARGETS = ("mdc", "dicom-jpeg", "dicom-j2k", "dicom-htj2k", "dicom-jpegls")


def _rate_target(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """``--quality`` / ``--ratio`` / ``--psnr`` checked when parsed, by the library's own rule
    (:class:`~medcodec.ratecontrol.RateTarget`): NaN or infinity is a usage error before any
    input is read, not a failure of every series after they all were."""
    if value is not None:
        try:
            target: dict[str, Any] = {str(param.name): value}
            RateTarget(**target)
        except InvalidInputError as exc:
            raise click.BadParameter(str(exc).replace(f"{param.name}=", "")) from None
    return value


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Output .mdc file (one series) or folder (one .mdc per series; one subfolder of DICOM "
    "files per series with --to dicom-*; not an input folder itself, a folder inside one is left "
    "out of its walk).",
)
@click.option(
    "--to",
    "to",
    type=click.Choice(TARGETS),
    default="mdc",
    show_default=True,
    help="mdc: medcodec container. dicom-jpeg (12-bit JPEG .51 / 8-bit .50), dicom-j2k (.91), "
    "dicom-htj2k (.203), dicom-jpegls (near-lossless .81): lossy DICOM, one file per image, "
    "one value mapping per series (HU kept; padding below -1024 HU clipped if 12 bits need it).",
)
@click.option(
    "-q",
    "--quality",
    type=click.FloatRange(1, 100),
    default=None,
    callback=_rate_target,
    help="Quality 1-100 [default: 75]. Every 12.5 points halve the quantization steps; "
    "from 95 to 100 they fall to a DC step of 1.",
)
@click.option(
    "--ratio",
    type=click.FloatRange(min=1),
    default=None,
    callback=_rate_target,
    help="Target compression ratio instead of quality (raw: 2 bytes a sample past 8 bits).",
)
@click.option(
    "--psnr",
    type=click.FloatRange(0, 200, min_open=True, max_open=True),
    default=None,
    callback=_rate_target,
    help="Target PSNR in dB (peak 2^bits_stored - 1) instead of quality, of the whole series as decoded.",
)
@click.option(
    "--max-error",
    "max_error",
    type=click.IntRange(0, 255),
    default=None,
    help=".mdc only: guaranteed max |error| per sample in stored units, checked by decoding while "
    "encoding; 0 = lossless (bit-exact). Uses the predictive mode (format 2.10, compact) instead of "
    "--quality/--ratio/--psnr.",
)
@click.option(
    "--entropy",
    type=click.Choice(["huffman", "arith", "arith-binary", "arith-multi"]),
    default=None,
    help=".mdc DCT streams: arith (default: format 2.11, the compact layout, with intra frames, or 2.4 "
    "with --no-intra, and padding masks where the series declares padding; context-adaptive range "
    "coding with decoder-side filters), arith-multi (the same), arith-binary (format 2.0, the binary "
    "coder) or huffman (format 1.0; on 512x512 chest CT, one thread: ~35x faster to encode and "
    "~6x to decode than the default, ~30% larger at q50, ~13% at q80).",
)
@click.option(
    "--effort",
    type=click.Choice(["fast", "best"]),
    default=None,
    help=".mdc: fast (default) or best. With intra prediction (the default coder) best tries more "
    "modes per block (~0.5 % smaller, ~2x slower); with --no-intra it chooses the levels by a "
    "rate-distortion search priced with the range coder (2-3 % smaller, ~2x slower); with "
    "--entropy huffman by trellis (no worst-case bound). `medcodec info` prints every stream's bound.",
)
@click.option(
    "--intra/--no-intra",
    default=None,
    help=".mdc: intra prediction, 8x8 and 16x16 blocks with a per-block transform choice (format 2.6; "
    "default on with the default coder): on 512x512 chest CT at q50, one thread, ~13 % smaller than "
    "without, at ~10x the encode and ~2x the decode time.",
)
@click.option(
    "--table",
    type=click.Choice(["near-flat", "medical", "flat", "annex-k"]),
    default=MDC_DEFAULT_TABLE,
    show_default=True,
    help="Quantization table shape: near-flat 1 + 0.03 (u + v) (the default since 2026-12-04, ~1 % smaller "
    "than medical at the same PSNR), medical 1 + 0.09 (u + v), flat, or JPEG's Annex K table.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output files (inputs are never overwritten).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
@jobs_option
@handle_errors
def encode(
    inputs: tuple[Path, ...],
    output: Path,
    quality: float | None,
    ratio: float | None,
    psnr: float | None,
    table: str,
    overwrite: bool,
    progress: bool,
    jobs: int | None,
    to: str = "mdc",
    effort: str | None = None,
    max_error: int | None = None,
    entropy: str | None = None,
    intra: bool | None = None,
) -> None:
    """Compress DICOM INPUTS (files, folders, ZIPs, DICOMDIR) to .mdc, one file per series,
    or (--to dicom-*) to lossy DICOM, one file per image, one folder per series.

    Every source header travels inside the .mdc (segment 'dcmh'), so `medcodec decode
    --to dicom` can rebuild complete DICOM files from the .mdc alone. Lossy DICOM output
    prints ratio, PSNR, max error (HU for CT) and clipped voxels per file. Bad inputs are
    reported at the end and the exit code is 1; the good ones are still written. An output
    that exists already (without --overwrite) or is an input stops before any coding: one
    'error:' line, exit 2.
    """
    given = [f"--{n}" for n, v in (("quality", quality), ("ratio", ratio), ("psnr", psnr)) if v is not None]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} exclude each other: give one of --quality, --ratio, --psnr")
    _check_output_kind(inputs, output, to)
    with progress_bar("reading DICOM", unit="file", enabled=progress) as callback:
        # a --to dicom-* output folder inside an input folder is not read back as input on a rerun
        found = read_series(list(inputs), progress=callback, exclude=[output] if to != "mdc" else [])
    if not found.series:
        if len(found.failures) == 1:  # one line says it all
            raise click.ClickException(f"no readable DICOM images: {failure_message(*found.failures[0])}")
        report_failures(found.failures)
        raise click.ClickException("no readable DICOM images in the inputs")
    if max_error is not None and (to != "mdc" or (quality, ratio, psnr, effort, entropy) != (None,) * 5):
        raise click.UsageError(
            "--max-error applies to --to mdc and excludes --quality, --ratio, --psnr, --effort, --entropy"
        )
    if entropy is not None and to != "mdc":
        raise click.UsageError("--entropy applies to --to mdc only")
    if intra is not None and (to != "mdc" or max_error is not None):
        raise click.UsageError("--intra/--no-intra apply to --to mdc DCT streams (not --max-error)")
    if to != "mdc":
        _encode_dicom(found, output, syntax=to, quality=quality, ratio=ratio, psnr=psnr, overwrite=overwrite,
                      progress=progress, jobs=jobs)  # fmt: skip
        return
    single_file = output.suffix.lower() == ".mdc"
    if single_file and len(found.series) > 1:
        raise click.UsageError(f"{len(found.series)} series found: give a folder as --output, not a .mdc file")
    failures = list(found.failures)
    source_paths = found.source_files
    used: set[str] = set()
    targets = [output if single_file else output / f"{_series_stem(series, used)}.mdc" for series in found.series]
    for target in targets:  # all checked before any is coded: an output that exists stops it here, exit 2
        check_output_path(target, inputs=source_paths, overwrite=overwrite)
    if not single_file:
        ensure_dir(output)
    for series, target in zip(found.series, targets):
        try:
            t0 = time.perf_counter()
            with progress_bar(target.name, unit="frame", enabled=progress) as callback:
                summary = encode_series_to_mdc(
                    series, target, quality=quality, ratio=ratio, psnr=psnr, table=table, jobs=jobs, effort=effort,
                    max_error=max_error, entropy=entropy, inputs=source_paths, overwrite=overwrite, progress=callback,
                    intra=intra,
                )  # fmt: skip
            dt = time.perf_counter() - t0
        except Exception as exc:  # one series failing must not stop the batch
            from ..errors import CodecError, OutputError

            if isinstance(exc, OutputError) or not isinstance(exc, (CodecError, OSError)):
                raise  # an unwritable output stops the batch: it is not an input's fault
            failures.append((str(target), exc))
            continue
        frames, rows, cols = series.shape
        exact = max_error is None and math.isnan(summary.quality)  # a rate target given the lossless stream
        ratio_ = compression_ratio(summary.pixel_bytes, frames * rows * cols, series.spec.bits_stored)
        click.echo(
            f"{target}: {frames} frame(s) {rows}x{cols} {series.spec.bits_stored}-bit, "
            f"{human_bytes(raw_size(frames * rows * cols, series.spec.bits_stored))} -> "
            f"{human_bytes(summary.pixel_bytes)} pixel data ({ratio_:.1f}:1) "
            f"+ {human_bytes(summary.overhead_bytes)} DICOM headers/metadata in {dt:.2f} s"
            + (" (lossless, bit-exact: it met the target in no more bytes)" if exact else "")
        )
    report_failures(failures)
    if failures:
        raise SystemExit(EXIT_PARTIAL)


def _check_output_kind(inputs: tuple[Path, ...], output: Path, to: str) -> None:
    """``--output`` is a folder, or a ``.mdc`` file with ``--to mdc``: anything else is a usage
    error before any input is read (a file given as a folder said as such, not as "not a directory")."""
    if to != "mdc" and output.suffix.lower() in (".mdc", ".dcm"):
        raise click.UsageError(f"--to {to} writes a series of files: give a folder as --output, not {output.name}")
    is_input = output.exists() and any(p.exists() and os.path.samefile(p, output) for p in inputs)
    if to != "mdc" and is_input and output.is_dir():  # its series folders would be the next run's input
        raise click.UsageError(
            f"--output {output} is also one of the inputs: leave it out of the inputs (a shell glob such as "
            f"IN/* takes it in), or give another folder (one inside the input folder will do)"
        )
    if not output.exists() or output.is_dir() or (to == "mdc" and output.suffix.lower() == ".mdc"):
        return
    what = "one of the inputs" if is_input else "an existing file"
    expected = "a .mdc file (one series) or a folder (one .mdc per series)" if to == "mdc" else "a folder"
    raise click.UsageError(f"--output {output} is {what}, not a folder: give {expected}")


def _series_stem(series: Series, used: set[str]) -> str:
    """``<modality>_<description>_<uid tail>``, unique among ``used`` (which it extends)."""
    name = safe_name(f"{series.modality}_{series.description}", "series")
    tail = (series.series_instance_uid or "nouid")[-8:]
    stem = f"{name}_{safe_name(tail, 'x')}"
    while stem in used:
        stem += "_"
    used.add(stem)
    return stem


def _encode_dicom(
    found: SeriesSet,
    output: Path,
    *,
    syntax: str,
    quality: float | None,
    ratio: float | None,
    psnr: float | None,
    overwrite: bool,
    progress: bool,
    jobs: int | None,
) -> None:
    """``--to dicom-*``: each series into ``output/<series>/``, a table per file and a line per series."""
    from ..dicom.lossy import encode_series_to_dicom, get_syntax
    from ..errors import CodecError, OutputError

    t0 = time.perf_counter()
    get_syntax(syntax).check_available()  # a self-test: compiles the kernels on a first run after an install
    if (waited := time.perf_counter() - t0) > 3:  # the series lines below time the coding only: say where it went
        click.echo(f"note: compiling the coder's kernels on first use took {waited:.0f} s "
                   "(cached: later runs start at once)", err=True)  # fmt: skip
    ensure_dir(output)
    failures = list(found.failures)
    source_paths = found.source_files
    used: set[str] = set()
    for series in found.series:
        folder = output / _series_stem(series, used)
        t0 = time.perf_counter()
        try:
            with progress_bar(f"dicom-{syntax}", unit="file", enabled=progress) as callback:
                results = encode_series_to_dicom(
                    series, folder, syntax=syntax, quality=quality, ratio=ratio, psnr=psnr, inputs=source_paths,
                    overwrite=overwrite, progress=callback, jobs=jobs, failures=failures,
                )  # fmt: skip
        except (CodecError, OSError) as exc:  # one series failing must not stop the batch
            if isinstance(exc, OutputError):
                raise  # ... but an unwritable output does
            failures.append((str(folder), exc))
            continue
        dt = time.perf_counter() - t0
        units = "HU" if series.spec.rescale_type.upper() == "HU" else "units"
        width = max([12, *(len(r.path.name) for r in results)])
        click.echo(f"{folder}/")
        click.echo(f"  {'file':<{width}} {'ratio':>8} {'PSNR dB':>8} {'max err':>8} {'max ' + units:>9} {'clipped':>8}")
        for r in results:
            click.echo(
                f"  {r.path.name:<{width}} {r.ratio:>6.2f}:1 {r.psnr:>8.2f} {r.max_error:>8d} {r.max_error_hu:>9.4g} "
                f"{r.n_clipped:>8d}"
            )
        if not results:
            continue
        raw = sum(r.nbytes * r.ratio for r in results)
        nbytes = sum(r.nbytes for r in results)
        click.echo(
            f"  series: {len(results)} file(s), {human_bytes(raw)} -> {human_bytes(nbytes)} ({raw / nbytes:.2f}:1), "
            f"PSNR min {min(r.psnr for r in results):.2f} dB (peak 2^{series.spec.bits_stored}-1), "
            f"max error {max(r.max_error_hu for r in results):.4g} {units}, "
            f"{sum(r.n_clipped for r in results)} voxel(s) clipped, in {dt:.1f} s"
        )
        click.echo(f"  mapping (one for the series): {results[0].mapping.describe()}")
    report_failures(failures)
    if failures:
        raise SystemExit(EXIT_PARTIAL)
