"""``medcodec info``: header fields and segments with byte offsets, without decoding pixels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .. import codec
from ..codec import container, mdc2, quantize
from ..metrics import compression_ratio
from ._common import handle_errors


def _bounds(h: container.MdcHeader, data: bytes) -> list[float]:
    """Worst-case |error| in stored units: v2 predictive streams carry it, v1 from the steps,
    v2 DCT streams from the steps and each intact frame's offsets (none intact: no bound)."""
    k = getattr(h, "max_error", None)
    if k is not None:
        return [float(k)]
    range_coded = (container.ENTROPY_ARITH, container.ENTROPY_MULTI)
    # padding masks: a voxel that decoded into the padding range is moved just outside it, which
    # can take it up to (high - low + 1) further from its value (docs/format.md §4, §15)
    pad = mdc2.meta_padding(h) if h.format == "mdc" else None
    extra = 0 if pad is None else pad[1] - pad[0] + 1
    if h.format == "mdc" and getattr(h, "entropy", 0) in range_coded:  # offsets per frame
        per_frame = mdc2.stream_error_bound(data)
        return [round(max(per_frame) + extra, 2)] if per_frame else []
    return [round(quantize.error_bound(q) + extra, 2) for q in h.qtables]


def _intra_frames(h: container.MdcHeader, data: bytes, index: list[tuple[int, int]]) -> int | None:
    """Intact frames coded with 8x8 intra prediction (formats 2.2-2.5); None for streams that cannot hold any."""
    if h.format != "mdc" or getattr(h, "entropy", 0) != container.ENTROPY_MULTI or h.version < container.VERSION_22:
        return None
    intact = [e for e in index if e[0] + e[1] <= len(data)]
    return sum(mdc2.read_dct_frame(data, h, e).intra for e in intact)


def _guarantee(h: container.MdcHeader, intra_frames: int | None) -> str:
    """What the stream promises about its error. An intra frame (2.2+) keeps the printed bound whatever
    the effort: rounded levels stay within it by construction and RD-searched ones are checked against
    it block by block when encoded (docs/format.md §14). Other DCT frames of ``effort="best"`` (the
    2.1 RD levels, v1's trellis) are not checked, and the header does not record the effort."""
    k = getattr(h, "max_error", None)
    if k == 0:
        return "lossless: bit-exact (checked by decoding when encoded)"
    if k is not None:
        return f"|error| <= {k} stored units for every sample (checked by decoding when encoded)"
    if h.format == "mdc" and intra_frames is not None and intra_frames == h.frames:
        return "|error| <= max_abs_error_bound for every sample (all frames intra: levels rounded or checked per block)"
    if h.format == "mdc":
        return "|error| <= max_abs_error_bound if encoded with effort=fast (the header does not record the effort)"
    return "none recorded (lossy JPEG)"


@click.command()
@click.argument("stream", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@handle_errors
def info(stream: Path, as_json: bool) -> None:
    """Show the header and every segment (type, byte offset, length) of a .mdc or JPEG STREAM."""
    data = stream.read_bytes()
    h = codec.read_header(data)
    segments = list(h.segments)
    missing: list[int] = []
    index: list[tuple[int, int]] = []
    if h.format == "mdc":  # the header stops at FIDX: list the frames from the index too
        _, index = container.parse_container(data)
        segments += [container.Segment("FRAM", off, size - 12) for off, size in index if off + size <= len(data)]
        missing = [k for k, (off, size) in enumerate(index) if off + size > len(data)]
        if not missing and data[-8:-4] == b"MEND":
            segments.append(container.Segment("MEND", len(data) - 12, 0))
    # the ratio counts pixel data only (raw pixel bytes / coded pixel bytes, as PS3.3 C.7.6.1.1.5 means
    # it): a .mdc's embedded DICOM headers and metadata are reported apart, as overhead
    pixel_bytes = container.pixel_data_bytes(h, len(data)) if h.format == "mdc" else len(data)
    intra = _intra_frames(h, data, index)
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
        "pixel_data_bytes": pixel_bytes,
        "overhead_bytes": len(data) - pixel_bytes,
        "ratio": round(compression_ratio(pixel_bytes, h.rows * h.cols * h.frames, h.bits_stored), 3),
        "max_abs_error_bound": _bounds(h, data),
        "guarantee": _guarantee(h, intra),
        "intra_frames": intra,
        # stored values restored exactly from a mask per frame (docs/format.md §15): declared by the
        # caller (DICOM Pixel Padding Value) or, since 2026-12-03, by the default coder itself
        "padding": list(pad) if (pad := (mdc2.meta_padding(h) if h.format == "mdc" else None)) else None,
        "segments": [{"type": s.type, "offset": s.offset, "length": s.length} for s in segments],
        "ancillary": {k: len(v) for k, v in getattr(h, "ancillary", {}).items()},
        "missing_frames": missing,
    }
    if as_json:
        click.echo(json.dumps(fields, indent=2))
        return
    for key, value in fields.items():
        if key == "intra_frames":
            if value is not None:
                tools = "format 2.2-2.4"
                if h.version >= container.VERSION_26:
                    tools = "16x16 DC / SMOOTH / paeth blocks or 8x8 blocks with a DCT or DST-VII pair, format 2.6"
                    if h.version >= container.VERSION_212:
                        tools += ", levels under 2.11's within-block contexts, every context from 2.12's trained starts"
                    elif h.version >= container.VERSION_211:
                        tools += ", levels under 2.11's within-block contexts"
                elif h.version >= container.VERSION_25:
                    tools = "DCT or DST-VII pair per block, format 2.5"
                click.echo(f"{key:28s} {value} of {h.frames} (8x8 intra prediction, {tools})")
        elif key == "padding":
            if value is not None:
                click.echo(f"{key:28s} {value[0]}..{value[1]} (restored exactly from a mask per frame)")
        elif key == "overhead_bytes" and h.format == "mdc":  # an auditor read 0 as "no framing counted"
            click.echo(f"{key:28s} {value} (embedded DICOM headers and metadata; the container's own framing,"
                       " like a JPEG's markers, counts as pixel data)")  # fmt: skip
        elif key not in ("segments", "ancillary", "missing_frames"):
            click.echo(f"{key:28s} {value}")
    if missing:  # frames whose FRAM is cut
        which = f"frame {missing[0]} is" if len(missing) == 1 else f"frames {missing[0]}-{missing[-1]} are"
        click.echo(f"{'truncated':28s} stream ends at byte {len(data)}: {which} missing or cut; "
                   f"frames before decode (decode --frames)")  # fmt: skip
    click.echo(f"{'ancillary segments':28s} {fields['ancillary'] or '-'}")
    click.echo("\n  offset      length  segment")
    for s in fields["segments"]:
        click.echo(f"  {s['offset']:>8d}  {s['length']:>10d}  {s['type']}")
