#!/usr/bin/env python3
"""The `.mdc` default against OpenJPEG on images the project never tuned on (pydicom-data).

Usage (from the repository root)::

    python benchmarks/check_mdc_unseen.py              # every row below
    python benchmarks/check_mdc_unseen.py --default    # the default (2.12) and 2.11 beside it: ~3x faster
    python benchmarks/check_mdc_unseen.py --default --files A.dcm B.dcm   # your own images (first frame)

Issue 12 is checked "on real series the project has not seen". The shared data trained and
tuned the coder. Of pydicom-data's images here, two are NOT unseen after all: an outside audit
(2026-12-02, docs/audits.md) found that ``MR2_UNCR`` and ``CT_small`` hold the same pixels as
``../shared/data/singles/mr_MR2_1024x1024_12bit_uncompressed.dcm`` and
``ct_CT1_small_128x128_signed16.dcm``; they are kept for continuity and labelled. The unseen ones:
``693_UNCR`` (14-bit CT), the Siemens MR (interpolated 484x484 abdomen) and
``J2K_pixelrep_mismatch`` (a 13-bit head CT, added 2026-12-02). Each image (one frame) is swept over quality with
``bench_mdc2``'s code paths (the same rows, the same PSNR-targeted OpenJPEG anchor, peak
``2^bits_stored - 1``) and the BD-rate over 0.2-3.5 bpp is printed for format 1.0, 2.1, 2.2 (intra
frames, mode model 1, long layout: the default until 2026-11-30), the defaults of 2.4-2.6 and the
default (2.12: 2.6's intra frames in the compact layout, their levels under within-block contexts
from trained starts).
Negative: smaller than JPEG 2000 at the same PSNR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_mdc2 as B  # noqa: E402

IMAGES = ("693_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "J2K_pixelrep_mismatch.dcm", "MR2_UNCR.dcm",
          "CT_small.dcm")
#: pixels that are also in ../shared/data/singles (the tuning set): printed with this label
IN_SHARED = {"MR2_UNCR.dcm", "CT_small.dcm"}
ROWS = ("mdc v1 huffman fast", "mdc v2.1 arith fast", "mdc v2.2 intra fast (long)", "mdc v2.4 default",
        "mdc v2.4 fast, no rd mode decision",  # the default before the RD mode decision (rdmode)
        "mdc v2.5 default before joint26",  # the default before the joint mode / transform decision
        "mdc v2.5 default",
        "mdc v2.6 default",  # format 2.6's 16x16 blocks (intra.BIG_EFFORTS)
        "mdc v2.11 default",  # 2.6's frames, their levels under within-block contexts (intra.WITHIN_EFFORTS)
        "mdc v2.12 default")  # those contexts from trained starts (intra.TRAINED_EFFORTS)
ANCHOR = "jpeg2000 (OpenJPEG)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--default", action="store_true", help="the default's row and the previous default's "
                    "(2.11: the same frames and contexts, other starts) only (~3x faster)")  # fmt: skip
    ap.add_argument("--files", nargs="+", type=Path, default=[], help="DICOM files to measure (first frame each) "
                    "instead of pydicom-data's images")  # fmt: skip
    args = ap.parse_args(argv)
    rows = ROWS[-2:] if args.default else ROWS
    files = args.files
    default_bd: dict[str, float] = {}  # the default's BD-rate per image, unseen ones only
    for name in files or IMAGES:
        ds = pydicom.dcmread(name if files else get_testdata_file(name))
        name = name.name if files else name
        pixels = ds.pixel_array
        frames = pixels[None] if pixels.ndim == 2 else pixels[:1] if files else pixels
        bits, signed = int(ds.BitsStored), bool(ds.PixelRepresentation)
        codecs = B.codecs(bits, signed, False)
        curves = {}
        for label in (*rows, ANCHOR):
            enc, dec, knobs = codecs[label]
            if label == ANCHOR:  # PSNR targets spanning medcodec's PSNRs at 0.2-3.5 bpp
                ps = [p for row in rows for _, b, p in curves[row] if 0.2 <= b <= 3.5]
                knobs = tuple(np.linspace(min(ps) - 2, max(ps) + 2, 10).round(1))
            curves[label] = B.sweep(frames, bits, enc, dec, knobs)
        anchor = [(b, p) for _, b, p in curves[ANCHOR] if 0.2 <= b <= 3.5 and np.isfinite(p)]
        out = []
        for label in rows:
            sel = [(b, p) for _, b, p in curves[label] if 0.2 <= b <= 3.5 and np.isfinite(p)]
            bd = B.bd_rate([b for b, _ in anchor], [p for _, p in anchor], [b for b, _ in sel], [p for _, p in sel])
            out.append(f"{label}: {bd:+.1f} %")
            if label == ROWS[-1] and name not in IN_SHARED:
                default_bd[name] = bd
        seen = " (pixels in ../shared/data: NOT unseen)" if name in IN_SHARED else ""
        print(f"{name}{seen} {frames.shape} {bits}-bit {'signed' if signed else 'unsigned'}: " + "; ".join(out),
              flush=True)  # fmt: skip
    if default_bd:  # issue 12's targets: <= 0 on each image, <= -10 % on average
        values = list(default_bd.values())
        worst = max(default_bd, key=default_bd.__getitem__)
        mean = float(np.mean(values))
        print(f"\n{ROWS[-1]} over {len(values)} unseen image(s): mean {mean:+.1f} % (target <= -10 %: "
              f"{'met' if mean <= -10 else 'NOT met'}); worst {default_bd[worst]:+.1f} % ({worst}; target <= 0 on each: "
              f"{'met' if default_bd[worst] <= 0 else 'NOT met'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
