#!/usr/bin/env python3
"""Level bytes of the `.mdc` default under format 2.6's and 2.11's contexts (docs/format.md §21).

Usage (from the repository root)::

    python benchmarks/compare_level_contexts.py                 # training images of ../shared/data
    python benchmarks/compare_level_contexts.py --files A.dcm   # your own images (first frame)
    python benchmarks/compare_level_contexts.py --starts        # also derive 2.11's BASE_INIT_W

Encodes each image with the encoder writing 2.11 (`train_level_starts.captured_levels`) at a few
qualities, keeps the residual levels its intra frames code (the encoder's decisions do not depend on
the level contexts), and codes those levels with
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

from medcodec.codec import _kernels_ms as KM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_level_starts import captured_levels, coded_bytes  # the encoder writing 2.11

DATA = Path(os.environ.get("MEDCODEC_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
#: the images the contexts were chosen on (../shared/data)
TRAINING = ("ct_chest_lungpetctdx_A0001_philips/0030.dcm", "ct_chest_lungpetctdx_A0001_philips/0060.dcm",
            "ct_head_phantom_philips_ingenuity/0070.dcm", "mr_head_ge_signa_t1_ctk/0010.dcm",
            "mr_head_ge_signa_t1_ctk/0020.dcm", "singles/mr_384x384_12bit_unsigned.dcm",
            "singles/cr_RG3_1760x1760_10bit_uncompressed.dcm", "singles/ct_512x512_12bit_jpeg_lossless.dcm")
QUALITIES = (20, 40, 60, 75, 88)


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
    qualities = tuple(float(q) for q in args.qualities.split(","))
    counts = np.zeros((KM.NBR_BUCKETS_W, 4), np.int64)
    totals = [0, 0]
    for path in files:
        sizes = [0, 0]
        for levels, bx in captured_levels([path], qualities):  # every intra encode (padding trials too)
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
        why = "no (today's encoder codes other levels than 2.11's did; the format keeps its table)"
        print(f"equal to _kernels_ms.BASE_INIT_W: {'yes' if same else why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
