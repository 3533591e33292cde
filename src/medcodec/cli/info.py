"""``medcodec info``: header fields and segments with byte offsets, without decoding pixels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .. import codec
from ..codec import container, quantize
from ..spec import raw_bytes_per_pixel
from ._common import handle_errors


@click.command()
@click.argument("stream", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@handle_errors
def info(stream: Path, as_json: bool) -> None:
    """Show the header and every segment (type, byte offset, length) of a .mdc or JPEG STREAM."""
    data = stream.read_bytes()
    h = codec.read_header(data)
    segments = list(h.segments)
    if h.format == "mdc":  # the header stops at FIDX: list the frames from the index too
        _, index = container.parse_container(data)
        segments += [container.Segment("FRAM", off, size - 12) for off, size in index]
        segments.append(container.Segment("MEND", len(data) - 12, 0))
    fields: dict[str, Any] = {
        "file": str(stream),
        "format": h.format,
        "version": ".".join(map(str, h.version)),
        "shape": list(h.shape),
        "bits_stored": h.bits_stored,
        "signed": h.signed,
        "photometric_interpretation": h.photometric_interpretation,
        "rescale_slope": h.rescale_slope,
        "rescale_intercept": h.rescale_intercept,
        "window_center": h.window_center,
        "window_width": h.window_width,
        "quality": h.quality,
        "range_bits": h.range_bits,
        "bytes": len(data),
        "ratio": round(h.rows * h.cols * h.frames * raw_bytes_per_pixel(h.bits_stored) / len(data), 3),
        "max_abs_error_bound": [round(quantize.error_bound(q), 2) for q in h.qtables],
        "segments": [{"type": s.type, "offset": s.offset, "length": s.length} for s in segments],
        "ancillary": {k: len(v) for k, v in h.ancillary.items()},
    }
    if as_json:
        click.echo(json.dumps(fields, indent=2))
        return
    for key, value in fields.items():
        if key not in ("segments", "ancillary"):
            click.echo(f"{key:28s} {value}")
    click.echo(f"{'ancillary segments':28s} {fields['ancillary'] or '-'}")
    click.echo("\n  offset      length  segment")
    for s in fields["segments"]:
        click.echo(f"  {s['offset']:>8d}  {s['length']:>10d}  {s['type']}")
