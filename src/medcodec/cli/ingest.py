"""``medcodec ingest``: DICOM files / folders / ZIPs / DICOMDIRs into a delivery store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ._common import EXIT_ERROR, EXIT_PARTIAL, handle_errors


@click.command()
@click.argument("inputs", nargs=-1, required=False, type=click.Path(path_type=Path))
@click.option(
    "--store",
    "store_url",
    required=True,
    help="Store: a local folder (created) or an fsspec URL such as s3://bucket/prefix (needs s3fs and --catalog).",
)
@click.option("--catalog", default=None, help="SQLAlchemy URL of the catalog [default: sqlite inside a local STORE].")
@click.option(
    "--precompress/--no-precompress",
    default=True,
    show_default=True,
    help="Pre-compute the presets (renditions + ZIP archives) of the studies that received new "
    "instances before returning.",
)
@click.option(
    "--presets",
    default=None,
    help="Comma-separated presets to pre-compute [default: diagnostic,preview]; also original, lossless.",
)
@click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler for pre-computation: tcp://host:8786, 'threads' (in-process LocalCluster, "
    "default) or 'processes'.",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr.")
@click.option(
    "--refresh",
    is_flag=True,
    help="Also pre-compute every study whose archives are missing or stale (e.g. after STOW or "
    "C-STORE added instances); with no INPUTS, only that. Colour images a store made before "
    "2026-12-01 passed through are recoded when their study is pre-computed again (an ingest into "
    "it), not by --refresh alone.",
)
@click.option("-v", "--verbose", is_flag=True, help="List every file's outcome.")
@handle_errors
def ingest(
    inputs: tuple[Path, ...],
    store_url: str,
    catalog: str | None,
    precompress: bool,
    presets: str | None,
    scheduler: str | None,
    progress: bool,
    verbose: bool,
    refresh: bool = False,
) -> None:
    """Store DICOM INPUTS (files, folders, ZIPs, DICOMDIR) byte for byte in STORE and catalog them.

    \b
    Every object is kept (images, colour ultrasound, SR, dose reports...). Re-ingesting a
    file is a no-op; a different file with a SOP Instance UID already stored is reported as
    a conflict and never overwritten; files that are not DICOM, or whose UIDs are invalid,
    are reported and not stored. Exit code 1 when anything was reported, 2 on a fatal error
    (e.g. store full: what was ingested before stays).
    """
    from ..delivery import open_store
    from ..delivery.presets import get_preset, is_colour_record
    from ..registry import pixel_data_compressed

    names = None
    if presets:
        names = [p.strip() for p in presets.split(",") if p.strip()]
        for name in names:
            get_preset(name)
    bars: dict[str, Any] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if not progress:
            return
        from tqdm import tqdm

        bar = bars.get(stage)
        if bar is None:
            unit = {"ingest": "file", "precompute": "file", "archive": "zip"}.get(stage, "item")
            bar = bars[stage] = tqdm(
                total=total or None, desc=stage, unit=unit, file=sys.stderr, leave=False, disable=None
            )
        bar.total = total or None
        bar.n = done
        bar.refresh()

    if not inputs and not refresh:
        raise click.UsageError("give INPUTS to ingest, or --refresh")
    refreshed: list[str] = []
    with open_store(store_url, catalog=catalog) as store:
        try:
            report = store.ingest(
                list(inputs), precompress=precompress, presets=names, scheduler=scheduler, progress=on_progress
            )
            if refresh and not report.stopped:
                refreshed = store.refresh(presets=names, scheduler=scheduler, progress=on_progress)
            stored = [o.record for o in report.stored if o.record is not None]
            lossy = store.catalog.lossy_instances([r.sop_uid for r in stored])
        finally:
            for bar in bars.values():
                bar.close()
    if refresh:
        click.echo(f"refreshed {len(refreshed)} archive(s)")
    for outcome in report.outcomes:
        if outcome.status in ("conflict", "rejected", "skipped"):
            click.echo(f"{outcome.status}: {outcome.message or outcome.source}", err=True)
        elif outcome.message.startswith("warning:"):  # stored, with something to check (another patient)
            click.echo(outcome.message, err=True)
        elif verbose:
            click.echo(f"{outcome.status}: {outcome.source}")
    # stored lossy-compressed already: lossless and diagnostic pass them through (no second generation)
    already = {
        r.sop_uid for r in stored if r.sop_uid in lossy and r.rows and pixel_data_compressed(r.transfer_syntax_uid)
    }
    uncoded = [r for r in stored if not r.compressible and r.sop_uid not in already]
    colour = sum(1 for r in uncoded if is_colour_record(r))  # baseline JPEG in the lossy presets
    passthrough = len(uncoded) - colour
    click.echo(
        report.summary()
        + (f"; {colour} colour (coded by the lossy presets, kept as stored by lossless)" if colour else "")
        + (f"; {passthrough} stored as passthrough (no preset codes them)" if passthrough else "")
        + (
            f"; {len(already)} stored lossy-compressed already (lossless and diagnostic deliver them as they are)"
            if already
            else ""
        )
    )
    if report.stopped:
        click.echo(f"error: {report.stopped}", err=True)
        sys.exit(EXIT_ERROR)
    if not report.ok:
        sys.exit(EXIT_PARTIAL)
