"""``medcodec ingest``: DICOM files / folders / ZIPs / DICOMDIRs into a delivery store."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..errors import DeliveryError
from ._common import EXIT_ERROR, EXIT_PARTIAL, ProgressLines, handle_errors, log_warnings, stderr_is_terminal


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
    help="Comma-separated presets to pre-compute [default: diagnostic,preview]; also original, lossless, "
    "near-lossless.",
)
@click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler for pre-computation: tcp://host:8786 (or host:8786), 'threads' (in-process "
    "LocalCluster, default) or 'processes'. A remote scheduler is connected to before any file is "
    "stored (10 s at most); its workers must reach STORE (and its FSSPEC_S3_* settings).",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr.")
@click.option(
    "--refresh",
    is_flag=True,
    help="Also pre-compute every study whose archives are missing or stale (e.g. after STOW or "
    "C-STORE added instances, or colour images a store made before 2026-12-02 passed through a "
    "preset that codes them now); with no INPUTS, only that.",
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
    are reported and not stored; ZIPs inside ZIPs are read. Files left out (not DICOM, hidden) are
    listed. Exit code 1 when a file conflicted or was rejected, or when nothing in the inputs was
    DICOM; 2 on a fatal error
    (e.g. store full, Dask scheduler lost, storage unreachable: what was ingested before stays,
    and the summary says it; run the same ingest again to finish).
    """
    from ..delivery import open_store
    from ..delivery.precompute import check_scheduler, connect_scheduler
    from ..delivery.presets import get_preset

    names = None
    if presets:
        names = [p.strip() for p in presets.split(",") if p.strip()]
        for name in names:
            get_preset(name)
    bars: dict[str, Any] = {}

    ingested = [0, 0]  # files done, of

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage == "ingest":
            ingested[:] = [done, total]
        if not progress:
            return
        unit = {"ingest": "file", "precompute": "file", "archive": "zip"}.get(stage, "item")
        if not stderr_is_terminal():  # a log: a line now and then (tqdm drew nothing there)
            bars.setdefault(stage, ProgressLines(stage, unit)).update(done, total or None)
            return
        from tqdm import tqdm

        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():  # one stage's bar at a time (replaced, not nested)
                other.close()
            bars.clear()
            bar = bars[stage] = tqdm(
                total=total or None, desc=stage, unit=unit, file=sys.stderr, leave=False, disable=None
            )
        bar.total = total or None
        bar.n = done
        bar.refresh()

    if not inputs and not refresh:
        raise click.UsageError("give INPUTS to ingest, or --refresh")
    address = check_scheduler(scheduler)  # a bad address is said before anything is stored
    refreshed: list[str] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(log_warnings("medcodec.delivery.precompute"))
        stack.enter_context(_outcome_warnings_not_logged())
        client = None
        if address is not None and (precompress or refresh):  # reachable, before any file is stored
            client = stack.enter_context(connect_scheduler(address))
        store = stack.enter_context(open_store(store_url, catalog=catalog))
        try:
            try:
                report = store.ingest(list(inputs), precompress=precompress, presets=names, scheduler=scheduler,
                                      client=client, progress=on_progress)  # fmt: skip
            except Exception:
                if ingested[0]:
                    click.echo(
                        f"{ingested[0]} of {ingested[1]} file(s) ingested before the error: what was stored "
                        "is kept (run the same ingest again to finish)",
                        err=True,
                    )
                raise
            if refresh and not report.stopped:
                try:
                    refreshed = store.refresh(presets=names, scheduler=scheduler, client=client, progress=on_progress)
                except DeliveryError as exc:  # (StoreFullError too) what was stored is kept: the summary says it
                    report.stopped = f"{exc}; not every archive is built: run again"
            stored = [o.record for o in report.stored if o.record is not None]
            lossy = store.catalog.lossy_instances([r.sop_uid for r in stored])
        finally:
            for bar in bars.values():
                bar.close()
    if refresh:
        click.echo(f"refreshed {len(refreshed)} archive(s)")
    _summary(report, stored, lossy, verbose=verbose)
    if report.stopped:
        click.echo(f"error: {report.stopped}", err=True)
        sys.exit(EXIT_ERROR)
    if not report.ok:
        sys.exit(EXIT_PARTIAL)


def _summary(report: Any, stored: list[Any], lossy: set[str], *, verbose: bool = False) -> None:
    """Each reported file (stderr), then the one summary line (stdout): also when a pre-computation
    failed, so that nothing stored is left unsaid."""
    from ..delivery.presets import is_colour_record
    from ..registry import pixel_data_compressed

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
    colour = sum(1 for r in uncoded if is_colour_record(r))  # coded by their own path in every coding preset
    passthrough = len(uncoded) - colour
    click.echo(
        report.summary()
        + (f"; {colour} colour (JPEG under diagnostic and preview, HTJ2K lossless under lossless)" if colour else "")
        + (f"; {passthrough} stored as passthrough (no preset codes them)" if passthrough else "")
        + (
            f"; {len(already)} stored lossy-compressed already (lossless and diagnostic deliver them as they are)"
            if already
            else ""
        )
    )


@contextlib.contextmanager
def _outcome_warnings_not_logged() -> Iterator[None]:
    """The ``warning:`` lines ingest logs for the server (another patient, a character set) are
    each an outcome's message too, which :func:`_summary` prints: logged as well (Python's last-resort
    handler), every one came twice (an outside audit, 2026-12-03). Other log lines pass."""

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("warning:")

    logger = logging.getLogger("medcodec.delivery.ingest")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
