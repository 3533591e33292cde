#!/usr/bin/env python3
"""Lossless and near-lossless: medcodec ``max_error=k`` (.mdc v2 predictive) against CharLS and JPEG XL.

Usage (from the repository root)::

    python benchmarks/bench_lossless.py                  # ../shared/data + pydicom-data, 8 frames per series
    python benchmarks/bench_lossless.py --frames 16 --near 0 1 2 4 --markdown out.md
    python benchmarks/bench_lossless.py --files a.dcm b.dcm  # your own DICOM files instead (up to --frames each)

For each image set (the CT and MR series of the shared data, evenly spaced frames; the
single CR/DX/MR radiographs of the shared data and of pydicom-data) it codes every frame with
medcodec (``max_error=k``, one thread, the encoder's own check-by-decoding included in its
time), CharLS (``near=k``) and, for k = 0, JPEG XL lossless (libjxl default effort), all in the
same process. It checks that every decode is bit-exact (k = 0) or within k, and prints total
bytes, sizes as a ratio to CharLS (< 1: medcodec smaller) and speed as a ratio to CharLS
(> 1: medcodec faster; best of ``--repeat``). Both run on the calling thread, and their time is
that thread's CPU time (``time.thread_time``), which other work on a busy machine disturbs far
less than wall time does.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402

import medcodec  # noqa: E402
from medcodec import external  # noqa: E402
from medcodec.spec import PixelSpec  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
SERIES = ("ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity", "mr_head_ge_signa_t1_ctk")
SINGLES = (
    "singles/cr_RG3_1760x1760_10bit_uncompressed.dcm",
    "singles/dx_chest_2128x2000_12bit_mono1_j2k_lossless.dcm",
    "singles/mr_MR2_1024x1024_12bit_uncompressed.dcm",
    "singles/ct_512x512_signed16_j2k_lossless.dcm",
)
# CR 15-bit, CT 14-bit signed (MR2 is in the shared singles), an 8-bit ultrasound frame (72 % black,
# burned-in labels: what run mode, format 2.7, is for; stored as JPEG lossless, decoded by the plugins),
# an 8-bit palette ultrasound (indices; label bands, text on black: format 2.8's modular levels and
# run contexts) and a 1-bit segmentation of 3 frames
PYDICOM_DATA = ("RG1_UNCR.dcm", "693_UNCR.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "OBXXXX1A.dcm", "liver.dcm")


def _frames_of(paths: list[Path], n: int) -> tuple[np.ndarray, int, bool]:
    picks = sorted({round(i * (len(paths) - 1) / max(n - 1, 1)) for i in range(n)}) if len(paths) > 1 else [0]
    frames, bits, signed = [], 12, False
    for i in picks:
        ds = pydicom.dcmread(paths[i])
        bits, signed = int(ds.BitsStored), bool(ds.PixelRepresentation)
        arr = np.asarray(ds.pixel_array)
        frames.extend(arr[:n] if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 else [arr])
    return np.stack(frames), bits, signed


def image_sets(data: Path, n: int, files: list[Path] | None = None) -> list[tuple[str, np.ndarray, int, bool]]:
    if files:
        return [(f"file:{f.name}", *_frames_of([f], n)) for f in files]
    sets = []
    for name in SERIES:
        paths = sorted((data / name).glob("*.dcm"))
        if paths:
            sets.append((name, *_frames_of(paths, n)))
    for rel in SINGLES:
        if (data / rel).exists():
            sets.append((Path(rel).stem, *_frames_of([data / rel], 1)))
    from pydicom.data import get_testdata_file

    for name in PYDICOM_DATA:  # pydicom's own test files and the pydicom-data package's
        path = get_testdata_file(name)
        if path is None:  # pydicom-data not installed: report, go on
            print(f"{name} skipped: not among pydicom's test files (pip install pydicom-data)", file=sys.stderr)
            continue
        sets.append((f"pydicom:{name}", *_frames_of([Path(path)], n)))
    return sets


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.thread_time()
        out = fn()
        best = min(best, time.thread_time() - t)
    return best, out


def run(data: Path, n: int, nears: list[int], repeat: int, jxl: bool, files: list[Path] | None = None) -> list[dict]:
    rows = []
    for name, frames, bits, signed in image_sets(data, n, files):
        # stored values within bits_stored (some files carry garbage above it: mask like the reader)
        spec = PixelSpec(bits_stored=bits, signed=signed)
        frames = np.clip(frames, *medcodec.spec.value_range(bits, signed)).astype(frames.dtype)
        uns = [external.to_unsigned(f, spec)[0] for f in frames]
        for k in nears:
            if k and 2 * k + 1 >= 1 << bits:  # every value within k of one constant (1-bit data, k >= 1)
                continue
            row = dict(set=name, shape=list(frames.shape), bits=bits, signed=signed, k=k, mdc=0, charls=0, jxl=0,
                       t_mdc_enc=0.0, t_mdc_dec=0.0, t_jls_enc=0.0, t_jls_dec=0.0, max_err=0)  # fmt: skip
            for f, u in zip(frames, uns):
                te, blob = _best(lambda: medcodec.encode(f, bits_stored=bits, signed=signed, max_error=k, jobs=1), repeat)
                td, dec = _best(lambda: medcodec.decode(blob, jobs=1), repeat)
                err = int(np.abs(dec.astype(np.int64) - f).max())
                assert err <= k, (name, k, err)
                tje, jls = _best(lambda: external.jpegls_encode(u, near=k), repeat)
                tjd, jdec = _best(lambda: external.jpegls_decode(jls), repeat)
                assert int(np.abs(jdec.astype(np.int64) - u).max()) <= k
                row["mdc"] += len(blob) - 0  # whole stream, headers included
                row["charls"] += len(jls)
                row["t_mdc_enc"] += te
                row["t_mdc_dec"] += td
                row["t_jls_enc"] += tje
                row["t_jls_dec"] += tjd
                row["max_err"] = max(row["max_err"], err)
                if k == 0 and jxl:
                    x = external.jpegxl_encode(u)
                    assert np.array_equal(external.jpegxl_decode(x).reshape(u.shape), u)
                    row["jxl"] += len(x)
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _line(r: dict) -> str:
    raw = int(np.prod(r["shape"])) * (1 if r["bits"] <= 8 else 2)
    jxl = f" jxl/charls {r['jxl'] / r['charls']:.3f}" if r["jxl"] else ""
    return (
        f"{r['set']:<42s} k={r['k']}: mdc {r['mdc']:>9d} B ({raw / r['mdc']:.2f}:1) charls {r['charls']:>9d} B "
        f"mdc/charls {r['mdc'] / r['charls']:.3f}{jxl} | speed vs charls: enc {r['t_jls_enc'] / r['t_mdc_enc']:.2f}x "
        f"dec {r['t_jls_dec'] / r['t_mdc_dec']:.2f}x | max err {r['max_err']}"
    )


def markdown(rows: list[dict]) -> str:
    out = [
        "| image set | k | medcodec bytes | CharLS bytes | medcodec / CharLS | JPEG XL / CharLS | enc speed vs CharLS | dec speed vs CharLS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        jxl = f"{r['jxl'] / r['charls']:.3f}" if r["jxl"] else "-"
        out.append(
            f"| {r['set']} {tuple(r['shape'])} {r['bits']}-bit{' signed' if r['signed'] else ''} | {r['k']} | {r['mdc']} | "
            f"{r['charls']} | {r['mdc'] / r['charls']:.3f} | {jxl} | {r['t_jls_enc'] / r['t_mdc_enc']:.2f}x | "
            f"{r['t_jls_dec'] / r['t_mdc_dec']:.2f}x |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--near", type=int, nargs="+", default=[0, 1, 2, 4])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-jxl", action="store_true", help="skip JPEG XL (slow)")
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--files", nargs="+", type=Path, help="DICOM files to measure instead of the built-in sets")
    args = ap.parse_args(argv)
    medcodec.decode(medcodec.encode(np.zeros((16, 16), np.uint16), bits_stored=12, max_error=0))  # compile/load kernels
    rows = run(args.data, args.frames, args.near, args.repeat, not args.no_jxl, args.files)
    lossless = [r for r in rows if r["k"] == 0]
    if lossless:
        tot = sum(r["mdc"] for r in lossless) / sum(r["charls"] for r in lossless)
        worst = max(lossless, key=lambda r: r["mdc"] / r["charls"])
        print(f"lossless total medcodec/CharLS {tot:.3f}; worst {worst['set']} {worst['mdc'] / worst['charls']:.3f}")
    if args.markdown:
        args.markdown.write_text(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
