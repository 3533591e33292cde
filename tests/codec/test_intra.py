"""8x8 intra prediction, format 2.2 (:mod:`medcodec.codec.intra`, docs/format.md §14, issue 12).

The predictor and the decoder loop are re-derived here in plain Python / NumPy from the equations
in the module's docstring and compared with the numba kernels sample for sample; the encoder's
reconstruction must equal the decoder's output; hostile payloads raise the hierarchy's errors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

import medcodec
from medcodec.codec import _kernels_intra as KI
from medcodec.codec import intra, mdc2, quantize
from medcodec.codec.framecoder import FrameCoder
from medcodec.codec.transform import DCT_MATRIX
from medcodec.codec.zigzag import ZIGZAG
from medcodec.errors import CodecError

W = (255, 197, 146, 105, 73, 50, 37, 32)
ANG = [(1, 0), (0, 0), (1, 32), (1, -32), (1, -21), (1, -9), (1, 9), (1, 21), (0, -21), (0, -9), (0, 9), (0, 21),
       (0, 32)]  # fmt: skip


# ---------------------------------------------------------------- plain reference of the docstring


def ref_refs(recon: np.ndarray, r0: int, c0: int, mid: int) -> tuple[list[int], list[int], int]:
    cols = recon.shape[1]
    top, left = [0] * 16, [0] * 16
    if r0 > 0:
        first = [int(recon[r0 - 1, c0 + j]) for j in range(8)]
        top = first + [int(recon[r0 - 1, c0 + j]) if c0 + j < cols else first[7] for j in range(8, 16)]
    if c0 > 0:
        left[:8] = [int(recon[r0 + i, c0 - 1]) for i in range(8)]
    if r0 == 0 and c0 == 0:
        top, left[:8] = [mid] * 16, [mid] * 8
    elif r0 == 0:
        top = [left[0]] * 16
    elif c0 == 0:
        left[:8] = [top[0]] * 8
    left[8:] = [left[7]] * 8
    corner = int(recon[r0 - 1, c0 - 1]) if r0 > 0 and c0 > 0 else (top[0] if r0 > 0 else left[0])
    return top, left, corner


def ref_smooth(top: list[int], left: list[int], corner: int) -> tuple[list[int], list[int], int]:
    def f(r: list[int]) -> list[int]:
        ext = [corner] + r + [r[15]]
        return [(ext[k] + 2 * ext[k + 1] + ext[k + 2] + 2) // 4 for k in range(16)]

    return f(top), f(left), (left[0] + 2 * corner + top[0] + 2) // 4


def ref_line(line: list[int], corner: int, num: int, den: int) -> int:
    if num <= -den:
        return corner
    k = num // den
    f = num - k * den
    v0 = corner if k < 0 else line[min(k, 15)]
    v1 = line[min(k + 1, 15)]
    return ((den - f) * v0 + f * v1 + den // 2) // den


def ref_predict(mode: int, top: list[int], left: list[int], corner: int) -> np.ndarray:
    if mode >= 5:
        top, left, corner = ref_smooth(top, left, corner)
    out = np.zeros((8, 8), dtype=np.int64)
    for i in range(8):
        for j in range(8):
            if mode == 0:
                v = (sum(top[:8]) + sum(left[:8]) + 8) // 16
            elif mode == 1:
                v = (W[i] * top[j] + (256 - W[i]) * left[7] + W[j] * left[i] + (256 - W[j]) * top[7] + 256) // 512
            elif mode == 2:
                base = top[j] + left[i] - corner
                pt, pl, pc = abs(base - top[j]), abs(base - left[i]), abs(base - corner)
                v = left[i] if pl <= pt and pl <= pc else (top[j] if pt <= pc else corner)
            else:
                fam, a = ANG[mode - 3]
                r, c = (i, j) if fam == 1 else (j, i)
                main, side = (top, left) if fam == 1 else (left, top)
                n = 32 * c + (r + 1) * a
                v = ref_line(main, corner, n, 32) if (n >= -32 or a >= 0) else ref_line(side, corner, r * -a - 32 * (c + 1), -a)
            out[i, j] = v
    return out


def ref_decode(levels: np.ndarray, modes: np.ndarray, coder: FrameCoder, rows: int, cols: int) -> np.ndarray:
    """The decoding process, block by block; the IDCT in the same summation order as the kernel."""
    prow, pcol = rows + (-rows % 8), cols + (-cols % 8)
    recon = np.zeros((prow, pcol), dtype=np.int64)
    steps = coder.steps.astype(np.float64).reshape(8, 8)
    a = DCT_MATRIX.tolist()
    bx = pcol // 8
    for b in range(prow * pcol // 64):
        r0, c0 = 8 * (b // bx), 8 * (b % bx)
        top, left, corner = ref_refs(recon, r0, c0, coder.offset)
        pred = ref_predict(int(modes[b]), top, left, corner)
        deq = [[0.0] * 8 for _ in range(8)]
        for k in range(64):
            lv = int(levels[b, k])
            if lv:
                p = int(ZIGZAG[k])
                deq[p // 8][p % 8] = 256 * lv * float(steps[p // 8, p % 8]) / 256.0
        tmp = [[sum_ordered(a[m][i] * deq[m][j] for m in range(8)) for j in range(8)] for i in range(8)]
        for i in range(8):
            for j in range(8):
                v = sum_ordered(tmp[i][m] * a[m][j] for m in range(8))
                recon[r0 + i, c0 + j] = min(max(int(pred[i, j]) + math.floor(v + 0.5), coder._lo), coder._hi)
    return recon[:rows, :cols]


def sum_ordered(terms) -> float:  # type: ignore[no-untyped-def]
    s = 0.0
    for t in terms:
        s += t
    return s


def levels_of(payload: bytes, modes: np.ndarray, bx: int) -> np.ndarray:
    from medcodec.codec import container, mdc2

    n = int.from_bytes(payload[:4], "little")
    data = np.frombuffer(payload, dtype=np.uint8)
    return mdc2.decode_levels(data, 4 + n, data.size, modes.size, bx, coder=container.ENTROPY_MULTI)


def coder_for(bits: int, signed: bool, q: float) -> FrameCoder:
    return FrameCoder.for_table(quantize.quant_table(q, bits), bits, signed)


def real_coder(frame: np.ndarray, bits: int, signed: bool, q: float) -> FrameCoder:
    """The steps 2.1 picks for this frame (quant_table at the range bits of its content)."""
    from medcodec.codec import levelshift
    from medcodec.codec.mdc import arith_range_bits

    vr = levelshift.check_range(frame[None], bits, signed)
    rb = arith_range_bits(levelshift.content_range_bits(frame[None], vr[0], vr[1], bits), bits, frame[None])
    return FrameCoder.for_table(quantize.quant_table(q, rb), bits, signed)


# ---------------------------------------------------------------------------------- tests


def test_predictor_matches_the_plain_reference_on_every_mode() -> None:
    rng = np.random.default_rng(1)
    out = np.empty((8, 8), dtype=np.int64)
    for trial in range(40):
        hi = [1, 4095, 65535][trial % 3]
        top = rng.integers(-hi if trial % 2 else 0, hi + 1, 16)
        left = rng.integers(-hi if trial % 2 else 0, hi + 1, 16)
        left[8:] = left[7]
        corner = int(rng.integers(0, hi + 1))
        ft, fl = np.empty(16, np.int64), np.empty(16, np.int64)
        fc = KI.smooth_refs(top, left, corner, ft, fl)
        for m in range(intra.N_MODES):
            KI.predict_mode(m, top, left, corner, ft, fl, fc, out)
            want = ref_predict(m, top.tolist(), left.tolist(), corner)
            assert np.array_equal(out, want), (trial, m)
            assert out.min() >= min(top.min(), left.min(), corner) and out.max() <= max(top.max(), left.max(), corner)


def test_fast_predictor_equals_the_predictor_on_every_mode() -> None:
    """predict_fast (ANG_TAB, the ext layout) gives predict_mode's integers, signed and unsigned."""
    rng = np.random.default_rng(2)
    out = np.empty((8, 8), dtype=np.int64)
    fast = np.empty(64, dtype=np.int64)
    ext, fext = np.empty(KI.EXT_SIZE, np.int64), np.empty(KI.EXT_SIZE, np.int64)
    for trial in range(60):
        hi = [1, 4095, 65535, 1 << 20][trial % 4]
        top = rng.integers(-hi if trial % 2 else 0, hi + 1, 16)
        left = rng.integers(-hi if trial % 2 else 0, hi + 1, 16)
        left[8:] = left[7]
        corner = int(rng.integers(-hi if trial % 2 else 0, hi + 1))
        ft, fl = np.empty(16, np.int64), np.empty(16, np.int64)
        fc = KI.smooth_refs(top, left, corner, ft, fl)
        for buf, c, t, lf in ((ext, corner, top, left), (fext, fc, ft, fl)):
            buf[0] = c
            buf[KI.EXT_TOP : KI.EXT_TOP + 16], buf[KI.EXT_TOP + 16 : KI.EXT_TOP + 24] = t, t[15]
            buf[KI.EXT_LEFT : KI.EXT_LEFT + 16], buf[KI.EXT_LEFT + 16 : KI.EXT_LEFT + 24] = lf, lf[15]
        for m in range(intra.N_MODES):
            KI.predict_mode(m, top, left, corner, ft, fl, fc, out)
            KI.predict_fast(m, ext, fext, fast)
            assert np.array_equal(fast.reshape(8, 8), out), (trial, m)


@pytest.mark.parametrize("density", [0.0, 0.03, 0.3, 1.0])
@pytest.mark.parametrize(("bits", "signed"), [(12, False), (16, True)])
def test_decoder_matches_its_plain_twin(density: float, bits: int, signed: bool) -> None:
    """decode_intra (sparse IDCT, table prediction) equals decode_intra_plain (the dense IDCT in the
    spec's summation order, predict_mode) sample for sample, with offsets, any levels and modes."""
    rng = np.random.default_rng(int(density * 100) + bits)
    coder = coder_for(bits, signed, 60)
    rows, cols = 40, 56
    nb = rows * cols // 64
    levels = np.where(rng.random((nb, 64)) < density, rng.integers(-40, 41, (nb, 64)), 0).astype(np.int32)
    levels[::3, 0] = rng.integers(-300, 300, levels[::3].shape[0])
    modes = rng.integers(0, intra.N_MODES, nb)
    offsets = np.zeros(64, np.int64)
    offsets[1:] = rng.integers(0, 128, 63)
    steps = coder.steps.astype(np.float64).reshape(8, 8)
    args = (levels, modes, steps, ZIGZAG.astype(np.int64), offsets, DCT_MATRIX, np.int64(coder.offset),
            np.int64(coder._lo), np.int64(coder._hi))  # fmt: skip
    fast, plain = np.zeros((rows, cols), np.int64), np.zeros((rows, cols), np.int64)
    assert KI.decode_intra(*args, fast) == KI.decode_intra_plain(*args, plain) == -1
    assert np.array_equal(fast, plain)
    assert np.ptp(fast) > 0


def _roundtrip(frame: np.ndarray, coder: FrameCoder, check_reference: bool = True) -> intra.IntraFrame:
    """Both mode models (2.2's, 2.4's): decoder == encoder == the plain reference; returns mode model 2's."""
    rows, cols = frame.shape
    for model in (1, 2):
        enc = intra.encode_intra_frame(frame, coder, mode_model=model)
        dec = intra.decode_intra_frame(enc.payload, rows, cols, coder, mode_model=model)
        assert dec.dtype == enc.recon.dtype and dec.shape == frame.shape
        assert np.array_equal(dec, enc.recon)
        if check_reference:
            bx = (cols + 7) // 8
            ref = ref_decode(levels_of(enc.payload, enc.modes, bx), enc.modes, coder, rows, cols)
            assert np.array_equal(dec.astype(np.int64), ref)
    return enc


@pytest.mark.parametrize(
    ("shape", "bits", "signed", "kind"),
    [((1, 1), 12, False, "noise"), ((7, 13), 12, False, "noise"), ((23, 17), 16, True, "noise"),
     ((16, 24), 12, False, "constant"), ((24, 24), 16, False, "extremes"), ((24, 16), 16, True, "extremes"),
     ((33, 41), 12, False, "smooth")],
)  # fmt: skip
@pytest.mark.parametrize("q", [30, 95])
def test_roundtrip_equals_reference_on_extremes(shape: tuple[int, int], bits: int, signed: bool, kind: str,
                                                q: float) -> None:  # fmt: skip
    rng = np.random.default_rng(7)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if kind == "noise":
        frame = rng.integers(lo, hi + 1, shape)
    elif kind == "constant":
        frame = np.full(shape, hi - 3)
    elif kind == "extremes":
        frame = np.where((np.indices(shape).sum(0) // 3) % 2 == 0, lo, hi)
    else:
        y, x = np.indices(shape)
        frame = (2000 + 800 * np.sin(x / 5 + y / 9)).astype(np.int64)
    coder = coder_for(bits, signed, q)
    frame = frame.astype(coder._dtype)
    enc = _roundtrip(frame, coder)
    if kind == "constant":  # one DC level codes the first block, the others predict it exactly
        assert np.ptp(enc.recon) == 0
        assert abs(int(enc.recon[0, 0]) - int(frame[0, 0])) <= coder.steps[0] / 16 + 1
        assert np.count_nonzero(levels_of(enc.payload, enc.modes, (shape[1] + 7) // 8)[1:]) == 0


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("series", "bits", "signed"),
    [("ct_chest_lungpetctdx_A0001_philips", 12, False), ("ct_head_phantom_philips_ingenuity", 12, False),
     ("mr_head_ge_signa_t1_ctk", 16, True)],
)  # fmt: skip
def test_real_frames_roundtrip_with_an_error_like_plain(shared_data: Path, series: str, bits: int,
                                                                 signed: bool) -> None:  # fmt: skip
    f = sorted((shared_data / series).glob("*.dcm"))[20]
    full = pydicom.dcmread(f).pixel_array
    crop = full[96:160, 80:152]  # 64 x 72: the pure-Python reference decoder stays quick
    coder = real_coder(full, bits, signed, 70)
    _roundtrip(crop.astype(coder._dtype), coder)
    # the whole frame: encoder == decoder, and the error is that of a quantizer of these steps
    enc = _roundtrip(full.astype(coder._dtype), coder, check_reference=False)
    err = np.abs(enc.recon.astype(np.int64) - full.astype(np.int64))
    plain = medcodec.decode(medcodec.encode(full.astype(coder._dtype)[None], format="mdc", quality=70,
                                            bits_stored=bits, signed=signed))[0]  # fmt: skip
    plain_mse = np.mean((plain.astype(np.float64) - full) ** 2)
    assert np.mean(err.astype(np.float64) ** 2) < 4 * plain_mse + 1
    assert len(np.unique(enc.modes)) > 3  # more than a handful of modes in use on real anatomy


def test_hostile_payloads_raise_codec_errors() -> None:
    rng = np.random.default_rng(3)
    coder = coder_for(12, False, 60)
    y, x = np.indices((40, 48))
    frame = (1500 + 900 * np.sin(x / 6) * np.cos(y / 4)).astype(np.uint16)
    for model in (1, 2):
        _hostile(intra.encode_intra_frame(frame, coder, mode_model=model).payload, coder, rng, model)
    bad_modes = np.full(30, 16, np.int64)
    rec = np.zeros((40, 48), np.int64)
    assert KI.decode_intra(np.zeros((30, 64), np.int32), bad_modes, coder.steps.astype(float).reshape(8, 8),
                           ZIGZAG.astype(np.int64), np.zeros(64, np.int64), DCT_MATRIX, 2048, 0, 4095, rec) == 0


def _hostile(p: bytes, coder: FrameCoder, rng: np.random.Generator, model: int) -> None:
    cases = [p[:n] for n in (0, 3, 4, 6, len(p) // 2, len(p) - 1)]
    cases += [b"\xff\xff\xff\xff" + p[4:], bytes(rng.integers(0, 256, 200, dtype=np.uint8))]
    for _ in range(60):
        b = bytearray(p)
        for _ in range(3):
            b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(b))
    for c in cases:
        try:
            out = intra.decode_intra_frame(c, 40, 48, coder, mode_model=model)
        except CodecError:
            continue
        assert out.shape == (40, 48) and out.min() >= 0 and out.max() <= 4095
    with pytest.raises(CodecError):
        intra.decode_intra_frame(p[:3], 40, 48, coder, mode_model=model)
    with pytest.raises(CodecError):
        intra.decode_intra_frame(p, 1 << 20, 1 << 20, coder, mode_model=model)


def test_encoder_rejects_bad_input() -> None:
    coder = coder_for(12, False, 60)
    with pytest.raises(CodecError):
        intra.encode_intra_frame(np.zeros((0, 8), np.uint16), coder)
    with pytest.raises(CodecError):
        intra.encode_intra_frame(np.full((8, 8), 5000, np.uint16), coder)


def test_intra_is_the_default_of_the_multi_symbol_coder() -> None:
    rng = np.random.default_rng(5)
    img = np.clip(2000 + rng.normal(0, 300, (2, 40, 56)), 0, 4095).astype(np.uint16)
    default = medcodec.encode(img, bits_stored=12, quality=70)
    assert medcodec.read_header(default).version == (2, 12)  # intra frames in the compact layout, tx choice, 16x16 blocks (§18-19), 2.11's level contexts (§21)
    long = medcodec.read_header(medcodec.encode(img, bits_stored=12, quality=70, compact=False))
    assert long.version == (2, 12) and not long.compact  # intra frames with mode model 2 (+ §18-19), the long layout
    assert default == medcodec.encode(img, bits_stored=12, quality=70, intra=True)
    assert default == medcodec.encode(img, bits_stored=12, quality=70, entropy="arith", intra=True)
    plain = medcodec.encode(img, bits_stored=12, quality=70, entropy="arith", intra=False)
    assert medcodec.read_header(plain).version == (2, 4)
    plain_long = medcodec.encode(img, bits_stored=12, quality=70, entropy="arith", intra=False, compact=False)
    assert medcodec.read_header(plain_long).version == (2, 1)
    huffman = medcodec.encode(img, bits_stored=12, quality=70, entropy="huffman")  # no intra there: 1.0
    assert medcodec.read_header(huffman).version == (1, 0)
    best = medcodec.encode(img, bits_stored=12, quality=70, effort="best")  # the wider mode search
    assert medcodec.read_header(best).version == (2, 12) and best != default  # and the transform choice, 16x16 blocks (§18-19)
    assert np.abs(medcodec.decode(best).astype(np.int64) - img).max() <= min(mdc2.stream_error_bound(best))
    for bad in ({"entropy": "huffman"}, {"entropy": "arith-binary"}, {"format": "jpeg"},
                {"max_error": 2}, {"intra": 1}):  # fmt: skip
        kw = {"quality": 70, "intra": True, **bad}
        if "max_error" in bad:
            del kw["quality"]
        with pytest.raises(CodecError):
            medcodec.encode(img, bits_stored=12, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "bits", "signed"),
    [((1, 1, 1), 12, False), ((1, 7, 13), 12, False), ((2, 23, 17), 16, True), ((1, 24, 24), 16, False)],
)  # fmt: skip
def test_intra_streams_roundtrip_within_their_error_bound(shape: tuple[int, int, int], bits: int, signed: bool) -> None:
    from medcodec.codec import container, mdc2

    rng = np.random.default_rng(11)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    y, x = np.indices(shape[1:])
    base = (lo + hi) / 2 + (hi - lo) * 0.45 * np.sin(x / 3 + y / 4)
    img = np.clip(np.rint(base + rng.normal(0, (hi - lo) * 0.05, shape)), lo, hi)
    img[..., 0, 0] = hi  # the extremes of the range
    img[..., -1, -1] = lo
    dtype = (np.int16 if signed else np.uint16)
    img = img.astype(dtype)
    for q in (20, 85):
        s = medcodec.encode(img, bits_stored=bits, signed=signed, quality=q, intra=True)
        out = np.asarray(medcodec.decode(s)).reshape(shape)
        bounds = mdc2.stream_error_bound(s)
        header, index = container.parse_container(s)
        assert all(mdc2.read_dct_frame(s, header, e).intra for e in index)
        for k in range(shape[0]):
            assert np.abs(out[k].astype(np.int64) - img[k]).max() <= bounds[k]
            assert np.array_equal(np.asarray(medcodec.decode(s, frames=k)).reshape(shape[1:]), out[k])


@pytest.mark.parametrize("q", [40, 90])
def test_stream_decodes_to_the_encoders_reconstruction_then_the_filters(q: float) -> None:
    """A 2.2 FRAM holds the core's payload; the decoder's output is the intra encoder's
    reconstruction, then 2.1's deblocking and restoration filters as signalled."""
    from medcodec.codec import _kernels_v2 as K2
    from medcodec.codec import container, mdc2

    rng = np.random.default_rng(4)
    y, x = np.indices((72, 80))
    img = np.clip(1000 + 600 * np.sin(x / 9) + 400 * (y > 30) + rng.normal(0, 40, x.shape), 0, 4095)
    img = img.astype(np.uint16)
    s = medcodec.encode(img, bits_stored=12, quality=q, intra=True)
    header, index = container.parse_container(s)
    fr = mdc2.read_dct_frame(s, header, index[0])
    coder = FrameCoder.for_table(header.qtables[0], 12, False)
    bound = mdc2.error_bound_with_offsets(coder.steps, fr.offsets, tx=True, big=True)  # the default's RD levels
    enc = intra.encode_intra_frame(img, coder, fr.offsets, rd_bound=bound, mode_model=4)  # 2.6: the default
    assert fr.intra_payload == enc.payload  # the compact FRAM (2.4) holds nmodes as a varint
    want = enc.recon.copy()
    if fr.deblock is not None:
        K2.deblock(want, *fr.deblock, coder._lo, coder._hi)
    if fr.restoration is not None:
        want = fr.restoration.apply(want.copy(), coder._lo, coder._hi)
    assert np.array_equal(np.asarray(medcodec.decode(s)), want)


def test_intra_flag_refused_before_format_2_2() -> None:
    from medcodec.codec import container, mdc2

    img = (np.arange(16 * 16).reshape(16, 16) * 13 % 4096).astype(np.uint16)
    s = bytearray(medcodec.encode(img, bits_stored=12, quality=60, intra=True, compact=False))
    header, index = container.parse_container(bytes(s))
    import dataclasses

    old = dataclasses.replace(header, version=(2, 1))
    with pytest.raises(CodecError):
        mdc2.read_dct_frame(bytes(s), old, index[0])
    before_modes2 = dataclasses.replace(header, version=(2, 3))  # FRAM flag 32 (mode model 2) is 2.4's
    with pytest.raises(CodecError):
        mdc2.read_dct_frame(bytes(s), before_modes2, index[0])
    binary = dataclasses.replace(header, entropy=container.ENTROPY_ARITH)
    with pytest.raises(CodecError):
        mdc2.read_dct_frame(bytes(s), binary, index[0])


def _rate_series() -> np.ndarray:
    """Two 12-bit 128 x 128 frames: a smooth blob and oblique bands (edges intra predicts)."""
    rng = np.random.default_rng(8)
    y, x = np.indices((128, 128))
    frames = []
    for k in range(2):
        img = (1000 + 1500 * np.exp(-((x - 60 - 5 * k) ** 2 + (y - 64) ** 2) / 1500.0)
               + 700 * (((x * 0.7 + y) % 53) < 20) + rng.normal(0, 2, x.shape))  # fmt: skip
        frames.append(np.clip(np.rint(img), 0, 4095))
    return np.stack(frames).astype(np.uint16)


@pytest.mark.parametrize("ratio", [8.0, 16.0])
def test_ratio_rate_control_measures_the_intra_coder(ratio: float) -> None:
    """ratio= with intra=True: a 2.2 stream at the ratio (within the tolerance 2.1 has), its search
    sizing each frame by the intra coder's own payload (what the stream then holds)."""
    from medcodec.codec import container, mdc, mdc2
    from medcodec.metrics import compression_ratio
    from medcodec.ratecontrol import RATIO_MISS

    img = _rate_series()
    s = medcodec.encode(img, bits_stored=12, ratio=ratio, intra=True)
    h, index = container.parse_container(s)
    assert h.version == (2, 12)
    reached = compression_ratio(container.pixel_data_bytes(h, len(s)), img.size, 12)
    assert ratio * (1 - RATIO_MISS) <= reached <= 1.5 * ratio
    coder = FrameCoder.for_table(h.qtables[0], 12, False)
    for k, entry in enumerate(index):
        fr = mdc2.read_dct_frame(s, h, entry)
        assert fr.intra
        assert mdc._intra_frame_bytes(coder, img[k]) == len(fr.intra_payload) + mdc2.DCT_FRAME_OVERHEAD
        assert mdc._intra_frame_bytes(coder, img[k]) != mdc2.dct_frame_bytes(coder, img[k], h.entropy)


@pytest.mark.parametrize("psnr", [50.0, 62.0])
def test_psnr_rate_control_measures_the_intra_coder(psnr: float) -> None:
    """psnr= with intra=True: the decoded 2.2 stream meets the target (the search measures the intra
    reconstruction; the filters only lower its error)."""
    from medcodec.codec import mdc

    img = _rate_series()
    s = medcodec.encode(img, bits_stored=12, psnr=psnr, intra=True)
    h = medcodec.read_header(s)
    assert h.version == (2, 12)
    out = np.asarray(medcodec.decode(s)).astype(np.float64)
    assert 10 * np.log10(4095**2 / np.mean((out - img) ** 2)) >= psnr
    coder = FrameCoder.for_table(h.qtables[0], 12, False)
    want = np.mean([mdc._intra_frame_mse(coder, f) for f in img])
    assert 10 * np.log10(4095**2 / want) >= psnr  # what the search asked of the chosen quality


def test_info_counts_intra_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from medcodec.cli.main import main

    img = _rate_series()
    intra_path, plain_path = tmp_path / "i.mdc", tmp_path / "p.mdc"
    intra_path.write_bytes(medcodec.encode(img, bits_stored=12, quality=60, intra=True))
    plain_path.write_bytes(medcodec.encode(img, bits_stored=12, quality=60, entropy="arith", intra=False,
                                           compact=False))  # 2.1: cannot hold intra frames
    capsys.readouterr()
    assert main(["info", str(intra_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == "2.12" and info["intra_frames"] == 2
    assert main(["info", str(intra_path)]) == 0
    assert "2 of 2 (8x8 intra prediction" in capsys.readouterr().out
    assert main(["info", str(plain_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["intra_frames"] is None
    assert main(["info", str(plain_path)]) == 0
    assert "\nintra_frames " not in capsys.readouterr().out


def test_streaming_encode_to_writes_intra_frames() -> None:
    """encode_to (the bounded-memory writer series use) takes intra=True: the same frames as
    encode(..., intra=True) with the same settings, ratio= included; max_error excludes it."""
    import io

    from medcodec.codec import container, mdc, mdc2

    img = _rate_series()
    buf = io.BytesIO()
    mdc.encode_to(buf, iter(img), n_frames=2, bits_stored=12, signed=False, sample=img, quality=60, intra=True)
    s = buf.getvalue()
    assert medcodec.read_header(s).version == (2, 12)
    rbits = medcodec.read_header(s).range_bits
    assert s == medcodec.encode(img, bits_stored=12, quality=60, intra=True, range_bits=rbits)
    h, index = container.parse_container(s)
    assert all(mdc2.read_dct_frame(s, h, e).intra for e in index)
    buf = io.BytesIO()
    mdc.encode_to(buf, iter(img), n_frames=2, bits_stored=12, signed=False, sample=img, ratio=10.0, intra=True)
    assert medcodec.read_header(buf.getvalue()).version == (2, 12)
    with pytest.raises(CodecError):
        mdc.encode_to(io.BytesIO(), iter(img), n_frames=2, bits_stored=12, signed=False, max_error=1, intra=True)
    with pytest.raises(CodecError):
        mdc.encode_to(io.BytesIO(), iter(img), n_frames=2, bits_stored=12, signed=False, quality=60, intra=True,
                      entropy="huffman")  # fmt: skip


# ------------------------------------------------------- RD levels of the intra residuals (issue 12)


def _rd_inputs(frame: np.ndarray, coder: FrameCoder):  # type: ignore[no-untyped-def]
    """What :func:`intra.encode_intra_frame` hands the kernels, with the offsets 2.x streams write."""
    scaled = coder.scaled(frame)
    offsets = mdc2.reconstruction_offsets(mdc2.round_scaled(scaled), scaled)
    x = intra._padded(frame)
    nb = x.size // 64
    out = (np.empty((nb, 64), np.int32), np.empty(nb, np.int64), np.empty_like(x), np.zeros(nb, np.uint8))
    args = (x, coder.steps.astype(np.float64).reshape(8, 8), ZIGZAG.astype(np.int64), intra._offsets(offsets),
            DCT_MATRIX, intra.lambda_for(coder), np.int64(coder.offset), np.int64(coder._lo), np.int64(coder._hi))  # fmt: skip
    return offsets, x, args, out


def _smooth_noisy(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.indices(shape)
    return (1800 + 600 * np.sin(x / 7 + y / 11) + rng.normal(0, 25, shape)).clip(0, 4095).astype(np.uint16)


@pytest.mark.parametrize("price", ["dct", "intra"])
@pytest.mark.parametrize("q", [40, 80])
def test_rd_intra_frame_decodes_as_the_plain_reference_twin(q: float, price: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """RD residual levels change no syntax: the decoder and the plain-Python reference decoder give
    the encoder's reconstruction, within the bound (either pricing)."""
    monkeypatch.setattr(intra, "RD_PRICE", {"fast": price, "best": price})
    frame = _smooth_noisy((64, 72), q)
    coder = coder_for(12, False, q)
    offsets = None  # the plain reference decoder (ref_decode) has no centroid offsets
    bound = mdc2.error_bound_with_offsets(coder.steps, offsets)
    plain = intra.encode_intra_frame(frame, coder, offsets, mode_model=2)
    rd = intra.encode_intra_frame(frame, coder, offsets, mode_model=2, rd_bound=bound)
    dec = intra.decode_intra_frame(rd.payload, 64, 72, coder, offsets, mode_model=2)
    np.testing.assert_array_equal(dec, rd.recon)
    ref = ref_decode(levels_of(rd.payload, rd.modes, 9), rd.modes, coder, 64, 72)
    np.testing.assert_array_equal(dec.astype(np.int64), ref)
    # the search did move levels (72 blocks: the bytes move by a few either way; every later block's
    # prediction changes with them; test_rd_intra_streams_* measures the gain on real frames)
    assert not np.array_equal(levels_of(rd.payload, rd.modes, 9), levels_of(plain.payload, plain.modes, 9))
    assert np.abs(rd.recon.astype(np.int64) - frame).max() <= bound
    with pytest.raises(CodecError):
        intra.encode_intra_frame(frame, coder, offsets, mode_model=1, rd_bound=bound)


def test_rd_intra_blocks_beyond_the_checked_bound_go_back_to_rounded_levels() -> None:
    """The in-loop check, with the bound lowered below the printed one (which the free search keeps
    on this frame) so that the free search breaks it: it puts blocks back (and some RD levels stay), and every block whose samples
    lie further than that bound from the original carries the rounded levels of its own prediction
    (recomputed here from the final reconstruction and mode)."""
    frame = _smooth_noisy((96, 96), 3)
    coder = coder_for(12, False, 60)
    offsets, x, args, _ = _rd_inputs(frame, coder)
    bx, nb = x.shape[1] // 8, x.size // 64
    levels, modes, recon, skip = (np.empty((nb, 64), np.int32), np.empty(nb, np.int64), np.empty_like(x),
                                  np.zeros(nb, np.uint8))  # fmt: skip
    tol = intra.flat_tolerance(coder)
    KI.encode_intra2(*args, levels, modes, recon, skip, KI.N_COARSE, KI.N_FULL, KI.MODE2_SCALE, KI.MODE2_BIAS, tol)
    cost, lam_rd, _, rho, _ = intra.rd_params(coder, frame, levels, bx)
    printed = mdc2.error_bound_with_offsets(coder.steps, offsets)

    def block_err(rec: np.ndarray) -> np.ndarray:
        e = np.abs(rec.astype(np.int64) - x).reshape(x.shape[0] // 8, 8, bx, 8)
        return e.max(axis=(1, 3)).ravel()

    runs = {}
    low = np.inf
    for bound in (np.inf, None):
        if bound is None:  # the free search's upper quartile of block errors: it breaks that
            bound = low = float(np.percentile(runs[np.inf][1], 75))
            assert low < printed
        n = KI.encode_intra2_rd(*args, levels, modes, recon, skip, KI.N_COARSE, KI.N_FULL, KI.MODE2_SCALE,
                                KI.MODE2_BIAS, tol, cost, lam_rd, 0.0, rho, -np.inf, bound)  # fmt: skip
        runs[bound] = (n, block_err(recon), levels.copy(), modes.copy(), recon.copy())
    assert runs[np.inf][0] == 0 and (runs[np.inf][1] > low).any()  # the free search breaks the lowered bound
    n, err, lv, md, rec = runs[low]
    assert n > 0
    # the rounded levels of every block under its prediction from the final reconstruction
    steps = coder.steps.astype(np.float64).reshape(8, 8)
    zz = ZIGZAG.astype(np.int64)
    stepz = steps.ravel()[zz]
    ext, fext, pred = np.empty(KI.EXT_SIZE, np.int64), np.empty(KI.EXT_SIZE, np.int64), np.empty(64, np.int64)
    scratch = [np.empty(64) for _ in range(3)]
    lvz = np.empty(64, np.int64)
    rounded_blocks = 0
    for b in range(nb):
        r0, c0 = 8 * (b // bx), 8 * (b % bx)
        KI.ext_refs(rec, r0, c0, np.int64(coder.offset), ext, fext, True)
        KI.predict_fast(md[b], ext, fext, pred)
        xb = x[r0 : r0 + 8, c0 : c0 + 8].astype(np.int64).ravel()
        KI._trial(xb, pred, DCT_MATRIX, zz, 1.0 / stepz, stepz, intra._offsets(offsets), *scratch, lvz, 0.0)
        is_rounded = np.array_equal(lv[b], lvz)
        rounded_blocks += is_rounded
        if err[b] > low:
            assert is_rounded, b
    assert rounded_blocks < nb  # RD levels remain where they keep the bound


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("series", "bits", "signed"),
    [("ct_chest_lungpetctdx_A0001_philips", 12, False), ("mr_head_ge_signa_t1_ctk", 16, True)],
)  # fmt: skip
def test_rd_intra_streams_decode_within_their_printed_bound(shared_data: Path, monkeypatch: pytest.MonkeyPatch,
                                                            series: str, bits: int, signed: bool) -> None:  # fmt: skip
    """Whole streams with the intra RD levels (INTRA_RDOQ_EFFORTS, the default): smaller than the same quality without,
    every frame within the bound ``stream_error_bound`` prints."""
    from medcodec.codec import mdc

    paths = sorted((shared_data / series).glob("*.dcm"))
    frames = np.stack([pydicom.dcmread(paths[i]).pixel_array for i in (10, 30)])
    kw = dict(format="mdc", quality=55, bits_stored=bits, signed=signed, jobs=1)
    monkeypatch.setattr(mdc, "INTRA_RDOQ_EFFORTS", ("best",))  # fast with rounded levels
    plain = medcodec.encode(frames, **kw)
    monkeypatch.setattr(mdc, "INTRA_RDOQ_EFFORTS", ("fast", "best"))  # the default since 2026-11-30
    rd = medcodec.encode(frames, **kw)
    assert len(rd) < len(plain)
    dec = medcodec.decode(rd)
    for got, want, bound in zip(dec, frames, mdc2.stream_error_bound(rd), strict=True):
        assert np.abs(got.astype(np.int64) - want).max() <= bound
