"""``medcodec fetch``: download a study archive from ``medcodec serve``, resuming and verifying."""

from __future__ import annotations

import os
import sys
import time
import zipfile
from pathlib import Path

import click

from ._common import handle_errors, human_bytes, progress_bar


@click.command()
@click.argument("url")
@click.option("--study", required=True, help="Study Instance UID.")
@click.option("--series", default=None, help="Only this Series Instance UID.")
@click.option(
    "--preset",
    default="diagnostic",
    show_default=True,
    help="original | lossless | near-lossless | diagnostic | preview.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the .zip.",
)
@click.option("--live", is_flag=True, help="Ask for on-the-fly compression even if pre-computed.")
@click.option("--extract", is_flag=True, help="Also unpack the archive next to it (into a new folder).")
@click.option("--overwrite", is_flag=True, help="Replace the .zip (and, with --extract, its folder) when it exists.")
@click.option("--token", default=None, help="Bearer token [default: $MEDCODEC_TOKEN].")
@click.option(
    "--retries",
    default=3,
    show_default=True,
    type=click.IntRange(min=0),
    help="Network failures in a row without progress before giving up; each try resumes.",
)
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds without a byte (connecting, or between two reads) before a try counts as a network failure.",
)
@click.option(
    "--ca-cert",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="PEM certificate authority (or self-signed certificate) of an https server.",
)
@handle_errors
def fetch(
    url: str,
    study: str,
    series: str | None,
    preset: str,
    out_dir: Path,
    live: bool,
    extract: bool,
    overwrite: bool,
    token: str | None,
    retries: int,
    timeout: float,
    ca_cert: str | None,
) -> None:
    """Download the archive of a study (or series) from URL; an interrupted download resumes.

    \b
    Verified: length, sha256 against the ETag (pre-computed archives), every CRC-32, manifest.json
    listing every file and no name outside the folder. A failed check downloads the archive once
    more from the first byte (with --retries >= 1); failing again keeps nothing.
    Example: medcodec fetch http://127.0.0.1:8044 --study 1.2.3 --preset diagnostic -o downloads/
    """
    from tqdm import tqdm

    from ..service.client import fetch as do_fetch

    t0 = time.perf_counter()
    with progress_bar(preset, unit="B") as progress:
        path = do_fetch(
            url,
            study=study,
            series=series,
            preset=preset,
            out_dir=out_dir,
            live=live,
            token=token or os.environ.get("MEDCODEC_TOKEN"),
            retries=retries,
            timeout=timeout,
            progress=progress,
            notice=lambda line: tqdm.write(f"warning: {line}", file=sys.stderr),
            extract=extract,
            ca_cert=ca_cert,
            overwrite=overwrite,
        )
    seconds = time.perf_counter() - t0
    with zipfile.ZipFile(path) as zf:  # verified by fetch already (length, sha256, CRCs, manifest)
        files = len(zf.namelist()) - 1
    size = human_bytes(path.stat().st_size)
    click.echo(f"{path}: {files} file{'s' if files != 1 else ''}, {size} in {seconds:.2f} s, verified")
