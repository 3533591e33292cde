"""``medcodec store``: look after a delivery store (check it, delete from it, collect its garbage)."""

from __future__ import annotations

import sys

import click

from ..errors import InvalidInputError
from ._common import EXIT_PARTIAL, handle_errors, progress_bar

_STORE = click.option("--store", "store_url", required=True, help="The store (folder or fsspec URL) to work on.")
_CATALOG = click.option("--catalog", default=None, help="SQLAlchemy URL of the catalog [default: sqlite inside STORE].")


@click.group()
def store() -> None:
    """Look after a delivery store made by `medcodec ingest`.

    \b
    Examples:
      medcodec store list --store store/                   # its studies, sizes, archives
      medcodec store check --store store/                  # every object there, sizes and sha256
      medcodec store delete --store store/ --study 1.2.3   # a study (or --series / --instance)
      medcodec store gc --store store/                     # objects left by interrupted writes
      medcodec store reindex --store store/                # headers as this version keeps them
      medcodec store backup --store store/ /backup/store   # a consistent copy, while it runs
    """


@store.command(name="list")
@_STORE
@_CATALOG
@click.option("--json", "as_json", is_flag=True, help="One JSON object per study instead of the table.")
@handle_errors
def list_studies(store_url: str, catalog: str | None, as_json: bool) -> None:
    """List the studies of a store: date, patient, modalities, series and instances, the size of
    the originals and of each pre-computed study archive with its ratio (`-` not computed yet, or
    made under other coding rules than this medcodec's: served live until `medcodec ingest
    --refresh`; `--json` lists those under "outdated_archives")."""
    import json

    from ..delivery import open_store
    from ..delivery.manifest import CODING_REVISION
    from ..delivery.presets import PRESETS

    with open_store(store_url, catalog=catalog, create=False, use_reserve=True) as opened:
        rows = opened.catalog.study_summaries()
        outdated = set(opened.catalog.outdated_archives(CODING_REVISION, dropped_too=False))
    for row in rows:  # an archive of other coding rules is served live: not shown as pre-computed (an audit,
        # 2026-12-05: after an upgrade every study listed sizes and ratios of archives the server did not serve)
        old = {name: size for name, size in row["archives"].items() if (row["study_uid"], name) in outdated}
        row["archives"] = {name: size for name, size in row["archives"].items() if name not in old}
        if old:
            row["outdated_archives"] = old
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    names = [name for name in PRESETS if any(name in row["archives"] or name in row.get("outdated_archives", ())
                                             for row in rows)] or ["diagnostic"]  # fmt: skip
    head = f"{'study date':10}  {'patient':24}  {'modality':8}  {'series':>6}  {'files':>6}  {'originals':>10}"
    click.echo(head + "".join(f"  {name:>16}" for name in names) + "  study UID")
    for row in rows:
        date = row["study_date"]
        date = f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 and date.isdigit() else date or "-"
        patient = f"{row['patient_id']} {row['patient_name']}".strip()[:24] or "-"
        line = (
            f"{date:10}  {patient:24}  {','.join(row['modalities'])[:8]:8}  {row['series']:>6}  "
            f"{row['instances']:>6}  {_mb(row['bytes']):>10}"
        )
        for name in names:
            size = row["archives"].get(name)
            cell = "-" if size is None else f"{_mb(size)} {row['bytes'] / max(size, 1):.1f}:1"
            line += f"  {cell:>16}"
        click.echo(f"{line}  {row['study_uid']}")
    click.echo(f"{len(rows)} study(ies), {_mb(sum(r['bytes'] for r in rows))} of originals")
    stale = sum(1 for row in rows if "outdated_archives" in row)
    if stale:
        click.echo(f"{stale} study(ies) with archives made under other coding rules than this medcodec's "
                   f"(revision {CODING_REVISION}), served live: `medcodec ingest --refresh --store {store_url}` "
                   "makes them again")  # fmt: skip


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


#: Orphans `store check` lists by name (the first, in order; then how many more).
ORPHANS_LISTED = 20


@store.command()
@_STORE
@_CATALOG
@click.option("--hashes/--no-hashes", default=True, show_default=True, help="Re-read every object for its sha256.")
@handle_errors
def check(store_url: str, catalog: str | None, hashes: bool) -> None:
    """Check that every object the catalog references exists with its size (and sha256).

    Exit code 1 when something is missing or corrupt; orphans (objects nothing references,
    left by an interrupted write) are listed (the first 20), not counted as damage: `medcodec
    store gc` removes them. Studies waiting for pre-computation (never done, instances since,
    or made under other coding rules by another medcodec version: served live meanwhile) are
    counted, not damage either.
    """
    from ..delivery import open_store
    from ..delivery.manifest import CODING_REVISION

    with open_store(store_url, catalog=catalog, create=False, use_reserve=True) as opened:
        found = opened.check(verify_hashes=hashes)
        pending = opened.pending_work()
    for rel in found.missing:
        click.echo(f"missing: {rel}", err=True)
    for rel in found.corrupt:
        click.echo(f"corrupt: {rel}", err=True)
    orphans = sorted(found.orphans)
    for rel in orphans[:ORPHANS_LISTED]:  # harmless (stdout): `medcodec store gc` removes them
        click.echo(f"orphan: {rel}")
    if len(orphans) > ORPHANS_LISTED:
        click.echo(f"... {len(orphans) - ORPHANS_LISTED} more orphan(s)")
    click.echo(
        f"{found.checked} object(s) checked: {len(found.missing)} missing, {len(found.corrupt)} corrupt, "
        f"{len(found.orphans)} orphan(s)"
    )
    if pending:  # not damage: served live until then
        click.echo(
            f"{len(pending)} study(ies) to pre-compute (never done, instances since, or made under other coding "
            f"rules than this medcodec's, revision {CODING_REVISION}): `medcodec ingest --refresh --store {store_url}` "
            "makes them"
        )
    if not found.consistent:
        sys.exit(EXIT_PARTIAL)


@store.command()
@_STORE
@_CATALOG
@click.option("--study", "study_uid", required=True, help="Study Instance UID.")
@click.option("--series", "series_uid", default=None, help="Only this series of the study.")
@click.option("--instance", "sop_uid", default=None, help="Only this instance (SOP Instance UID) of the study.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def delete(
    store_url: str, catalog: str | None, study_uid: str, series_uid: str | None, sop_uid: str | None, yes: bool
) -> None:
    """Delete a study, a series of it or one instance: originals, renditions and the study's
    archives (the remaining instances' archives are coded live until `medcodec ingest --refresh`,
    but the `original` one, assembled from the stored files, with length and ETag, at once).

    The catalog rows go first, in one transaction; then the objects nothing references any
    more. A crash between leaves only orphans (`medcodec store gc`), never a row without its
    object. For a wrong-patient correction or a retention policy; there is no undo.
    """
    from ..delivery import open_store

    with open_store(store_url, catalog=catalog, create=False, use_reserve=True) as opened:
        found = opened.instances(study_uid, series_uid, sop_uid)  # NotFoundError, InvalidUidError
        what = "instance" if sop_uid else "series" if series_uid else "study"
        uid = sop_uid or series_uid or study_uid
        if not yes and not _confirmed(f"delete {what} {uid} ({len(found)} instance(s)) from {store_url}?"):
            click.echo("nothing deleted")
            sys.exit(EXIT_PARTIAL)
        done = opened.delete(study_uid, series_uid, sop_uid)
    click.echo(f"deleted {what} {uid}: {done.instances} instance(s), {done.objects} object(s) removed")


def _confirmed(question: str) -> bool:
    """Ask on the terminal. Without one (a script, cron, a pipe that closes), no answer is a usage
    error naming ``--yes`` (exit 2), not the "interrupted" of Ctrl-C (130) it used to look like."""
    try:
        return click.confirm(question)
    except click.Abort:
        if sys.stdin is not None and sys.stdin.isatty():
            raise  # Ctrl-C at the prompt
        raise InvalidInputError(
            "no answer to the confirmation (standard input is not a terminal or closed): "
            "nothing deleted; add --yes to delete without asking"
        ) from None


@store.command()
@_STORE
@_CATALOG
@handle_errors
def gc(store_url: str, catalog: str | None) -> None:
    """Remove objects nothing references (left by interrupted writes and rebuilt archives).

    Only objects older than an hour go: an ingest or a pre-computation writes an object a moment
    before its catalog row, so a younger one may be on its way in (safe beside a running ingest).
    A temporary file (tmp/*.part) of a local store whose writer died goes after a minute.
    """
    from ..delivery import open_store

    with open_store(store_url, catalog=catalog, create=False, use_reserve=True) as opened:
        removed = opened.collect_garbage()
        young = len(opened.check(verify_hashes=False).orphans)
    click.echo(
        f"{len(removed)} unreferenced object(s) removed"
        + (f"; {young} younger than an hour kept (they may be on their way in: run it again later)" if young else "")
    )


@store.command()
@_STORE
@_CATALOG
@click.argument("destination")
@click.option(
    "--originals-only",
    is_flag=True,
    help="Copy the originals and the catalog only (renditions and archives are made again by `ingest --refresh`).",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="A progress bar on stderr.")
@handle_errors
def backup(store_url: str, catalog: str | None, destination: str, originals_only: bool, progress: bool) -> None:
    """Copy the store to DESTINATION consistently, even while it is served or ingesting.

    \b
    The catalog is snapshotted in one read transaction, every object it references is copied and
    checked against its sha256, and the catalog is put in place last: DESTINATION is a store
    (`medcodec serve --store DESTINATION`, `medcodec store check --store DESTINATION`), complete
    whatever stopped the backup. Run it again on the same DESTINATION to copy only what is new;
    objects deleted from the store since stay there until `medcodec store gc --store DESTINATION`.
    DESTINATION: a folder (absent, empty, or an earlier backup of this store) or an fsspec URL. SQLite catalogs
    only (a PostgreSQL catalog: pg_dump, then the objects). Do not serve DESTINATION while it is written.
    Exit code 1 when objects of the store are missing or do not match their sha256 (named; the rest is copied).
    """
    from ..delivery import open_store

    with open_store(store_url, catalog=catalog, create=False, use_reserve=True) as opened:
        with progress_bar("backup", unit="B", enabled=progress) as on_progress:
            report = opened.backup(destination, originals_only=originals_only, progress=on_progress)
    for rel in report.corrupt:
        click.echo(f"corrupt in the store, not copied: {rel}", err=True)
    for rel in report.missing:
        click.echo(f"missing from the store, not copied: {rel}", err=True)
    click.echo(
        f"{report.destination}: {report.instances} instance(s); {report.copied} object(s) copied "
        f"({_mb(report.copied_bytes)}), {report.present} there already"
        + (f", {report.dropped} rendition(s) / archive(s) left out" if report.dropped else "")
        + f", in {report.seconds:.1f} s"
    )
    if not report.complete:
        sys.exit(EXIT_PARTIAL)


@store.command()
@_STORE
@_CATALOG
@click.option("--progress/--no-progress", default=True, show_default=True, help="A progress bar on stderr.")
@handle_errors
def reindex(store_url: str, catalog: str | None, progress: bool) -> None:
    """Re-read every original's header into the catalog, as this version keeps it.

    For a store made by an earlier version: since 2026-12-01 the metadata names bulk data
    (waveforms, overlays, icons, documents) by URI where it left them out, and a file without
    PS3.10 header is labelled with the syntax its bytes are in; since 2026-12-02 each study
    without a PatientID is a patient of its own (they shared one, and QIDO matched them all on
    the first one's name); since 2026-12-03 each original's CRC-32 is recorded, from which the
    `original` archive is assembled with a length, an ETag and ranges (else read at the first
    request for it). The originals are only read.
    """
    from ..delivery import open_store

    with open_store(store_url, catalog=catalog, create=False, use_reserve=True) as opened:
        with progress_bar("reindex", unit="file", enabled=progress) as on_progress:
            updated = opened.reindex(on_progress)
    click.echo(f"{updated} instance header(s) updated")
