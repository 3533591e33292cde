"""Build the fuzz reproducers of issue 10 (items 10, 11, 12, 14) from ``fuzz/base.u2.b12.f3.mdc``,
and the ``.mdc`` 2.0 seeds and reproducers of issue 12 (``V2_BASES``, ``V2_REPRODUCERS``).

Run ``python tests/data/make_reproducers.py`` to (re)write the small ones into
``tests/data/fuzz/``; ``tests/codec/test_fuzz_regressions.py`` reads those committed bytes and
builds the large one (:func:`fidx_65535_frames_one_fram`, 786 kB) here at test time.

Segments are walked and CRCs recomputed by this file's own code (zlib), not by
``medcodec.codec.container``: the reproducers must not depend on the code they test.
``.mdc`` layout: signature (8 bytes), then segments ``LENGTH:u32 TYPE:4 PAYLOAD CRC32(TYPE+PAYLOAD):u32``
(docs/format.md).
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent / "fuzz"
BASE = HERE / "base.u2.b12.f3.mdc"
SIGNATURE = b"\x89MDC\r\n\x1a\n"


def segment(seg_type: bytes, payload: bytes) -> bytes:
    """One segment with a correct CRC."""
    return struct.pack("<I4s", len(payload), seg_type) + payload + struct.pack("<I", zlib.crc32(seg_type + payload))


def segments(data: bytes) -> list[tuple[str, int, bytes]]:
    """(type, offset, payload) of every complete segment."""
    out, pos = [], 8
    while pos + 12 <= len(data):
        length, seg_type = struct.unpack_from("<I4s", data, pos)
        if pos + 12 + length > len(data):
            break
        out.append((seg_type.decode("latin-1"), pos, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def rebuild(head: bytes, qtab: bytes, ancillary: list[bytes], frames: list[bytes], entries: list[int] | None = None,
            n_frames: int | None = None) -> bytes:
    """A stream from segment payloads: HEAD, QTAB, ancillary segments (complete), FIDX, FRAMs, MEND.

    ``entries``: which FRAM each FIDX entry points at (default one each); ``n_frames``: the
    HEAD frame count to write (default ``len(entries)``).
    """
    entries = list(range(len(frames))) if entries is None else entries
    n = len(entries) if n_frames is None else n_frames
    head = head[:12] + struct.pack("<I", n) + head[16:]
    prefix = SIGNATURE + segment(b"HEAD", head) + segment(b"QTAB", qtab) + b"".join(ancillary)
    fidx_len = 12 + 4 + 12 * len(entries)
    fram_segments = [segment(b"FRAM", f) for f in frames]
    offsets, pos = [], len(prefix) + fidx_len
    for seg in fram_segments:
        offsets.append((pos, len(seg)))
        pos += len(seg)
    fidx = struct.pack("<I", len(entries)) + b"".join(struct.pack("<QI", *offsets[k]) for k in entries)
    return prefix + segment(b"FIDX", fidx) + b"".join(fram_segments) + segment(b"MEND", b"")


def _parts(base: bytes) -> tuple[bytes, bytes, list[bytes]]:
    segs = segments(base)
    head = next(p for t, _, p in segs if t == "HEAD")
    qtab = next(p for t, _, p in segs if t == "QTAB")
    frames = [p for t, _, p in segs if t == "FRAM"]
    return head, qtab, frames


def meta_deep_nesting(base: bytes) -> bytes:
    """Item 10: a ``meta`` segment of 20,000 ``[`` with a valid CRC (was a RecursionError in json.loads)."""
    head, qtab, frames = _parts(base)
    return rebuild(head, qtab, [segment(b"meta", b"[" * 20000)], frames)


def meta_ndim2_three_frames(base: bytes) -> bytes:
    """Item 12: a 3-frame stream with an added ``meta {"ndim": 2}`` (decode returned frame 0 alone)."""
    head, qtab, frames = _parts(base)
    return rebuild(head, qtab, [segment(b"meta", b'{"ndim": 2}')], frames)


def fidx_65535_frames_one_fram(base: bytes) -> bytes:
    """Item 11: HEAD claims 65535 frames of 256x256 and all 65535 FIDX entries point at one FRAM
    (decode reserved 8 GiB before reading a frame: MemoryError under a 3 GB address space)."""
    head, qtab, frames = _parts(base)
    return rebuild(head, qtab, [], frames[:1], entries=[0] * 65535)


def truncated_80pct(base: bytes) -> bytes:
    """Item 14: the stream cut at 80% of its length (every frame was lost, and the error named FIDX)."""
    return base[: len(base) * 8 // 10]


#: name -> (builder, committed to tests/data/fuzz/)
REPRODUCERS = {
    "meta_deep_nesting.mdc": (meta_deep_nesting, True),
    "meta_ndim2_three_frames.mdc": (meta_ndim2_three_frames, True),
    "fidx_65535_frames_one_fram.mdc": (fidx_65535_frames_one_fram, False),
    "truncated_80pct.mdc": (truncated_80pct, True),
}


def make_base() -> bytes:
    """The base stream: 3 frames of 256x256, 12-bit unsigned, smooth synthetic content
    (medcodec.encode, quality 75). Only used to (re)create ``BASE``; the reproducers start from
    the committed bytes."""
    import numpy as np

    import medcodec

    y, x = np.mgrid[0:256, 0:256]
    img = np.stack([1000 + 600 * np.sin(x / (20 + 5 * k)) * np.cos(y / 17) + 4 * x for k in range(3)])
    return medcodec.encode(np.clip(np.rint(img), 0, 4095).astype(np.uint16), bits_stored=12, quality=75)


def _v2_frames(bits: int, signed: bool, frames: int, size: int):
    import numpy as np

    y, x = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(7)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    img = np.stack([lo + (hi - lo) * (0.4 + 0.3 * np.sin(x / (9 + 3 * k)) * np.cos(y / 7)) for k in range(frames)])
    img = img + rng.normal(0, (hi - lo) * 0.002, img.shape)
    dtype = np.int16 if signed else np.uint16
    return np.clip(np.rint(img), lo, hi).astype(dtype)


def make_v2_predictive_base() -> bytes:
    """A ``.mdc`` 2.0 predictive stream: 3 frames of 64x64, 16-bit signed, lossless
    (medcodec.encode, max_error=0): HEAD transform 1, no QTAB, FRAM with the model parameters."""
    import medcodec

    return medcodec.encode(_v2_frames(16, True, 3, 64), bits_stored=16, max_error=0)


def make_v2_near_lossless_base() -> bytes:
    """A ``.mdc`` 2.0 near-lossless stream: 2 frames of 64x64, 12-bit unsigned, max_error=3."""
    import medcodec

    return medcodec.encode(_v2_frames(12, False, 2, 64), bits_stored=12, max_error=3)


def make_v2_arith_base() -> bytes:
    """A ``.mdc`` 2.0 range-coded DCT stream: 3 frames of 96x96, 12-bit unsigned, quality 75,
    entropy="arith" (reconstruction offsets, deblocking parameters when the encoder picks them)."""
    import medcodec

    return medcodec.encode(_v2_frames(12, False, 3, 96), bits_stored=12, quality=75, entropy="arith")


def make_v25_base() -> bytes:
    """A ``.mdc`` 2.5 stream (tx25): 3 frames of 96x96, 12-bit unsigned, quality 60, the default
    but in the long layout (intra frames with mode model 2 and the per-block transform choice, FRAM
    flag 128; the long layout so that the v2 memory bombs can be built from it as from the others)."""
    import medcodec

    frames = _v2_frames(12, False, 3, 96)
    frames[:, 40:, 56:] = 1000  # blocks with flat references: no mode, no choice coded
    return medcodec.encode(frames, bits_stored=12, quality=60, compact=False)


#: ``.mdc`` 2.0 seed streams of the fuzz corpus (issue 12): name -> builder. Like ``BASE`` they
#: are written once by medcodec and then committed; ``--new-base`` rewrites them.
V2_BASES = {
    "base_v2_pred.i2.b16.f3.mdc": make_v2_predictive_base,
    "base_v2_near.u2.b12.e3.f2.mdc": make_v2_near_lossless_base,
    "base_v2_arith.u2.b12.f3.mdc": make_v2_arith_base,
    "base_v25_tx.u2.b12.f3.mdc": make_v25_base,
}
#: v2 reproducers: name -> (base name in V2_BASES, builder of that base's bytes)
V2_REPRODUCERS = {
    "v2_pred_truncated_80pct.mdc": ("base_v2_pred.i2.b16.f3.mdc", truncated_80pct),
    "v2_arith_truncated_80pct.mdc": ("base_v2_arith.u2.b12.f3.mdc", truncated_80pct),
    "v25_truncated_80pct.mdc": ("base_v25_tx.u2.b12.f3.mdc", truncated_80pct),
}


def main(argv: list[str]) -> int:
    HERE.mkdir(exist_ok=True)
    if "--new-base" in argv or not BASE.exists():
        BASE.write_bytes(make_base())
    base = BASE.read_bytes()
    for name, (build, committed) in REPRODUCERS.items():
        if committed:
            (HERE / name).write_bytes(build(base))
            print(f"wrote {HERE / name}")
    for name, make in V2_BASES.items():
        if "--new-base" in argv or not (HERE / name).exists():
            (HERE / name).write_bytes(make())
            print(f"wrote {HERE / name}")
    for name, (base_name, build) in V2_REPRODUCERS.items():
        (HERE / name).write_bytes(build((HERE / base_name).read_bytes()))
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
