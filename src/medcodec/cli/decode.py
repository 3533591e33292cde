"""``medcodec decode``: ``.mdc`` / JPEG -> NumPy, 16-bit PNG or derived DICOM."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from .. import codec
from ..fileio import atomic_writer, check_output_path
from ..spec import PixelSpec, storage_dtype
from ._common import ensure_dir, handle_errors, jobs_option


def parse_frames(text: str | None) -> list[int] | None:
    """``"0,3-5"`` -> [0, 3, 4, 5]."""
    if not text:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                a, b = part.split("-", 1)
                out.extend(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected frame numbers like 0,3-5") from None
    return out


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
    "and no --frames are given, else png]..",
)
@click.option("--frames", default=None, help="Frames to decode, e.g. 0,3-5 [default: all].")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@jobs_option
@handle_errors
def decode(stream: Path, output: Path, to: str | None, frames: str | None, overwrite: bool, jobs: int | None) -> None:
    """Decompress a .mdc or JPEG STREAM.

    \b
    --to npy    one .npy array (frames, rows, cols) of stored values
    --to png    one 16-bit grayscale PNG per frame (8-bit for <= 8-bit data; signed
                data shifted by 2^(bits_stored-1) into unsigned, as the log says)
    --to dicom  one derived DICOM per source image, uncompressed, original metadata
                kept, Lossy Image Compression = 01, ratio and method recorded, Image
                Type DERIVED, new SOP Instance UIDs and one new Series Instance UID
    """
    data = stream.read_bytes()
    header = codec.read_header(data)
    selection = parse_frames(frames)
    ancillary = getattr(header, "ancillary", {})
    if to is None:
        to = "npy" if output.suffix.lower() == ".npy" else ("dicom" if "dcmh" in ancillary and not selection else "png")
    if to == "dicom":
        if selection is not None:
            raise click.UsageError("--frames is not supported with --to dicom (whole source images are written)")
        _write_dicom(stream, data, header, output, overwrite, jobs)
        return
    pixels = codec.decode(data, frames=selection, jobs=jobs)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if to == "npy":
        check_output_path(output, inputs=[stream], overwrite=overwrite)
        with atomic_writer(output) as fh:
            np.save(fh, pixels)
        click.echo(f"{output}: {pixels.shape} {pixels.dtype}")
        return
    _write_png(pixels, header, ensure_dir(output), stream, overwrite, selection)


def _write_png(
    pixels: np.ndarray,
    header: codec.MdcHeader,
    folder: Path,
    stream: Path,
    overwrite: bool,
    selection: list[int] | None,
) -> None:
    from ..external import png_encode, to_unsigned, unsigned_offset

    spec = PixelSpec(bits_stored=header.bits_stored, signed=header.signed)
    if shift := unsigned_offset(spec):
        click.echo(f"note: signed data shifted by +{shift} into unsigned PNG values", err=True)
    numbers = selection if selection is not None else list(range(len(pixels)))
    for k, frame in zip(numbers, pixels):
        target = folder / f"{stream.stem}_{k:04d}.png"
        check_output_path(target, inputs=[stream], overwrite=overwrite)
        with atomic_writer(target) as fh:
            fh.write(png_encode(to_unsigned(frame, spec)[0]))
    click.echo(f"{folder}: {len(pixels)} PNG file(s), {storage_dtype(header.bits_stored, False)}")


def _write_dicom(
    stream: Path, data: bytes, header: codec.MdcHeader, folder: Path, overwrite: bool, jobs: int | None
) -> None:
    from ..dicom.series_mdc import decode_mdc_to_dicom

    ensure_dir(folder)
    written, series_uid, ratio = decode_mdc_to_dicom(data, folder, source=stream, overwrite=overwrite, jobs=jobs)
    click.echo(f"{folder}: {len(written)} DICOM file(s), ratio {ratio:.1f}:1, new Series Instance UID {series_uid}")
