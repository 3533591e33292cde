#!/usr/bin/env python3
"""Derive format 2.12's trained starts of the intra frames' contexts (docs/format.md §22) from ../shared/data.

Usage (from the repository root)::

    python benchmarks/train_level_starts.py            # check: derive the table, compare with the shipped one
    python benchmarks/train_level_starts.py --write    # write _level_starts.py and _kernels_intra.py's block
    python benchmarks/train_level_starts.py --files A.dcm B.dcm   # level bytes of 2.11 and 2.12 on your images

Every context of format 2.11's level coder (§21) starts a frame at a fixed distribution: uniform, or for
the AC base symbols one of nine per neighbour bucket. A small frame has too few symbols to learn 3652
contexts: on 192 x 192 to 512 x 512 images 2-8 % of the level bytes went to learning. Format 2.12
starts every context from what the training images taught it instead:

1. The default encoder (`medcodec.encode`, qualities :data:`QUALITIES`) codes each training image
   (:data:`TRAINING`: evenly spaced slices of the three series and the single images of
   ../shared/data, frames of fewer than `FINE_POSITION_BLOCKS` blocks); its residual levels are
   captured (the encoder's decisions do not depend on the level contexts).
2. Each frame's levels are coded with 2.11's starts (`_kernels_ms.encode_with_model`), and every
   context's distribution at the end of the frame is kept with its count (the symbols it saw, at most
   127).
3. A context's trained start is the count-weighted mean of those distributions over all frames,
   rounded, each symbol kept at least `FLOOR` wide; its count starts at min(:data:`START_COUNT`, the
   weight it was trained on). A context no training frame used keeps 2.11's start and count 0.

The table (15020 int16: per context its count, then ``c[1] .. c[n-1]``, in §21's layout for the
position classes of frames under `FINE_POSITION_BLOCKS` blocks) is written as zlib + base64 with its
SHA-256 to `src/medcodec/codec/_level_starts.py`; `_kernels_ms` derives the table of larger frames
from it (each zigzag position takes its band's rows). The mode segment's four models (§19: the 8x8
mode, the transform choice, the split symbol, the 16x16 mode) are trained the same way from the
segments the encoder wrote and written as literals between the markers of `_kernels_intra.py`.
Both are derived from the encoder writing 2.11 (`intra.TRAINED_EFFORTS = ()`: uniform mode starts,
which the encoder's mode decision prices with), so the derivation does not depend on its own result. The run is deterministic: on the same data and
encoder it derives the same bytes. The shipped table is part of format 2.12 and never changes with
it: once the encoder's decisions change (another lambda, another search), the levels and so the
derived table differ, and the check says so; that is not an error of the format.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
import zlib
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pydicom

import medcodec
from medcodec.codec import _kernels_intra as KI
from medcodec.codec import _kernels_ms as KM
from medcodec.codec import intra

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEDCODEC_DATA", REPO.parent / "shared" / "data"))
OUT = REPO / "src" / "medcodec" / "codec" / "_level_starts.py"
MODES_OUT = REPO / "src" / "medcodec" / "codec" / "_kernels_intra.py"
BEGIN, END = "# BEGIN trained mode starts\n", "# END trained mode starts\n"
#: The mode segment's models: (name in _kernels_intra, the 2.11 start, symbols per row).
MODE_MODELS = (("TRAINED_MODE_MODEL", KI.INITIAL_MODE_MODEL, KI.N_MODES),
               ("TRAINED_TX_MODEL", KI.INITIAL_TX_MODEL, 2),
               ("TRAINED_SPLIT_MODEL", KI.INITIAL_SPLIT_MODEL, 2),
               ("TRAINED_MODE16_MODEL", KI.INITIAL_MODE16_MODEL, KI.N_MODES16))  # fmt: skip
SERIES = ("ct_chest_lungpetctdx_A0001_philips", "ct_head_phantom_philips_ingenuity", "mr_head_ge_signa_t1_ctk")
SLICES_PER_SERIES = 12
SINGLES = ("ct_512x512_signed16_j2k_lossless", "ct_CT1_small_128x128_signed16", "mr_384x384_12bit_unsigned",
           "mr_MR1_small_64x64_signed16", "nm_NM1_1024x256_signed16_jpeg_lossless",
           "ct_enhanced_multiframe_2f_512x512", "ct_512x512_12bit_jpeg_lossless")  # fmt: skip
QUALITIES = (15, 30, 45, 60, 72, 85, 95)
#: A trained context's starting count: its first symbols move it by 1/32, as after 15 symbols (measured on
#: 22 unseen images, stream bytes against 2.11's starts: 3 / 7 / 15 / 31 / 63 gave -2.55 / -2.80 / -2.82 /
#: -2.67 / -2.45 %).
START_COUNT = 15


def training_files(data: Path) -> list[Path]:
    """The training images: :data:`SLICES_PER_SERIES` evenly spaced slices of each of :data:`SERIES`
    and the :data:`SINGLES`."""
    out = []
    for name in SERIES:
        files = sorted((data / name).glob("*.dcm"))
        n = len(files)
        out += [files[i * n // (SLICES_PER_SERIES + 1) - 1] for i in range(1, SLICES_PER_SERIES + 1)]
    return out + [data / "singles" / f"{name}.dcm" for name in SINGLES]


def captured_levels(files: list[Path], qualities: tuple[float, ...],
                    modes: list[tuple] | None = None) -> list[tuple[np.ndarray, int]]:  # fmt: skip
    """The residual levels of every intra frame the encoder writing 2.11 codes for ``files`` at
    ``qualities`` (first frame of each file); ``modes``: also collect the arguments of each 2.6 mode
    segment (``_kernels_intra.encode_modes26``) there."""
    captured: list[tuple[np.ndarray, int]] = []
    original = intra._encode_levels
    original_modes = KI.encode_modes26

    def capture(levels: np.ndarray, bx: int, within: bool = False, trained: bool = False) -> bytes:
        captured.append((np.ascontiguousarray(levels, np.int32).copy(), bx))
        return original(levels, bx, within, trained)

    def capture_modes(*args: object) -> object:
        if modes is not None:
            modes.append(tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args[:6]))
        return original_modes(*args)

    with (
        patch.object(intra, "_encode_levels", capture),
        patch.object(KI, "encode_modes26", capture_modes),
        patch.object(intra, "TRAINED_EFFORTS", ()),
    ):
        for path in files:
            ds = pydicom.dcmread(path)
            frame = ds.pixel_array if ds.pixel_array.ndim == 2 else ds.pixel_array[0]
            for q in qualities:
                medcodec.encode(frame, quality=q, bits_stored=int(ds.BitsStored),
                                signed=bool(ds.PixelRepresentation), jobs=1)  # fmt: skip
            print(f"  {path.parent.name[:20]}/{path.name}", flush=True)
    return captured


def coded_bytes(levels: np.ndarray, bx: int, within: bool, trained: bool = False) -> int:
    """Bytes of ``levels`` under one context model (``trained``: from 2.12's starts), checked by decoding
    them back."""
    out = np.empty(levels.size * 4 + 1024, np.uint8)
    status, n = KM.encode_coefficients_ms(levels, bx, out, within, trained)
    if status != KM.OK:
        raise RuntimeError(f"level coder status {status}")
    back = np.zeros_like(levels)
    if KM.decode_coefficients_ms(out, 0, n, bx, back, within, trained) != KM.OK or not np.array_equal(back, levels):
        raise RuntimeError("levels do not decode back")
    return int(n)


def averaged(total: np.ndarray, weight: np.ndarray, start: np.ndarray, offsets: np.ndarray,
             alphabet: np.ndarray) -> np.ndarray:  # fmt: skip
    """A model (the §13.1 layout) from the count-weighted sums of its rows' final distributions: each
    row rounded, every symbol at least FLOOR wide, count min(START_COUNT, weight); an untrained row keeps
    ``start``."""
    table = start.astype(np.int64)
    for ctx, (base, n) in enumerate(zip(offsets, alphabet)):
        if weight[ctx] == 0:
            continue
        c = np.rint(total[base + 1 : base + n] / weight[ctx]).astype(np.int64)
        for i in range(c.size):  # every symbol at least FLOOR wide, from both ends
            c[i] = max(c[i], (c[i - 1] if i else 0) + KM.FLOOR)
        for i in range(c.size - 1, -1, -1):
            c[i] = min(c[i], (c[i + 1] if i + 1 < c.size else KM.CDF_ONE) - KM.FLOOR)
        table[base + 1 : base + n] = c
        table[base] = min(START_COUNT, round(weight[ctx]))
    return table.astype(np.int16)


def accumulate(model: np.ndarray, offsets: np.ndarray, alphabet: np.ndarray, total: np.ndarray,
               weight: np.ndarray) -> None:  # fmt: skip
    """Add a model's final rows, each weighted by its count, to ``total`` / ``weight``."""
    for ctx, (base, n) in enumerate(zip(offsets, alphabet)):
        w = float(model[base])
        if w > 0:
            total[base + 1 : base + n] += w * model[base + 1 : base + n]
            weight[ctx] += w


def train_modes(segments: list[tuple]) -> dict[str, np.ndarray]:
    """The mode segment's four trained models from the captured segments."""
    layouts = [(name, start, np.arange(0, start.size, n), np.full(start.size // n, n)) for name, start, n in MODE_MODELS]
    totals = [np.zeros(start.size) for _, start, _, _ in layouts]
    weights = [np.zeros(len(off)) for _, _, off, _ in layouts]
    for seg in segments:
        models = [start.copy() for _, start, _, _ in layouts]
        out = np.empty(1 << 22, np.uint8)
        status, _ = KI.encode_modes26_with(*seg, out, *models)
        if status != KI.OK:
            raise RuntimeError(f"mode coder status {status}")
        for (_, _, off, alph), model, total, weight in zip(layouts, models, totals, weights):
            accumulate(model, off, alph, total, weight)
    return {name: averaged(total, weight, start, off, alph)
            for (name, start, off, alph), total, weight in zip(layouts, totals, weights)}  # fmt: skip


def modes_block(tables: dict[str, np.ndarray]) -> str:
    lines = [BEGIN, "# fmt: off\n"]
    for name, table in tables.items():
        values = ", ".join(str(int(v)) for v in table)
        text = f"{name} = np.array([{values}], dtype=np.int16)"
        while len(text) > 118:  # wrap at a comma
            cut = text.rfind(", ", 0, 117) + 1
            lines.append(text[:cut] + "\n")
            text = "    " + text[cut + 1 :]
        lines.append(text + "\n")
    lines += ["# fmt: on\n", END]
    return "".join(lines)


def train(frames: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """The trained table (see the module docstring) from the frames' levels."""
    offsets, alphabet = KM.OFFSET_W[:-1], KM.ALPHABET_W
    total = np.zeros(int(KM.OFFSET_W[-1]))
    weight = np.zeros(len(alphabet))
    for levels, bx in frames:
        if levels.shape[0] >= KM.FINE_POSITION_BLOCKS:
            continue  # other position classes (§13.2 step 3); their table is derived from this one
        model = KM.INITIAL_MODEL_W.copy()
        out = np.empty(levels.size * 4 + 1024, np.uint8)
        status, _ = KM.encode_with_model(levels, bx, out, True, model)
        if status != KM.OK:
            raise RuntimeError(f"level coder status {status}")
        accumulate(model, offsets, alphabet, total, weight)
    return averaged(total, weight, KM.INITIAL_MODEL_W, offsets, alphabet)


def module_text(table: np.ndarray) -> str:
    raw = table.astype("<i2").tobytes()
    blob = base64.b64encode(zlib.compress(raw, 9)).decode("ascii")
    lines = [blob[i : i + 100] for i in range(0, len(blob), 100)]
    body = "\n".join(f'    "{line}"' for line in lines)
    return (
        '"""Format 2.12\'s trained starts of the level contexts (docs/format.md §22): generated by\n'
        "``python benchmarks/train_level_starts.py --write`` from ../shared/data; do not edit.\n\n"
        f"{table.size} int16, little-endian (per context of §21's layout its count, then ``c[1] .. c[n-1]``),\n"
        'zlib-compressed, base64; :data:`SHA256` is the hash of the uncompressed bytes."""\n\n'
        f'SHA256 = "{hashlib.sha256(raw).hexdigest()}"\n'
        f"STARTS = (\n{body}\n)\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"write {OUT.relative_to(REPO)}")
    ap.add_argument("--files", nargs="+", type=Path, default=[], help="DICOM files: report 2.11 / 2.12 level "
                    "bytes on them (no training)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.files:
        for path in args.files:
            frames = captured_levels([path], QUALITIES)
            old, new = (sum(coded_bytes(lv, bx, True, trained) for lv, bx in frames) for trained in (False, True))
            print(f"{path.name[:44]:44s} 2.11 {old:9d}  2.12 {new:9d}  {100 * (new / old - 1):+.2f} %", flush=True)
        return 0
    print(f"training images ({DATA}):")
    segments: list[tuple] = []
    frames = captured_levels(training_files(DATA), QUALITIES, segments)
    table = train(frames)
    shipped = np.array_equal(table, KM.TRAINED_MODEL)
    print(f"{len(frames)} frames; derived level table {'equals' if shipped else 'DIFFERS from'} the shipped one "
          f"(sha256 {hashlib.sha256(table.astype('<i2').tobytes()).hexdigest()[:16]}...)")  # fmt: skip
    tables = train_modes(segments)
    same = all(np.array_equal(t, getattr(KI, name)) for name, t in tables.items())
    print(f"{len(segments)} mode segments; derived mode tables {'equal' if same else 'DIFFER from'} the shipped ones")
    if args.write:
        OUT.write_text(module_text(table))
        source = MODES_OUT.read_text()
        i, j = source.index(BEGIN), source.index(END) + len(END)
        MODES_OUT.write_text(source[:i] + modes_block(tables) + source[j:])
        print(f"wrote {OUT.relative_to(REPO)} and the block of {MODES_OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
