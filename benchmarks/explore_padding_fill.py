#!/usr/bin/env python3
"""Issue 12: what filling the padding before coding (``mdc.FILL_PADDING``) and the default declaring
padding itself (``mdc.AUTO_PADDING``) change, image by image. Measurement only.

Usage (from the repository root; about a minute)::

    nice -n 10 .venv/bin/python benchmarks/explore_padding_fill.py

For pydicom-data's CT and MR images and the middle slice of each shared series, the default
``.mdc`` coder at qualities 25-97: BD-rate (cubic, 0.2-3.5 bpp, PSNR over every voxel, peak
``2^bits_stored - 1``) of the default as it is against the default with ``AUTO_PADDING`` off
(the padding coded as voxels, as before 2026-12-03), whether any stream changed, and the encode
time of the ten qualities. For the CT that declares Pixel Padding Value (``693_UNCR``) also the
padding declared explicitly, with and without the fill, against nothing declared.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

import medcodec
from medcodec.codec import mdc
from medcodec.evaluate.bjontegaard import bd_rate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_mdc2 as B  # noqa: E402

QUALITIES = (25, 35, 45, 55, 65, 72, 80, 87, 93, 97)
TESTDATA = ("693_UNCR.dcm", "J2K_pixelrep_mismatch.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "bad_sequence.dcm",
            "explicit_VR-UN.dcm", "CT_small.dcm", "MR_small.dcm")  # fmt: skip


def curve(img: np.ndarray, bits: int, signed: bool, **kw) -> tuple[list[tuple[float, float]], float, list[bytes]]:
    peak, pts, streams, spent = (1 << bits) - 1, [], [], 0.0
    for q in QUALITIES:
        t = time.perf_counter()
        data = medcodec.encode(img, bits_stored=bits, signed=signed, quality=q, jobs=1, **kw)
        spent += time.perf_counter() - t
        out = np.asarray(medcodec.decode(data, jobs=1)).reshape(img.shape).astype(np.float64)
        pts.append((len(data) * 8 / img.size, 10 * np.log10(peak**2 / np.mean((out - img) ** 2))))
        streams.append(data)
    return pts, spent, streams


def bd(anchor, test) -> float:
    a = [(r, p) for r, p in anchor if 0.2 <= r <= 3.5]
    t = [(r, p) for r, p in test if 0.2 <= r <= 3.5]
    return bd_rate([r for r, _ in a], [p for _, p in a], [r for r, _ in t], [p for _, p in t])


def main() -> int:
    sets = []
    for name in TESTDATA:
        ds = pydicom.dcmread(get_testdata_file(name))
        px = ds.pixel_array
        sets.append((name, px if px.ndim == 2 else px[0], int(ds.BitsStored), bool(ds.PixelRepresentation)))
    for folder in B.SERIES:
        paths = sorted((B.DEFAULT_DATA / folder).glob("*.dcm"))
        ds = pydicom.dcmread(paths[len(paths) // 2])
        sets.append((folder, ds.pixel_array, int(ds.BitsStored), bool(ds.PixelRepresentation)))
    for name, img, bits, signed in sets:
        mdc.AUTO_PADDING = False
        before, t0, s0 = curve(img, bits, signed)
        mdc.AUTO_PADDING = True
        now, t1, s1 = curve(img, bits, signed)
        changed = "changed" if s0 != s1 else "byte for byte as before"
        print(f"{name:40s} default (auto padding) vs before: {bd(before, now):+7.2f} %, {changed}; "
              f"encode {t0:.2f} -> {t1:.2f} s", flush=True)  # fmt: skip
        if name == "693_UNCR.dcm":
            for fill in (False, True):
                mdc.FILL_PADDING = fill
                declared, _, _ = curve(img, bits, signed, padding=(-2000, -2000))
                print(f"{'':40s} padding declared, {'filled' if fill else 'coded as it is'}: "
                      f"{bd(before, declared):+7.2f} %", flush=True)  # fmt: skip
            mdc.FILL_PADDING = True
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
