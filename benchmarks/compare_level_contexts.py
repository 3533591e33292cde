#!/usr/bin/env python3
"""Level bytes of the `.mdc` default under format 2.6's and 2.11's contexts (docs/format.md §21).

Usage (from the repository root)::

    python benchmarks/compare_level_contexts.py                 # training images of ../shared/data
    python benchmarks/compare_level_contexts.py --files A.dcm   # your own images (first frame)
    python benchmarks/compare_level_contexts.py --starts        # also derive 2.11's BASE_INIT_W

Encodes each image with the default at a few qualities, keeps the residual levels its intra frames
code (the encoder's decisions do not depend on the level contexts), and codes those levels with
both context models of the multi-symbol coder (`_kernels_ms.encode_coefficients_ms`, ``within``
False / True), checking that each decodes back. Prints the bytes per image and their change: what
docs/design-notes.md "Within-block contexts" reports. With ``--starts``, also the starting
distributions of 2.11's AC base contexts derived from those levels (each neighbour bucket's symbol
frequencies, ``_kernels_ms.BASE_INIT_W``): on the training images, the table the format fixes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numba
import numpy as np
import pydicom

import medcodec
from medcodec.codec import _kernels_ms as KM
from medcodec.codec import intra

DATA = Path(os.environ.get("MEDCODEC_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
#: the images the contexts were chosen on (../shared/data)
TRAINING = ("ct_chest_lungpetctdx_A0001_philips/0030.dcm", "ct_chest_lungpetctdx_A0001_philips/0060.dcm",
            "ct_head_phantom_philips_ingenuity/0070.dcm", "mr_head_ge_signa_t1_ctk/0010.dcm",
            "mr_head_ge_signa_t1_ctk/0020.dcm", "singles/mr_384x384_12bit_unsigned.dcm",
            "singles/cr_RG3_1760x1760_10bit_uncompressed.dcm", "singles/ct_512x512_12bit_jpeg_lossless.dcm")
QUALITIES = (20, 40, 60, 75, 88)


def coded_bytes(levels: np.ndarray, bx: int, within: bool) -> int:
    """Bytes of ``levels`` under one context model, checked by decoding them back."""
    out = np.empty(levels.size * 4 + 1024, np.uint8)
    status, n = KM.encode_coefficients_ms(levels, bx, out, within)
    if status != KM.OK:
        raise RuntimeError(f"level coder status {status}")
    back = np.zeros_like(levels)
    if KM.decode_coefficients_ms(out, 0, n, bx, back, within) != KM.OK or not np.array_equal(back, levels):
        raise RuntimeError("levels do not decode back")
    return int(n)


@numba.njit
def bucket_symbols(levels, bx, counts):
    """Add, per 2.11 neighbour bucket, how often each AC base symbol (0, 1, 2, >= 3) is coded."""
    for i in range(levels.shape[0]):
        nz = 0
        for k in range(1, 64):
            if levels[i, k] != 0:
                nz += 1
        has_left, has_up = i % bx > 0, i >= bx
        k = 1
        while nz > 0:
            m = abs(np.int64(levels[i, k]))
            counts[KM._neighbour_bucket(levels, i, k, bx, has_left, has_up, True), min(m, 3)] += 1
            if m != 0:
                nz -= 1
            k += 1


def starting_cdfs(counts: np.ndarray) -> list[tuple[int, ...]]:
    """``c[0..3]`` per bucket from its symbol counts (add-one estimate, each frequency at least
    64/32768, rounded to 15 bits)."""
    out = []
    for row in counts.astype(np.float64):
        f = np.maximum(np.round((row + 1) / (row.sum() + 4) * 32768), 64)
        c = np.round(np.cumsum(f / f.sum() * 32768)).astype(int)
        out.append((0, *(int(v) for v in c[:3])))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", nargs="+", type=Path, default=[], help="DICOM files (first frame each) instead "
                    "of the training images")  # fmt: skip
    ap.add_argument("--qualities", default=",".join(map(str, QUALITIES)), help="comma-separated qualities")
    ap.add_argument("--starts", action="store_true", help="also derive 2.11's starting distributions")
    args = ap.parse_args(argv)
    files = args.files or [DATA / f for f in TRAINING]
    qualities = [float(q) for q in args.qualities.split(",")]
    captured: list[tuple[np.ndarray, int]] = []
    original = intra._encode_levels

    def capture(levels: np.ndarray, bx: int, within: bool = False, trained: bool = False) -> bytes:
        captured.append((np.ascontiguousarray(levels, np.int32).copy(), bx))
        return original(levels, bx, within, trained)

    intra._encode_levels = capture  # type: ignore[assignment]
    counts = np.zeros((KM.NBR_BUCKETS_W, 4), np.int64)
    try:
        totals = [0, 0]
        for path in files:
            ds = pydicom.dcmread(path)
            frame = ds.pixel_array if ds.pixel_array.ndim == 2 else ds.pixel_array[0]
            sizes = [0, 0]
            for q in qualities:
                captured.clear()
                medcodec.encode(frame, quality=q, bits_stored=int(ds.BitsStored),
                                signed=bool(ds.PixelRepresentation), jobs=1)  # fmt: skip
                for levels, bx in captured:  # every intra encode of the call (padding trials too)
                    for j, within in enumerate((False, True)):
                        sizes[j] += coded_bytes(levels, bx, within)
                    bucket_symbols(levels, bx, counts)
            totals[0] += sizes[0]
            totals[1] += sizes[1]
            print(f"{path.name[:44]:44s} 2.6 {sizes[0]:9d}  2.11 {sizes[1]:9d}  {100 * (sizes[1] / sizes[0] - 1):+.2f} %",
                  flush=True)  # fmt: skip
        print(f"{'all':44s} 2.6 {totals[0]:9d}  2.11 {totals[1]:9d}  {100 * (totals[1] / totals[0] - 1):+.2f} %")
        if args.starts:
            derived = starting_cdfs(counts)
            print("starting distributions by bucket (c[0..3]):")
            for n, cdf in enumerate(derived):
                print(f"  {n}: {cdf}")
            same = tuple(derived) == KM.BASE_INIT_W
            print(f"equal to _kernels_ms.BASE_INIT_W: {'yes' if same else 'no'}")
    finally:
        intra._encode_levels = original  # type: ignore[assignment]
    return 0


if __name__ == "__main__":
    sys.exit(main())
