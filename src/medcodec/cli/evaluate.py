"""``medcodec evaluate``: medcodec side by side with its peers on your images.

A thin layer over :mod:`medcodec.evaluate`: parse options, read the series, run the sweep,
write ``report.html``, ``results.json`` and ``results.csv``, print a short summary.
"""

from __future__ import annotations

import math
from pathlib import Path

import click

from ..errors import InvalidInputError
from ..evaluate import metrics as M
from ..evaluate.inputs import load_series
from ..evaluate.peers import ADAPTERS, DEFAULT_CODECS, OPT_IN, get_adapter
from ..evaluate.report import report_paths, write_report
from ..evaluate.runner import DEFAULT_RATES, run_evaluation
from ._common import EXIT_PARTIAL, handle_errors, progress_bar

__all__ = ["evaluate", "parse_floats", "parse_qualities", "parse_window"]


def parse_floats(text: str, what: str) -> list[float]:
    """``"0.5, 1,2"`` -> ``[0.5, 1.0, 2.0]``; InvalidInputError on anything else."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise InvalidInputError(f"{what}={text!r}: expected comma-separated numbers") from None
    if not values or any(not math.isfinite(v) for v in values):
        raise InvalidInputError(f"{what}={text!r}: expected comma-separated finite numbers")
    return values


def parse_qualities(items: tuple[str, ...], codecs: list[str]) -> dict[str, list[float]]:
    """``--qualities`` values: ``CODEC=v1,v2`` for one codec's own knob, or bare ``v1,v2`` for every
    codec whose knob is a 1-100 ``quality`` (medcodec, JPEG)."""
    out: dict[str, list[float]] = {}
    for item in items:
        if "=" in item:
            name, _, values = item.partition("=")
            name = name.strip()
            if name not in ADAPTERS:
                raise InvalidInputError(
                    f"--qualities {item!r}: unknown codec {name!r}, expected one of {', '.join(ADAPTERS)}"
                )
            out[name] = _in_range(name, parse_floats(values, f"--qualities {name}"))
        else:
            values_ = parse_floats(item, "--qualities")
            for name in codecs:
                knob = get_adapter(name).knob
                if knob is not None and knob.name == "quality":
                    out.setdefault(name, _in_range(name, values_))
    return out


#: Knobs whose range is the codec's own limit (a value outside it would be clamped, and the report
#: would name a setting nothing was coded at: 500 was recorded as asked until 2026-12-02); the
#: others' ranges (a PSNR, a step, a distance) are only where the rate control searches.
_HARD_RANGES = ("quality", "near")


def _in_range(name: str, values: list[float]) -> list[float]:
    knob = get_adapter(name).knob
    if knob is not None and knob.name in _HARD_RANGES:
        bad = [v for v in values if not knob.low <= v <= knob.high]
        if bad:
            raise InvalidInputError(
                f"--qualities {name}: {', '.join(f'{v:g}' for v in bad)} outside its {knob.name} "
                f"{knob.low:g}..{knob.high:g}"
            )
    return values


def parse_window(text: str) -> M.Window:
    """``NAME=CENTER,WIDTH`` (output units, HU for CT) -> Window."""
    name, sep, rest = text.partition("=")
    vals = parse_floats(rest, f"--window {text}") if sep else []
    if not name or len(vals) != 2:
        raise InvalidInputError(f"--window {text!r}: expected NAME=CENTER,WIDTH, e.g. bone=400,1800")
    return M.Window(name.strip(), vals[0], vals[1])


@click.command("evaluate")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--report",
    "report_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for report.html, results.json and results.csv.",
)
@click.option(
    "--codecs",
    default=None,
    metavar="LIST",
    help=f"Comma-separated codecs: {', '.join(ADAPTERS)} (default: all but {', '.join(OPT_IN)}, "
    "which is slow: name it to include it).",
)
@click.option(
    "--rates",
    default=None,
    metavar="BPP,...",
    help="Target bits per pixel (default: " + ",".join(f"{r:g}" for r in DEFAULT_RATES) + ").",
)
@click.option(
    "--qualities",
    multiple=True,
    metavar="[CODEC=]V,...",
    help="Knob values instead of --rates: CODEC=V,... uses that codec's own knob; bare V,... "
    "applies to codecs with a 1-100 quality. Repeatable.",
)
@click.option("--anchor", default="jpeg2000", show_default=True, help="Codec the BD-rate is computed against.")
@click.option("--series", "series_uid", default=None, help="Series Instance UID (default: the longest series).")
@click.option(
    "--max-frames",
    default=16,
    show_default=True,
    type=click.IntRange(min=0),
    help="Evaluate this many evenly spaced frames (0 = all).",
)
@click.option(
    "--view-frame",
    default=None,
    type=click.IntRange(min=0),
    help="Frame (index among the evaluated ones) for the images; default the middle one.",
)
@click.option(
    "--view-bpp",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Rate of the decoded images shown.",
)
@click.option(
    "--window",
    "windows",
    multiple=True,
    metavar="NAME=C,W",
    help="Display window for windowed metrics (default for CT: soft_tissue=40,400 and lung=-600,1500).",
)
@click.option("--no-windows", is_flag=True, help="No windowed metrics.")
@click.option("--no-lossless", is_flag=True, help="Skip the lossless points.")
@click.option(
    "--calibration-frames",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Frames the rate search measures sizes on.",
)
@click.option(
    "--repeat",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Time each encode/decode this many times, keep the fastest.",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
@click.option("--overwrite", is_flag=True, help="Replace report files in DIR.")
@handle_errors
def evaluate(
    inputs: tuple[Path, ...],
    report_dir: Path,
    codecs: str | None,
    rates: str | None,
    qualities: tuple[str, ...],
    anchor: str,
    series_uid: str | None,
    max_frames: int,
    view_frame: int | None,
    view_bpp: float,
    windows: tuple[str, ...],
    no_windows: bool,
    no_lossless: bool,
    calibration_frames: int,
    repeat: int,
    progress: bool,
    overwrite: bool,
) -> None:
    """Compare medcodec with JPEG 2000, HTJ2K, JPEG-LS, JPEG XL, 12-bit JPEG and zlib on INPUT
    (DICOM file(s), folder, ZIP or DICOMDIR): rate-distortion sweeps, matched-rate tables,
    BD-rate against JPEG 2000, speed, and an HTML report with plots and images. AVIF is
    opt-in (`--codecs ...,avif`): it would take about as long as all the others together.

    Exit codes: 0 done, 2 bad option, unusable input, a report file in the way (checked before any
    coding) or no codec that could code the input (one line on stderr).
    """
    try:
        names = [c.strip() for c in codecs.split(",") if c.strip()] if codecs else list(DEFAULT_CODECS)
        adapters = [get_adapter(n) for n in names]
        rate_list = parse_floats(rates, "--rates") if rates else list(DEFAULT_RATES)
        if any(r <= 0 for r in rate_list):
            raise InvalidInputError(f"--rates {rates!r}: rates must be positive bpp values")
        knob_values = parse_qualities(qualities, names)
        wins = None if not windows else [parse_window(w) for w in windows]
        if no_windows:
            wins = []
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from exc
    report_paths(report_dir, overwrite=overwrite)  # a report in the way stops the run now, not after the sweep

    with progress_bar("reading DICOM", unit="file", enabled=progress) as callback:
        series = load_series(list(inputs), series_uid=series_uid, max_frames=max_frames, progress=callback)
    if view_frame is not None and view_frame >= series.pixels.shape[0]:
        raise InvalidInputError(
            f"--view-frame {view_frame}: only {series.pixels.shape[0]} frames are evaluated (0-based)"
        )
    info = series.info()
    click.echo(
        f"{info['modality'] or 'image'} series, {info['frames_evaluated']} of {info['frames_in_series']} "
        f"frame(s) of {info['rows']}x{info['cols']}, {info['bits_stored']}-bit "
        f"{'signed' if info['signed'] else 'unsigned'}",
        err=True,
    )
    if series.other_series:  # the choice said, not made silently (an outside audit, 2026-12-03)
        click.echo(
            f"{len(series.other_series) + 1} series in the input; evaluating {series.series_instance_uid or '?'} "
            f"(the longest unless --series); not evaluated: {'; '.join(series.other_series)}",
            err=True,
        )
    for failure in series.skipped_inputs:
        click.echo(f"unreadable input: {failure}", err=True)
    with progress_bar("evaluate", unit="point", enabled=progress) as callback:
        result = run_evaluation(
            series.pixels, series.spec, adapters, rates=rate_list, knob_values=knob_values, windows=wins,
            modality=series.modality, anchor=anchor if anchor in names else None,
            include_lossless=not no_lossless, calibration_frames=calibration_frames, repeat=repeat,
            view_frame=view_frame, view_bpp=view_bpp, info=info, progress=callback,
            log=lambda msg: click.echo(msg, err=True),
        )  # fmt: skip
    if not result.points:  # an empty report would pass for a result
        why = "; ".join(result.skipped.values()) or "no codec was run"
        raise InvalidInputError(f"no codec could code this input, no report written: {why}")
    paths = write_report(result, report_dir, overwrite=overwrite)

    at1 = {r["codec"]: r for r in result.matched if r["target"] == "1 bpp"}
    bd = {r["codec"]: r for r in result.bd}
    ran = list(dict.fromkeys(p["codec"] for p in result.points))
    labels = {name: result.codecs[name].get("label", name) for name in ran}
    width = max(28, *map(len, labels.values()))
    bd_head = "BD-rate vs " + (result.anchor or "-")
    click.echo(f"{'codec':{width}s} {'PSNR@1bpp':>10s} {'SSIM@1bpp':>10s} {bd_head:>20s}")
    notes = []
    for name in ran:
        row, b = at1.get(name, {}), bd.get(name, {})
        psnr = row.get("psnr_db")
        ssim = row.get("ssim")
        rate, method = b.get("bd_rate_pct"), b.get("bd_rate_method")
        stated = "-" if rate is None else f"{rate:+.1f} %" + (f" ({str(method).upper()})" if method != "cubic" else "")
        click.echo(
            f"{labels[name]:{width}s} {'-' if psnr is None else f'{psnr:.2f} dB':>10s} "
            f"{'-' if ssim is None else f'{ssim:.4f}':>10s} {stated:>20s}"
        )
        if rate is not None and b.get("bd_rate_notes"):  # caveats on the BD-rate just printed
            notes.append(f"note: {labels[name]} BD-rate: {'; '.join(b['bd_rate_notes'])}")
    for note in notes:
        click.echo(note)
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")
    if series.skipped_inputs:  # the report is of what could be read: a batch past bad inputs exits 1, as
        # encode and ingest do (it exited 0: an outside audit, 2026-12-05)
        click.echo(f"{len(series.skipped_inputs)} input(s) could not be read (listed above)", err=True)
        raise SystemExit(EXIT_PARTIAL)
