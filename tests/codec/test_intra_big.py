"""Format 2.6: 16x16 blocks, DC, SMOOTH or paeth (FRAM flag 256 compact / 64 long, ``docs/format.md`` §19).

Macroblocks in raster order, each full one's split symbol first; a 16x16 block's coefficients are
coded as four pseudo 8x8 blocks by the unchanged 2.1 level coder; the 8x8 blocks of a split one in
Z order. Checked here: the 16-point DCT's doubles against the spec's table, the dense and the
zero-skipping inverse against each other, the kernel decoder against the encoder's reconstruction
and against a plain-Python reading of §19 (split symbols, modes, choices; the literal dense inverse
of every 16x16 block), that real slices take both sizes, the printed bound (its 16x16 term from the
matrix) on real data, refusals of damaged segments and of the flag outside 2.6, and the switch.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest

import medcodec
from medcodec.codec import _kernels_intra as KI
from medcodec.codec import _kernels_ms as KM
from medcodec.codec import container, intra, mdc2, quantize
from medcodec.codec.framecoder import FrameCoder
from medcodec.codec.transform import DCT_MATRIX
from medcodec.codec.zigzag import ZIGZAG
from medcodec.errors import CodecError, CorruptStreamError

DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "format.md"


def _coder(bits: int, signed: bool, q: float) -> FrameCoder:
    return FrameCoder.for_table(quantize.quant_table(q, bits), bits, signed)


def _frame(shape: tuple[int, int] = (56, 72), seed: int = 3) -> np.ndarray:
    """12-bit: a smooth gradient (16x16 blocks pay), an edge pattern with noise (8x8 blocks pay) and a
    constant region; 56 x 72 leaves a last macroblock row and column that are not full."""
    rng = np.random.default_rng(seed)
    y, x = np.indices(shape)
    img = 1500 + 300 * np.sin(x / 19 + y / 23) + 6 * y
    edges = (x > 36) & (y < 30)
    img[edges] += 400 * ((x + 2 * y) % 29 < 9)[edges] + rng.normal(0, 30, shape)[edges]
    img[40:, 48:] = 300
    return np.clip(np.rint(img), 0, 4095).astype(np.uint16)


def _encode26(frame: np.ndarray, coder: FrameCoder, effort: str = "fast") -> tuple[intra.IntraFrame, np.ndarray, float]:
    scaled = coder.scaled(frame)
    offsets = mdc2.reconstruction_offsets(mdc2.round_scaled(scaled), scaled)
    bound = mdc2.error_bound_with_offsets(coder.steps, offsets, tx=True, big=True)
    return intra.encode_intra_frame(frame, coder, offsets, effort, 4, bound), offsets, bound


def _levels(payload: bytes, shape: tuple[int, int], within: bool = True) -> tuple[np.ndarray, int]:
    """The frame's levels and mode segment length (``within``: 2.11's level contexts from 2.12's trained
    starts, what :func:`_encode26` writes; False: a 2.6 stream's)."""
    rows, cols = (s + (-s % 8) for s in shape)
    n = struct.unpack_from("<I", payload)[0]
    data = np.frombuffer(payload, np.uint8)
    levels = np.zeros((rows * cols // 64, 64), np.int32)
    assert KM.decode_coefficients_ms(data, 4 + n, data.size, cols // 8, levels, within, within) == KM.OK
    return levels, n


def _kernel_decode(payload: bytes, shape: tuple[int, int], coder: FrameCoder, offsets: np.ndarray,
                   plain: bool = False, within: bool = True) -> tuple[int, np.ndarray, np.ndarray, np.ndarray,
                                                                       np.ndarray]:  # fmt: skip
    """(status, padded reconstruction, modes, choices, split) of :func:`._kernels_intra.decode_intra26`
    (``within``: a 2.12 frame, what :func:`_encode26` writes: 2.11's level contexts and every model from
    2.12's trained starts; False: a 2.6 frame's)."""
    rows, cols = (s + (-s % 8) for s in shape)
    levels, n = _levels(payload, shape, within)
    nb = levels.shape[0]
    recon, modes, txc = np.empty((rows, cols), np.int64), np.zeros(nb, np.int64), np.zeros(nb, np.uint8)
    split = np.zeros(((rows // 8 + 1) // 2) * ((cols // 8 + 1) // 2), np.uint8)
    status = KI.decode_intra26(np.frombuffer(payload, np.uint8), 4, 4 + n, levels,
                               coder.steps.astype(float).reshape(8, 8), ZIGZAG.astype(np.int64),
                               intra._offsets(offsets), DCT_MATRIX, np.int64(coder.offset), np.int64(coder._lo),
                               np.int64(coder._hi), recon, modes, intra.flat_tolerance(coder), KI.DST7, txc, split,
                               KI.DCT16, plain, within)  # fmt: skip
    return status, recon, modes, txc, split


def _reference_agrees(payload: bytes, shape: tuple[int, int], coder: FrameCoder, recon: np.ndarray,
                      modes: np.ndarray, txc: np.ndarray, split: np.ndarray, within: bool = True) -> np.ndarray:  # fmt: skip
    """The plain-Python reading of §19 (:func:`.intra.decode_modes26_reference`) finds the kernel's
    modes, choices and split symbols in ``payload``; returns the frame's levels."""
    levels, n = _levels(payload, shape, within)
    ref_modes, choices, ref_split = intra.decode_modes26_reference(payload[4 : 4 + n], recon, levels, coder.offset,
                                                                   intra.flat_tolerance(coder), within)  # fmt: skip
    np.testing.assert_array_equal(ref_split, split)
    np.testing.assert_array_equal(ref_modes, modes)
    np.testing.assert_array_equal(choices, txc)
    return levels


def _literal_pred16(mode: int, top: list[int], left: list[int], corner: int) -> list[list[int]]:
    """§19's 16x16 prediction of ``mode`` (0 DC, 1 SMOOTH, 2 paeth) as written."""
    w = [255, 225, 196, 170, 145, 123, 102, 84, 68, 54, 43, 33, 26, 20, 17, 16]
    if mode == 0:
        return [[(sum(top) + sum(left) + 16) >> 5] * 16 for _ in range(16)]
    if mode == 1:
        return [[(w[i] * top[j] + (256 - w[i]) * left[15] + w[j] * left[i] + (256 - w[j]) * top[15] + 256) >> 9
                 for j in range(16)] for i in range(16)]  # fmt: skip
    out = []
    for i in range(16):
        row = []
        for j in range(16):
            b = top[j] + left[i] - corner
            row.append(min((left[i], top[j], corner), key=lambda r: abs(b - r)))  # ties: the first in that order
        out.append(row)
    return out


def _literal_big(recon: np.ndarray, levels: np.ndarray, split: np.ndarray, modes: np.ndarray, coder: FrameCoder,
                 offsets: np.ndarray, mid: int) -> np.ndarray:  # fmt: skip
    """§19's 16x16 blocks as written, on the kernel's own output (their references are final before
    them): the prediction of the mode their positions carry, the pseudo-block layout, ``E = C16^T D
    C16`` summed densely in index order. Returns ``recon`` with every 16x16 block recomputed so."""
    out = recon.copy()
    cols = recon.shape[1]
    bx, nmx = cols // 8, (cols // 8 + 1) // 2
    steps = coder.steps.astype(np.float64).reshape(8, 8)
    off = intra._offsets(offsets)
    c16 = KI.DCT16.tolist()
    for m in np.flatnonzero(split == 0):
        r0, c0 = 16 * (m // nmx), 16 * (m % nmx)
        top = [int(v) for v in recon[r0 - 1, c0 : c0 + 16]] if r0 else None
        left = [int(v) for v in recon[r0 : r0 + 16, c0 - 1]] if c0 else None
        if top is None and left is None:
            top, left, corner = [mid] * 16, [mid] * 16, mid
        elif top is None:
            top, corner = [left[0]] * 16, left[0]  # type: ignore[index]
        elif left is None:
            left, corner = [top[0]] * 16, top[0]
        else:
            corner = int(recon[r0 - 1, c0 - 1])
        p = _literal_pred16(int(modes[(r0 // 8) * bx + c0 // 8]), top, left, corner)  # type: ignore[arg-type]
        D = [[0.0] * 16 for _ in range(16)]
        for u in range(16):
            for v in range(16):
                b = (r0 // 8 + u % 2) * bx + c0 // 8 + v % 2
                pos = 8 * (u // 2) + v // 2
                k = int(np.flatnonzero(ZIGZAG == pos)[0])
                lv = int(levels[b, k])
                q = 256 * lv - (1 if lv > 0 else -1 if lv < 0 else 0) * int(off[k])
                D[u][v] = q * float(steps[u // 2, v // 2]) / 256
        tmp = [[sum(c16[uu][i] * D[uu][v] for uu in range(16)) for v in range(16)] for i in range(16)]
        for i in range(16):
            for j in range(16):
                e = sum(tmp[i][v] * c16[v][j] for v in range(16))
                out[r0 + i, c0 + j] = min(max(p[i][j] + int(np.floor(e + 0.5)), coder._lo), coder._hi)
    return out


def test_dct16_is_the_table_of_the_spec_and_orthonormal() -> None:
    text = DOCS.read_text()
    section = text[text.index("## 19.") :]
    rows = re.findall(r"^\| (\d+) \| ((?:`-?0x[0-9a-f.p+-]+` ?)+)\|", section, flags=re.M)
    table = np.array([[float.fromhex(v.strip("`")) for v in r[1].split()] for r in rows])
    assert table.shape == (16, 16)
    np.testing.assert_array_equal(KI.DCT16, table)  # the very doubles: decoders must match
    np.testing.assert_allclose(KI.DCT16 @ KI.DCT16.T, np.eye(16), atol=1e-14)


def test_reconstruct16_twin_equals_the_dense_form() -> None:
    """The zero-skipping inverse against §19's dense sums, on sparse and dense random levels."""
    rng = np.random.default_rng(1)
    steps = quantize.quant_table(40.0, 12).astype(np.float64).reshape(8, 8)
    stepz = steps.ravel()[ZIGZAG]
    off = np.concatenate([[0], rng.integers(0, 60, 63)]).astype(np.int64)
    quad = np.array([0, 1, 2, 3], np.int64)
    for density in (0.0, 0.02, 0.2, 1.0):
        levels = (rng.integers(-6, 7, (4, 64)) * (rng.random((4, 64)) < density)).astype(np.int32)
        pred = rng.integers(1500, 2500, 256).astype(np.int64)
        outs = []
        for fn in (KI.reconstruct16, KI.reconstruct16_plain):
            recon = np.zeros((16, 16), np.int64)
            fn(levels, quad, stepz, ZIGZAG.astype(np.int64), off, KI.DCT16, pred, 0, 4095, np.empty(256),
               np.empty(256), np.empty(256), recon, 0, 0)  # fmt: skip
            outs.append(recon)
        np.testing.assert_array_equal(outs[0], outs[1])


def test_block_order_is_z_order_in_macroblocks() -> None:
    assert KI.block_order(3, 3, False).tolist() == list(range(9))
    assert KI.block_order(3, 3, True).tolist() == [0, 1, 3, 4, 2, 5, 6, 7, 8]


@pytest.mark.parametrize("q", [30.0, 70.0])
def test_decoders_give_the_encoders_reconstruction(q: float) -> None:
    frame, coder = _frame(), _coder(12, False, q)
    ifr, offsets, bound = _encode26(frame, coder)
    status, recon, modes, txc, split = _kernel_decode(ifr.payload, frame.shape, coder, offsets)
    assert status == KM.OK
    np.testing.assert_array_equal(recon[: frame.shape[0], : frame.shape[1]], ifr.recon)
    np.testing.assert_array_equal(modes, ifr.modes)
    np.testing.assert_array_equal(split, ifr.split)
    assert (split == 0).any() and (split == 1).any() and (split == 2).any()  # both sizes, and edge macroblocks
    plain = _kernel_decode(ifr.payload, frame.shape, coder, offsets, plain=True)[1]
    np.testing.assert_array_equal(plain, recon)
    out = intra.decode_intra_frame(ifr.payload, *frame.shape, coder, offsets, mode_model=4, within=True, trained=True)
    np.testing.assert_array_equal(out, ifr.recon)
    levels = _reference_agrees(ifr.payload, frame.shape, coder, recon, modes, txc, split)
    np.testing.assert_array_equal(_literal_big(recon, levels, split, modes, coder, offsets, coder.offset), recon)
    assert np.abs(ifr.recon.astype(np.int64) - frame).max() <= bound
    # a 2.5 reading of the same bytes is not this frame
    try:
        bad = intra.decode_intra_frame(ifr.payload, *frame.shape, coder, offsets, mode_model=3)
    except CodecError:
        pass
    else:
        assert not np.array_equal(bad, ifr.recon)


def test_the_smooth_golden_pins_every_16x16_mode() -> None:
    """The golden ``ct.u2.b12.q60.default26.smooth`` (test_golden.py checks it byte for byte) holds
    16x16 blocks of each of the three modes, split and edge macroblocks, read back from its bytes by
    the kernel and by the plain-Python reading of §19, so a change of any of them shows there."""
    data = (Path(__file__).resolve().parent.parent / "golden" / "ct.u2.b12.q60.default26.smooth"
            / "encoded.bin").read_bytes()  # fmt: skip
    header, index = container.parse_container(data)
    assert header.version == container.VERSION_26
    fr = mdc2.read_dct_frame(data, header, index[0])
    assert fr.intra_payload is not None and fr.offsets is not None
    coder = FrameCoder.for_table(header.qtables[0], header.bits_stored, header.signed)
    shape = (header.rows, header.cols)
    status, recon, modes, txc, split = _kernel_decode(fr.intra_payload, shape, coder, fr.offsets, within=False)
    assert status == KM.OK
    levels = _reference_agrees(fr.intra_payload, shape, coder, recon, modes, txc, split, within=False)
    np.testing.assert_array_equal(_literal_big(recon, levels, split, modes, coder, fr.offsets, coder.offset), recon)
    bx, nmx = recon.shape[1] // 8, (recon.shape[1] // 8 + 1) // 2
    big = [int(modes[2 * (mb // nmx) * bx + 2 * (mb % nmx)]) for mb in np.flatnonzero(split == 0)]
    assert set(big) == {0, 1, 2}, big
    assert (split == 1).any() and (split == 2).any()


@pytest.mark.realdata
@pytest.mark.parametrize("series,index", [("ct_head_phantom_philips_ingenuity", 60), ("mr_head_ge_signa_t1_ctk", 50)])
def test_real_slices_take_both_sizes_and_decode_bit_for_bit(shared_data: Path, series: str, index: int) -> None:
    ds = pydicom.dcmread(sorted((shared_data / series).glob("*.dcm"))[index])
    frame = ds.pixel_array[64:200, 64:232]
    bits, signed = int(ds.BitsStored), bool(ds.PixelRepresentation)
    frame = frame.astype(np.int16 if signed else np.uint16)
    coder = _coder(bits, signed, 45.0)
    ifr, offsets, bound = _encode26(frame, coder)
    status, recon, modes, txc, split = _kernel_decode(ifr.payload, frame.shape, coder, offsets)
    assert status == KM.OK
    np.testing.assert_array_equal(recon[: frame.shape[0], : frame.shape[1]], ifr.recon)
    full = split < 2
    assert 0.02 < (split[full] == 0).mean() < 0.98  # both sizes in use on real data
    bx = recon.shape[1] // 8
    nmx = (bx + 1) // 2
    big_modes = {int(modes[2 * (m // nmx) * bx + 2 * (m % nmx)]) for m in np.flatnonzero(split == 0)}
    assert len(big_modes) >= 2  # the 16x16 blocks take more than one mode
    levels = _reference_agrees(ifr.payload, frame.shape, coder, recon, modes, txc, split)
    np.testing.assert_array_equal(_literal_big(recon, levels, split, modes, coder, offsets, coder.offset), recon)
    assert np.abs(ifr.recon.astype(np.int64) - frame).max() <= bound


def test_printed_bound_takes_the_16x16_blocks() -> None:
    steps = quantize.quant_table(40.0, 12)
    with_tx = mdc2.error_bound_with_offsets(steps, None, tx=True)
    with_big = mdc2.error_bound_with_offsets(steps, None, tx=True, big=True)
    a16 = np.abs(KI.DCT16).max(axis=1)
    s16 = np.asarray(steps, np.float64).reshape(8, 8)[np.arange(16)[:, None] // 2, np.arange(16)[None, :] // 2]
    direct = float(np.sum(0.5 * s16 * np.outer(a16, a16))) + 0.5
    assert with_big == pytest.approx(max(with_tx, direct), rel=1e-12) and with_big > 1.5 * with_tx
    # one unit error on the 16x16 DC moves a sample by 1/16 step: what the 16-point a(0) says
    unit = np.zeros((16, 16))
    unit[0, 0] = 1.0
    assert np.abs(KI.DCT16.T @ unit @ KI.DCT16).max() == pytest.approx(1 / 16)


@pytest.mark.realdata
@pytest.mark.parametrize("effort", ["fast", "best"])
def test_2_6_streams_decode_within_their_printed_bound(monkeypatch: pytest.MonkeyPatch, shared_data: Path,
                                                       effort: str) -> None:  # fmt: skip
    monkeypatch.setattr(intra, "BIG_EFFORTS", ("fast", "best"))
    paths = sorted((shared_data / "ct_head_phantom_philips_ingenuity").glob("*.dcm"))
    arr = np.stack([pydicom.dcmread(paths[i]).pixel_array for i in (40, 70)])[:, 96:352, 96:352]
    for compact in (True, False):
        data = medcodec.encode(arr, quality=40, effort=effort, bits_stored=12, signed=False, jobs=1, compact=compact)
        header, index = container.parse_container(data)
        assert header.version == container.VERSION_212  # 2.6's frames, 2.11's level contexts, 2.12's starts
        assert all(mdc2.read_dct_frame(data, header, e).mode_model == 4 for e in index)
        err = np.abs(medcodec.decode(data, jobs=1).astype(np.int64) - arr).reshape(2, -1).max(axis=1)
        assert (err <= np.asarray(mdc2.stream_error_bound(data))).all()


def test_the_switch_writes_2_6_and_2_5_streams_stay_2_5(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame()
    monkeypatch.setattr(intra, "BIG_EFFORTS", ())
    plain = medcodec.encode(frame, quality=60, bits_stored=12, signed=False, jobs=1)
    assert container.parse_container(plain)[0].version == container.VERSION_25
    monkeypatch.setattr(intra, "BIG_EFFORTS", ("fast", "best"))
    monkeypatch.setattr(intra, "WITHIN_EFFORTS", ())
    big = medcodec.encode(frame, quality=60, bits_stored=12, signed=False, jobs=1)
    assert container.parse_container(big)[0].version == container.VERSION_26
    monkeypatch.setattr(intra, "WITHIN_EFFORTS", ("fast", "best"))
    monkeypatch.setattr(intra, "TRAINED_EFFORTS", ())
    within = medcodec.encode(frame, quality=60, bits_stored=12, signed=False, jobs=1)
    assert container.parse_container(within)[0].version == container.VERSION_211
    monkeypatch.setattr(intra, "TRAINED_EFFORTS", ("fast", "best"))
    trained = medcodec.encode(frame, quality=60, bits_stored=12, signed=False, jobs=1)
    assert container.parse_container(trained)[0].version == container.VERSION_212
    for data in (plain, big, within, trained):
        out = medcodec.decode(data, jobs=1)
        assert np.abs(out.astype(np.int64) - frame).max() <= max(mdc2.stream_error_bound(data))
    # 2.11 codes the same levels under other contexts: the same pixels, other bytes; 2.12 starts every
    # model elsewhere, and the mode decision prices modes with them, so its choices (and pixels) may
    # differ: fewer bytes here, the trained starts fitting this frame better than uniform ones
    np.testing.assert_array_equal(medcodec.decode(within, jobs=1), medcodec.decode(big, jobs=1))
    assert within != big and len(trained) < len(within)


def test_damaged_segments_and_misplaced_flags_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    frame, coder = _frame(), _coder(12, False, 50.0)
    ifr, offsets, _ = _encode26(frame, coder)
    n = struct.unpack_from("<I", ifr.payload)[0]
    for cut in (0, 1, n // 2):  # a mode segment that ends early
        short = struct.pack("<I", cut) + ifr.payload[4 : 4 + cut] + ifr.payload[4 + n :]
        with pytest.raises(CodecError):
            intra.decode_intra_frame(short, *frame.shape, coder, offsets, mode_model=4, within=True, trained=True)
    rng = np.random.default_rng(0)
    for _ in range(20):  # random bytes in the mode segment: an error of the hierarchy or a frame, no crash
        bad = bytearray(ifr.payload)
        bad[4 : 4 + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        try:
            intra.decode_intra_frame(bytes(bad), *frame.shape, coder, offsets, mode_model=4, within=True, trained=True)
        except CodecError:
            pass
    monkeypatch.setattr(intra, "BIG_EFFORTS", ("fast", "best"))
    for compact in (True, False):  # the flag in a stream that says 2.5 is an unknown bit (what a 2.5 reader sees)
        data = medcodec.encode(frame, quality=50, bits_stored=12, signed=False, jobs=1, compact=compact)
        header, index = container.parse_container(data)
        assert header.version == container.VERSION_212
        old = dict(vars(header)) if hasattr(header, "__dict__") else header._asdict()
        as25 = type(header)(**{**old, "version": container.VERSION_25})
        with pytest.raises(CorruptStreamError):
            mdc2.read_dct_frame(data, as25, index[0])
    off = index[0][0] + 8 + 5  # the long FRAM's flags byte: bit 6 without bit 7 is unknown
    cleared = bytearray(data)
    cleared[off] &= ~mdc2.FLAG_TX & 0xFF
    with pytest.raises(CorruptStreamError):
        mdc2.read_dct_frame(bytes(cleared), header, index[0])
