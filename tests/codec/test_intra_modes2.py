"""Mode model 2 of intra frames (``.mdc`` format 2.4, FRAM flag 32, ``docs/format.md`` §17).

Blocks whose references lie within a tolerance (1/8 of the first AC step) code no mode (the
context's is implied); the others code the 16-ary mode symbol of 2.2 inside the prediction loop.
Checked here: the kernel decoder against the plain-Python reading of §17 (:func:`.intra.decode_modes2_reference`), that flat
blocks really are skipped, damaged and truncated mode segments refused with the hierarchy's
errors, the FRAM flag's framing rules, and that 2.2 streams still decode byte for byte.
"""

from __future__ import annotations

import dataclasses
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
from medcodec.errors import CodecError, CorruptStreamError, TruncatedStreamError

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def _coder(bits: int, signed: bool, q: float) -> FrameCoder:
    return FrameCoder.for_table(quantize.quant_table(q, bits), bits, signed)


def _frame(shape: tuple[int, int] = (56, 72), seed: int = 3) -> np.ndarray:
    """12-bit: oblique structure and noise, with a constant region (flat references) and a faint one."""
    rng = np.random.default_rng(seed)
    y, x = np.indices(shape)
    img = 1500 + 700 * np.sin(x / 7 + y / 11) + 400 * ((x + 2 * y) % 37 < 12) + rng.normal(0, 25, shape)
    img[24:, 40:] = 300
    img[:24, 48:] = 2500 + rng.normal(0, 3, (24, shape[1] - 48))  # near flat: within the tolerance at low rates
    return np.clip(np.rint(img), 0, 4095).astype(np.uint16)


def _kernel_decode(payload: bytes, shape: tuple[int, int], coder: FrameCoder,
                   offsets: np.ndarray | None = None) -> tuple[int, np.ndarray, np.ndarray]:  # fmt: skip
    """(status, padded reconstruction, modes) of :func:`._kernels_intra.decode_intra2`."""
    rows, cols = (s + (-s % 8) for s in shape)
    nb, bx = rows * cols // 64, cols // 8
    n = struct.unpack_from("<I", payload)[0]
    data = np.frombuffer(payload, np.uint8)
    levels = np.zeros((nb, 64), np.int32)
    assert KM.decode_coefficients_ms(data, 4 + n, data.size, bx, levels) == KM.OK
    recon, modes = np.empty((rows, cols), np.int64), np.zeros(nb, np.int64)
    status = KI.decode_intra2(data, 4, 4 + n, levels, coder.steps.astype(float).reshape(8, 8), ZIGZAG.astype(np.int64),
                              intra._offsets(offsets), DCT_MATRIX, np.int64(coder.offset), np.int64(coder._lo),
                              np.int64(coder._hi), recon, modes, intra.flat_tolerance(coder))  # fmt: skip
    return status, recon, modes


def _flat_blocks(recon: np.ndarray, tol: int = 0) -> np.ndarray:
    """Per block of the padded reconstruction: are its references within ``tol`` of each other (§17)?"""
    rows, cols = recon.shape
    bx = cols // 8
    out = np.zeros(rows * cols // 64, bool)
    for b in range(out.size):
        r0, c0 = 8 * (b // bx), 8 * (b % bx)
        refs = []
        if r0 > 0:
            refs += list(recon[r0 - 1, c0 : c0 + 16])
        if c0 > 0:
            refs += list(recon[r0 : r0 + 8, c0 - 1])
        if r0 > 0 and c0 > 0:
            refs.append(recon[r0 - 1, c0 - 1])
        out[b] = not refs or max(refs) - min(refs) <= tol
    return out


@pytest.mark.parametrize("q", [20, 60, 95])
def test_kernel_modes_equal_the_plain_reference_and_flat_blocks_code_none(q: float) -> None:
    frame = _frame()
    coder = _coder(12, False, q)
    enc = intra.encode_intra_frame(frame, coder, mode_model=2)
    status, recon, modes = _kernel_decode(enc.payload, frame.shape, coder)
    assert status == KM.OK
    assert np.array_equal(modes, enc.modes)
    assert np.array_equal(recon[: frame.shape[0], : frame.shape[1]], enc.recon)
    n = struct.unpack_from("<I", enc.payload)[0]
    tol = intra.flat_tolerance(coder)
    if q == 20:  # the tolerance at work: blocks whose references are near flat, not equal, code no mode either
        assert tol > 0 and _flat_blocks(recon, tol).sum() > _flat_blocks(recon, 0).sum()
    assert np.array_equal(intra.decode_modes2_reference(enc.payload[4 : 4 + n], recon, coder.offset, tol), modes)
    flat = _flat_blocks(recon, tol)
    assert 0 < flat.sum() < flat.size  # the constant region's blocks code no mode, the others do
    bx = recon.shape[1] // 8
    for b in np.flatnonzero(flat)[1:]:  # the implied mode: the context's (left, else above)
        assert modes[b] == (modes[b - 1] if b % bx else modes[b - bx])
    # the segment is model 1's coder over the coded blocks only: no longer than all of the same modes
    out = np.empty(modes.size + 1024, np.uint8)
    status2, n2 = KI.encode_modes2(modes, flat.astype(np.uint8), bx, out)
    assert status2 == KM.OK and out[:n2].tobytes() == enc.payload[4 : 4 + n]
    status1, n1 = KI.encode_modes(modes, bx, out)
    assert status1 == KM.OK and n <= n1


@pytest.mark.realdata
def test_real_slice_fewer_mode_bytes_and_the_reference_agrees(shared_data: Path) -> None:
    f = sorted((shared_data / "mr_head_ge_signa_t1_ctk").glob("*.dcm"))[50]
    full = pydicom.dcmread(f).pixel_array
    from medcodec.codec import levelshift
    from medcodec.codec.mdc import arith_range_bits

    vr = levelshift.check_range(full[None], 16, True)
    rb = arith_range_bits(levelshift.content_range_bits(full[None], vr[0], vr[1], 16), 16, full[None])
    coder = FrameCoder.for_table(quantize.quant_table(25, rb), 16, True)  # ~0.15 bpp
    x = full.astype(coder._dtype)
    two, one = (intra.encode_intra_frame(x, coder, mode_model=m) for m in (2, 1))
    n2, n1 = (struct.unpack_from("<I", e.payload)[0] for e in (two, one))
    assert n2 < n1 and len(two.payload) < len(one.payload)  # the background's blocks code no mode
    crop = x[:96, :120]  # the plain-Python reader stays quick
    enc = intra.encode_intra_frame(crop, coder)
    status, recon, modes = _kernel_decode(enc.payload, crop.shape, coder)
    n = struct.unpack_from("<I", enc.payload)[0]
    assert status == KM.OK and np.array_equal(modes, enc.modes)
    tol = intra.flat_tolerance(coder)
    assert np.array_equal(intra.decode_modes2_reference(enc.payload[4 : 4 + n], recon, coder.offset, tol), modes)


def test_truncated_and_corrupt_mode_segments_are_refused() -> None:
    frame = _frame()
    coder = _coder(12, False, 60)
    p = intra.encode_intra_frame(frame, coder).payload
    n = struct.unpack_from("<I", p)[0]
    rows, cols = frame.shape
    for cut in (0, 1, n // 2, n - 1):  # the mode segment cut short (its length field says so)
        bad = struct.pack("<I", cut) + p[4 : 4 + cut] + p[4 + n :]
        with pytest.raises(CodecError):
            intra.decode_intra_frame(bad, rows, cols, coder, mode_model=2)
    with pytest.raises(TruncatedStreamError):
        intra.decode_intra_frame(struct.pack("<I", 0) + p[4 + n :], rows, cols, coder, mode_model=2)
    with pytest.raises(TruncatedStreamError):  # the length beyond the payload
        intra.decode_intra_frame(struct.pack("<I", len(p)) + p[4:], rows, cols, coder, mode_model=2)
    # a code value beyond the range: the first five bytes all ones
    bad = p[:4] + b"\xff" * 5 + p[9:]
    with pytest.raises(CorruptStreamError):
        intra.decode_intra_frame(bad, rows, cols, coder, mode_model=2)
    rng = np.random.default_rng(9)
    for _ in range(80):  # flipped bits in the mode segment: an error of the hierarchy or samples in range
        b = bytearray(p)
        b[4 + int(rng.integers(0, n))] ^= 1 << int(rng.integers(0, 8))
        try:
            out = intra.decode_intra_frame(bytes(b), rows, cols, coder, mode_model=2)
        except CodecError:
            continue
        assert out.shape == frame.shape and out.min() >= 0 and out.max() <= 4095
    with pytest.raises(CodecError):
        intra.decode_intra_frame(p, rows, cols, coder, mode_model=5)  # 3: format 2.5, 4: 2.6 (test_intra_big)
    with pytest.raises(CodecError):
        intra.encode_intra_frame(frame, coder, mode_model=0)


def test_mode_model_2_is_the_default_and_its_flag_is_framed() -> None:
    img = np.stack([_frame(seed=s) for s in (1, 2)])
    s = medcodec.encode(img, bits_stored=12, quality=60, compact=False)  # the long layout: FRAM flags at byte 5
    header, index = container.parse_container(s)
    assert header.version == (2, 12) and medcodec.read_header(medcodec.encode(img, bits_stored=12, quality=60)).compact
    frames = [mdc2.read_dct_frame(s, header, e) for e in index]
    assert all(f.intra and f.mode_model == 4 for f in frames)  # mode model 2, 2.5's transform choice, 2.6's 16x16
    out = np.asarray(medcodec.decode(s))
    assert np.abs(out.astype(np.int64) - img).max() <= min(mdc2.stream_error_bound(s))
    with intra.written_mode_model(1):
        s1 = medcodec.encode(img, bits_stored=12, quality=60, compact=False)
    h1, i1 = container.parse_container(s1)
    assert h1.version == (2, 2) and all(mdc2.read_dct_frame(s1, h1, e).mode_model == 1 for e in i1)
    assert intra.MODE_MODEL == 2
    # flag 32 (mode model 2) is refused in a 2.3 header, and without the intra flag
    with pytest.raises(CorruptStreamError):
        mdc2.read_dct_frame(s, dataclasses.replace(header, version=(2, 3)), index[0])
    off, _size = index[0]
    payload = bytearray(container.frame_payload(s, index[0]))
    flags = payload[5]
    assert flags & mdc2.FLAG_MODES2 and flags & mdc2.FLAG_INTRA
    payload[5] = flags & ~mdc2.FLAG_INTRA
    seg = container._segment(b"FRAM", bytes(payload))
    with pytest.raises(CorruptStreamError):
        mdc2.read_dct_frame(s[:off] + seg + s[off + len(seg) :], header, (off, len(seg)))


def test_format_2_2_goldens_decode_with_mode_model_1() -> None:
    """The 2.2 golden decodes byte for byte as before: flag 32 clear is today's (model 1) reader."""
    s = (GOLDEN / "ct.u2.b12.q75.intra" / "encoded.bin").read_bytes()
    header, index = container.parse_container(s)
    assert header.version == (2, 2)
    assert mdc2.read_dct_frame(s, header, index[0]).mode_model == 1
    assert np.array_equal(medcodec.decode(s), np.load(GOLDEN / "ct.u2.b12.q75.intra" / "decoded.npy"))
    s2 = (GOLDEN / "ct.u2.b12.q60.modes2" / "encoded.bin").read_bytes()
    h2, i2 = container.parse_container(s2)
    fr = mdc2.read_dct_frame(s2, h2, i2[0])
    assert h2.version == (2, 4) and fr.mode_model == 2
    coder = FrameCoder.for_table(h2.qtables[0], 12, False)
    status, recon, _modes = _kernel_decode(s2[fr.start : fr.end], (h2.rows, h2.cols), coder, fr.offsets)
    assert status == KM.OK and _flat_blocks(recon, intra.flat_tolerance(coder)).sum() > 4  # skipped blocks


def test_written_mode_model_is_local_to_its_thread() -> None:
    """``written_mode_model`` (goldens, fuzz corpus, benchmarks) does not change what another
    thread's encoder writes meanwhile: a context variable, not a module global."""
    import threading

    seen: list[int] = []
    inside, done = threading.Event(), threading.Event()

    def other() -> None:
        inside.wait(10)
        seen.append(intra.written_model())
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with intra.written_mode_model(1):
        assert intra.written_model() == 1
        inside.set()
        done.wait(10)
    t.join(10)
    assert seen == [2] and intra.written_model() == 2
