"""``medcodec encode``: DICOM files / folders / ZIPs -> one ``.mdc`` per series."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .. import codec
from ..dicom import read_series
from ..dicom.embed import SEGMENT, pack_headers
from ..fileio import atomic_write, check_output_path
from ._common import EXIT_PARTIAL, ensure_dir, handle_errors, human_bytes, jobs_option, report_failures, safe_name


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Output .mdc file (one series) or folder (one .mdc per series).")
@click.option("-q", "--quality", type=click.FloatRange(1, 100), default=None,
              help="Quality 1-100 [default: 75]. Every 12.5 points halve the quantization steps.")
@click.option("--ratio", type=click.FloatRange(min=1), default=None, help="Target compression ratio instead of quality.")
@click.option("--psnr", type=click.FloatRange(min=1), default=None,
              help="Target PSNR in dB (peak 2^bits_stored - 1) instead of quality.")
@click.option("--table", type=click.Choice(["medical", "flat", "annex-k"]), default="medical", show_default=True,
              help="Quantization table shape.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files (inputs are never overwritten).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
@jobs_option
@handle_errors
def encode(inputs: tuple[Path, ...], output: Path, quality: float | None, ratio: float | None, psnr: float | None,
           table: str, overwrite: bool, progress: bool, jobs: int | None) -> None:
    """Compress DICOM INPUTS (files, folders, ZIPs, DICOMDIR) to .mdc, one file per series.

    Every source header travels inside the .mdc (segment 'dcmh'), so `medcodec decode
    --to dicom` can rebuild complete DICOM files from the .mdc alone. Bad inputs are
    reported at the end and the exit code is 1; the good ones are still written.
    """
    found = read_series(list(inputs), progress=progress)
    if not found.series:
        report_failures(found.failures)
        raise click.ClickException("no readable DICOM images in the inputs")
    single_file = output.suffix.lower() == ".mdc"
    if single_file and len(found.series) > 1:
        raise click.UsageError(f"{len(found.series)} series found: give a folder as --output, not a .mdc file")
    if not single_file:
        ensure_dir(output)
    failures = list(found.failures)
    source_paths = [img.path for s in found.series for img in s.images if "::" not in img.path]
    used: set[str] = set()
    for series in found.series:
        name = safe_name(f"{series.modality}_{series.description}", "series")
        tail = (series.series_instance_uid or "nouid")[-8:]
        stem = f"{name}_{safe_name(tail, 'x')}"
        while stem in used:
            stem += "_"
        used.add(stem)
        target = output if single_file else output / f"{stem}.mdc"
        try:
            check_output_path(target, inputs=source_paths, overwrite=overwrite)
            t0 = time.perf_counter()
            pixels = series.pixels()
            headers = pack_headers([(img.shape[0], img.dataset) for img in series.images])
            data = codec.encode(
                pixels, bits_stored=series.spec.bits_stored, signed=series.spec.signed, quality=quality,
                ratio=ratio, psnr=psnr, spec=series.spec, table=table, jobs=jobs, ancillary={SEGMENT: headers},
            )  # fmt: skip
            atomic_write(target, data)
            dt = time.perf_counter() - t0
        except Exception as exc:  # one series failing must not stop the batch
            from ..errors import CodecError

            if not isinstance(exc, (CodecError, OSError)):
                raise
            failures.append((str(target), exc))
            continue
        raw = pixels.size * (1 if series.spec.bits_stored <= 8 else 2)
        click.echo(
            f"{target}: {pixels.shape[0]} frame(s) {pixels.shape[1]}x{pixels.shape[2]} "
            f"{series.spec.bits_stored}-bit, {human_bytes(raw)} -> {human_bytes(len(data))} "
            f"({raw / len(data):.1f}:1) in {dt:.2f} s"
        )
    report_failures(failures)
    if failures:
        raise SystemExit(EXIT_PARTIAL)
