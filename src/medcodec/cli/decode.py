"""``medcodec decode``: ``.mdc`` / JPEG -> NumPy, 16-bit PNG or derived DICOM."""

from __future__ import annotations

import re
from pathlib import Path

import click
import numpy as np

from .. import codec
from ..errors import InvalidInputError
from ..fileio import atomic_writer, check_output_path
from ..render import WINDOW_PRESETS, Window, choose_window, parse_window, render_8bit
from ..spec import PixelSpec, storage_dtype
from ._common import ensure_dir, handle_errors, jobs_option

#: One part of ``--frames``: a frame number or a range ``a-b`` (numbers from 0, no sign).
_FRAMES_PART = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?")


def parse_frames(text: str | None, count: int | None = None) -> list[int] | None:
    """``"0,3-5"`` -> [0, 3, 4, 5], in the order given; ``None`` for all frames.

    Frames are numbered from 0; a range goes up; each frame may be asked once; with ``count``
    (the stream's number of frames) every frame must exist, checked before any range is
    expanded. Anything else is a usage error naming ``--frames``.

    >>> parse_frames("0,3-5", 10)
    [0, 3, 4, 5]
    """
    if text is None:
        return None

    def bad(message: str) -> click.BadParameter:
        return click.BadParameter(message, param_hint="'--frames'")

    spans: list[range] = []
    for part in text.split(","):
        m = _FRAMES_PART.fullmatch(part)
        if m is None:
            what = "frames are numbered from 0" if part.strip().startswith("-") else "expected frame numbers"
            raise bad(f"{part.strip()!r}: {what}, like 0,3-5")
        a = int(m.group(1))
        b = a if m.group(2) is None else int(m.group(2))
        if b < a:
            raise bad(f"{part.strip()!r}: a range goes up, from 0 (e.g. 2-5)")
        if count is not None and b >= count:
            raise bad(f"frame {b} does not exist: the stream has {count} frames (0-{count - 1})")
        spans.append(range(a, b + 1))
    end = -1
    for span in sorted(spans, key=lambda r: r.start):  # overlaps found without expanding the ranges
        if span.start <= end:
            raise bad(f"frame {span.start} is asked for twice in {text!r}: give each frame once")
        end = max(end, span.stop - 1)
    return [k for span in spans for k in span]


@click.command()
@click.argument("stream", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Output .npy file, or folder for --to png / dicom.",
)
@click.option(
    "--to",
    "to",
    type=click.Choice(["npy", "png", "dicom"]),
    default=None,
    help="Output kind [default: npy for a .npy output, else dicom when the stream carries DICOM headers "
    "and no --frames are given, else png].",
)
@click.option(
    "--frames",
    default=None,
    help="Frames to decode, e.g. 0,3-5: numbered from 0, in the order given, each once (a frame asked "
    "twice, or one the stream does not have, is a usage error) [default: all].",
)
@click.option(
    "--window",
    default=None,
    metavar="C,W|NAME",
    help="PNG display window in output units (HU for CT): CENTER,WIDTH or a preset "
    f"({', '.join(WINDOW_PRESETS)}) [default: the header's window, else the 0.5-99.5 percentile range].",
)
@click.option(
    "--png-raw",
    is_flag=True,
    help="PNG of the raw stored values (16-bit, signed data shifted) instead of a display image.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@jobs_option
@handle_errors
def decode(
    stream: Path,
    output: Path,
    to: str | None,
    frames: str | None,
    overwrite: bool,
    jobs: int | None,
    window: str | None = None,
    png_raw: bool = False,
) -> None:
    """Decompress a .mdc or JPEG STREAM.

    \b
    --to npy    one .npy array (frames, rows, cols) of stored values
    --to png    one 8-bit PNG per frame for viewing: rescaled to HU / output units, the
                header's window (or --window), MONOCHROME1 inverted; with --png-raw the
                stored values instead (16-bit, signed data shifted by 2^(bits_stored-1))
    --to dicom  one derived DICOM per source image, uncompressed, original metadata
                kept, Lossy Image Compression = 01, ratio and method recorded, Image
                Type DERIVED, new SOP Instance UIDs and one new Series Instance UID
    """
    if window is not None and png_raw:
        raise click.UsageError("--window and --png-raw exclude each other: a raw PNG has no window")
    try:
        voi = parse_window(window) if window is not None else None
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc).replace("window=", ""), param_hint="'--window'") from None
    data = stream.read_bytes()
    header = codec.read_header(data)
    selection = parse_frames(frames, header.frames)
    ancillary = getattr(header, "ancillary", {})
    if to is None:
        to = (
            "npy"
            if output.suffix.lower() == ".npy"
            else ("dicom" if "dcmh" in ancillary and not selection and window is None and not png_raw else "png")
        )
    if (window is not None or png_raw) and to != "png":
        raise click.UsageError(f"--window and --png-raw apply to --to png only, not --to {to}")
    if to == "dicom":
        if selection is not None:
            raise click.UsageError("--frames is not supported with --to dicom (whole source images are written)")
        _write_dicom(stream, data, header, output, overwrite, jobs)
        return
    if to == "npy":  # an existing output is said before the decoding, not after
        check_output_path(output, inputs=[stream], overwrite=overwrite)
    pixels = codec.decode(data, frames=selection, jobs=jobs)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if to == "npy":
        with atomic_writer(output) as fh:
            np.save(fh, pixels)
        click.echo(f"{output}: {pixels.shape} {pixels.dtype}")
        return
    _write_png(pixels, header, ensure_dir(output), stream, overwrite, selection, voi=voi, raw=png_raw)


def _write_png(
    pixels: np.ndarray,
    header: codec.MdcHeader,
    folder: Path,
    stream: Path,
    overwrite: bool,
    selection: list[int] | None,
    *,
    voi: Window | None = None,
    raw: bool = False,
) -> None:
    from ..external import png_encode, to_unsigned, unsigned_offset

    spec = PixelSpec(bits_stored=header.bits_stored, signed=header.signed,
                     photometric_interpretation=header.photometric_interpretation,
                     rescale_slope=header.rescale_slope, rescale_intercept=header.rescale_intercept,
                     window_center=header.window_center, window_width=header.window_width)  # fmt: skip
    if raw and (shift := unsigned_offset(spec)):
        click.echo(f"note: signed data shifted by +{shift} into unsigned PNG values", err=True)
    win = None if raw else choose_window(pixels, spec, voi)
    numbers = selection if selection is not None else list(range(len(pixels)))
    targets = [folder / f"{stream.stem}_{k:04d}.png" for k in numbers]
    for target in targets:  # all checked before the first is written: no partial set of PNGs
        check_output_path(target, inputs=[stream], overwrite=overwrite)
    for target, frame in zip(targets, pixels):
        image = to_unsigned(frame, spec)[0] if win is None else render_8bit(frame, spec, win)
        with atomic_writer(target) as fh:
            fh.write(png_encode(image))
    if win is None:
        click.echo(
            f"{folder}: {len(pixels)} PNG file(s), raw stored values, {storage_dtype(header.bits_stored, False)}"
        )
        return
    inverted = ", MONOCHROME1 inverted" if spec.photometric_interpretation == "MONOCHROME1" else ""
    click.echo(
        f"{folder}: {len(pixels)} PNG file(s), 8-bit, window {win.name} C={win.center:g} W={win.width:g}{inverted}"
    )


def _write_dicom(
    stream: Path, data: bytes, header: codec.MdcHeader, folder: Path, overwrite: bool, jobs: int | None
) -> None:
    from ..dicom.series_mdc import decode_mdc_to_dicom

    written, series_uid, ratio = decode_mdc_to_dicom(data, folder, source=stream, overwrite=overwrite, jobs=jobs)
    click.echo(f"{folder}: {len(written)} DICOM file(s), ratio {ratio:.1f}:1, new Series Instance UID {series_uid}")
