"""Format 2.5: per-block transform choice of intra residuals (FRAM flag 128, ``docs/format.md`` §18).

Each coded intra block (not flat, mode not DC, a non-zero level) carries one adaptive binary
symbol after its mode: the DCT, or its mode family's DST-VII pair. Checked here: the DST-VII
doubles against the table of the spec, the kernel decoder against the encoder's reconstruction
and against a plain-Python reading of §18 (the choices from the segment, the literal dense
inverse per block), that both choices occur on real slices, that the printed bound (the largest
over the pairs, derived from the matrices) holds on real data and is what the DCT alone would
not guarantee, refusals of damaged segments and of the flag outside 2.5, and that 2.4 streams
still decode as before.
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
from medcodec.codec import container, intra, mdc, mdc2, quantize
from medcodec.codec.framecoder import FrameCoder
from medcodec.codec.transform import DCT_MATRIX
from medcodec.codec.zigzag import ZIGZAG
from medcodec.errors import CodecError, CorruptStreamError, TruncatedStreamError

DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "format.md"


@pytest.fixture(autouse=True)
def _format_25(monkeypatch: pytest.MonkeyPatch) -> None:
    """This file checks format 2.5 as the encoder writes it without 2.6's 16x16 blocks (test_intra_big)."""
    monkeypatch.setattr(intra, "BIG_EFFORTS", ())


def _coder(bits: int, signed: bool, q: float) -> FrameCoder:
    return FrameCoder.for_table(quantize.quant_table(q, bits), bits, signed)


def _frame(shape: tuple[int, int] = (56, 72), seed: int = 3) -> np.ndarray:
    """12-bit: oblique edges, ramps and noise, with a constant region (flat references)."""
    rng = np.random.default_rng(seed)
    y, x = np.indices(shape)
    img = 1500 + 700 * np.sin(x / 7 + y / 11) + 400 * ((x + 2 * y) % 37 < 12) + 9 * y + rng.normal(0, 25, shape)
    img[24:, 40:] = 300
    return np.clip(np.rint(img), 0, 4095).astype(np.uint16)


def _encode25(frame: np.ndarray, coder: FrameCoder, effort: str = "best") -> tuple[intra.IntraFrame, np.ndarray, float]:
    scaled = coder.scaled(frame)
    offsets = mdc2.reconstruction_offsets(mdc2.round_scaled(scaled), scaled)
    bound = mdc2.error_bound_with_offsets(coder.steps, offsets, tx=True)
    return intra.encode_intra_frame(frame, coder, offsets, effort, 3, bound), offsets, bound


def _levels(payload: bytes, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    rows, cols = (s + (-s % 8) for s in shape)
    n = struct.unpack_from("<I", payload)[0]
    data = np.frombuffer(payload, np.uint8)
    levels = np.zeros((rows * cols // 64, 64), np.int32)
    assert KM.decode_coefficients_ms(data, 4 + n, data.size, cols // 8, levels) == KM.OK
    return levels, n


def _kernel_decode(payload: bytes, shape: tuple[int, int], coder: FrameCoder,
                   offsets: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(status, padded reconstruction, modes, choices) of :func:`._kernels_intra.decode_intra25`."""
    rows, cols = (s + (-s % 8) for s in shape)
    levels, n = _levels(payload, shape)
    nb = levels.shape[0]
    recon, modes, txc = np.empty((rows, cols), np.int64), np.zeros(nb, np.int64), np.zeros(nb, np.uint8)
    status = KI.decode_intra25(np.frombuffer(payload, np.uint8), 4, 4 + n, levels,
                               coder.steps.astype(float).reshape(8, 8), ZIGZAG.astype(np.int64),
                               intra._offsets(offsets), DCT_MATRIX, np.int64(coder.offset), np.int64(coder._lo),
                               np.int64(coder._hi), recon, modes, intra.flat_tolerance(coder), KI.DST7,
                               txc)  # fmt: skip
    return status, recon, modes, txc


def _literal_recon(recon: np.ndarray, levels: np.ndarray, modes: np.ndarray, choices: np.ndarray,
                   coder: FrameCoder, offsets: np.ndarray) -> np.ndarray:  # fmt: skip
    """§18's reconstruction as written, block by block on the kernel's own output (the references a
    block reads are final before it): the prediction of §14.3, then ``E = Tv^T D Th`` summed densely
    in index order (the dct entries of §14.4, the DST-VII table where the choice says)."""
    cols = recon.shape[1]
    bx = cols // 8
    out = np.empty_like(recon)
    steps = coder.steps.astype(np.float64).reshape(8, 8)
    off = intra._offsets(offsets)
    ext, fext, pred = np.empty(KI.EXT_SIZE, np.int64), np.empty(KI.EXT_SIZE, np.int64), np.empty(64, np.int64)
    dct, dst = DCT_MATRIX.tolist(), KI.DST7.tolist()
    for b in range(levels.shape[0]):
        r0, c0 = 8 * (b // bx), 8 * (b % bx)
        KI.ext_refs(recon, r0, c0, np.int64(coder.offset), ext, fext, True)
        KI.predict_fast(int(modes[b]), ext, fext, pred)
        v_b = dst if choices[b] == 1 and KI.TX_PAIR[modes[b], 0] else dct
        h_b = dst if choices[b] == 1 and KI.TX_PAIR[modes[b], 1] else dct
        D = [[0.0] * 8 for _ in range(8)]
        for k in range(64):
            lv = int(levels[b, k])
            if lv:
                u, v = divmod(int(ZIGZAG[k]), 8)
                q = 256 * lv - (1 if lv > 0 else -1) * int(off[k])
                D[u][v] = q * float(steps[u, v]) / 256
        tmp = [[sum(v_b[m][i] * D[m][j] for m in range(8)) for j in range(8)] for i in range(8)]
        for i in range(8):
            for j in range(8):
                e = sum(tmp[i][m] * h_b[m][j] for m in range(8))
                out[r0 + i, c0 + j] = min(max(int(pred[8 * i + j]) + int(np.floor(e + 0.5)), coder._lo), coder._hi)
    return out


def test_dst7_is_the_table_of_the_spec_and_orthonormal() -> None:
    text = DOCS.read_text()
    section = text[text.index("## 18.") : text.index("## 19.")]
    rows = re.findall(r"^\| (\d) \| ((?:`-?0x[0-9a-f.p+-]+` ?)+)\|", section, flags=re.M)
    table = np.array([[float.fromhex(v.strip("`")) for v in r[1].split()] for r in rows])
    assert table.shape == (8, 8)
    np.testing.assert_array_equal(KI.DST7, table)  # the very doubles: decoders must match
    np.testing.assert_allclose(KI.DST7 @ KI.DST7.T, np.eye(8), atol=1e-14)
    assert abs(np.abs(KI.DST7).max() - 0.4830) < 1e-4


def test_pairs_follow_the_mode_family() -> None:
    assert KI.TX_PAIR[0].tolist() == [0, 0] and KI.TX_PAIR[1].tolist() == [1, 1] and KI.TX_PAIR[2].tolist() == [1, 1]
    for m in range(3, KI.N_MODES):
        fam, a = KI.ANGULAR[m - 3]
        assert KI.TX_PAIR[m].tolist() == ([1, 1] if a < 0 else [1, 0] if fam == 1 else [0, 1])
        assert KI.TX_CLASS[m] == (1 if fam == 1 else 2)


@pytest.mark.parametrize("q", [30.0, 70.0])
def test_decoders_give_the_encoders_reconstruction(q: float) -> None:
    frame, coder = _frame(), _coder(12, False, q)
    ifr, offsets, _ = _encode25(frame, coder)
    status, recon, modes, txc = _kernel_decode(ifr.payload, frame.shape, coder, offsets)
    assert status == KM.OK
    np.testing.assert_array_equal(recon[: frame.shape[0], : frame.shape[1]], ifr.recon)
    np.testing.assert_array_equal(modes, ifr.modes)
    out = intra.decode_intra_frame(ifr.payload, *frame.shape, coder, offsets, mode_model=3)
    np.testing.assert_array_equal(out, ifr.recon)
    levels, n = _levels(ifr.payload, frame.shape)
    ref_modes, choices = intra.decode_modes25_reference(ifr.payload[4 : 4 + n], recon, levels, coder.offset,
                                                        intra.flat_tolerance(coder))  # fmt: skip
    np.testing.assert_array_equal(ref_modes, modes)
    np.testing.assert_array_equal(choices, txc)
    assert (choices == 1).any() and (choices == 0).any()  # both transforms are chosen
    np.testing.assert_array_equal(_literal_recon(recon, levels, modes, choices, coder, offsets), recon)
    # without the choices (a 2.4 reading of the same levels) the blocks that took the DST differ
    try:
        bad = intra.decode_intra_frame(ifr.payload, *frame.shape, coder, offsets, mode_model=2)
    except CodecError:
        pass
    else:
        assert not np.array_equal(bad, ifr.recon)


@pytest.mark.realdata
@pytest.mark.parametrize("series,index", [("ct_chest_lungpetctdx_A0001_philips", 30), ("mr_head_ge_signa_t1_ctk", 50)])
def test_real_slices_choose_the_dst_and_decode_bit_for_bit(shared_data: Path, series: str, index: int) -> None:
    ds = pydicom.dcmread(sorted((shared_data / series).glob("*.dcm"))[index])
    frame = ds.pixel_array[64:192, 64:224]
    bits, signed = int(ds.BitsStored), bool(ds.PixelRepresentation)
    frame = frame.astype(np.int16 if signed else np.uint16)
    coder = _coder(bits, signed, 55.0)
    ifr, offsets, _ = _encode25(frame, coder)
    status, recon, _, txc = _kernel_decode(ifr.payload, frame.shape, coder, offsets)
    assert status == KM.OK
    np.testing.assert_array_equal(recon[: frame.shape[0], : frame.shape[1]], ifr.recon)
    coded = txc < 2
    assert 0.05 < (txc[coded] == 1).mean() < 0.95  # both transforms in use on real data
    levels, n = _levels(ifr.payload, frame.shape)
    _, choices = intra.decode_modes25_reference(ifr.payload[4 : 4 + n], recon, levels, coder.offset,
                                                intra.flat_tolerance(coder))  # fmt: skip
    np.testing.assert_array_equal(choices, txc)


def test_printed_bound_is_the_largest_over_the_pairs() -> None:
    steps = quantize.quant_table(40.0, 12)
    plain = mdc2.error_bound_with_offsets(steps, None)
    with_tx = mdc2.error_bound_with_offsets(steps, None, tx=True)
    assert plain == mdc2.error_bound_with_offsets(steps, None, tx=False)
    dst_max = np.abs(KI.DST7).max(axis=1)
    a = np.full(8, 0.5)
    a[0] = np.sqrt(1 / 8)
    half = 0.5 * np.asarray(steps, np.float64).ravel()
    sums = [float(np.sum(half * np.outer(v, h).ravel())) + 0.5 for v in (a, dst_max) for h in (a, dst_max)]
    assert with_tx == pytest.approx(max(sums), rel=1e-12) and with_tx >= plain
    # a DST pair's worst case can exceed the DCT's: one unit error on coefficient (0, 0)
    unit = np.zeros((8, 8))
    unit[0, 0] = 1.0
    assert np.abs(KI.DST7.T @ unit @ KI.DST7).max() > np.abs(DCT_MATRIX.T @ unit @ DCT_MATRIX).max()


@pytest.mark.realdata
@pytest.mark.parametrize("q", [20, 50, 85])
def test_best_streams_decode_within_their_printed_bound(shared_data: Path, q: int) -> None:
    paths = sorted((shared_data / "ct_head_phantom_philips_ingenuity").glob("*.dcm"))
    arr = np.stack([pydicom.dcmread(paths[i]).pixel_array for i in (40, 70)])[:, 96:352, 96:352]
    data = medcodec.encode(arr, quality=q, effort="best", bits_stored=12, signed=False, jobs=1)
    header, index = container.parse_container(data)
    assert header.version == container.VERSION_25
    assert all(mdc2.read_dct_frame(data, header, e).mode_model == 3 for e in index)
    err = np.abs(medcodec.decode(data, jobs=1).astype(np.int64) - arr).reshape(2, -1).max(axis=1)
    bounds = mdc2.stream_error_bound(data)
    assert (err <= np.asarray(bounds)).all()
    # the filters aside, the loop's own reconstruction is within the pair bound the encoder checks
    coder = _coder(12, False, float(q))
    ifr, _, bound = _encode25(arr[0], coder)
    assert np.abs(ifr.recon.astype(np.int64) - arr[0]).max() <= bound


def test_the_default_and_best_write_2_5_and_the_switch_gives_2_4_back() -> None:
    frame = _frame()
    fast = medcodec.encode(frame, quality=60, effort="fast", bits_stored=12, signed=False, jobs=1)
    best = medcodec.encode(frame, quality=60, effort="best", bits_stored=12, signed=False, jobs=1)
    assert container.parse_container(fast)[0].version == container.VERSION_25
    assert container.parse_container(best)[0].version == container.VERSION_25
    saved = intra.TX_EFFORTS
    try:
        intra.TX_EFFORTS = ("best",)
        fast24 = medcodec.encode(frame, quality=60, effort="fast", bits_stored=12, signed=False, jobs=1)
        intra.TX_EFFORTS = ()
        best24 = medcodec.encode(frame, quality=60, effort="best", bits_stored=12, signed=False, jobs=1)
    finally:
        intra.TX_EFFORTS = saved
    assert container.parse_container(fast24)[0].version == container.VERSION_24
    assert container.parse_container(best24)[0].version == container.VERSION_24
    for data in (fast, best, fast24, best24):
        out = medcodec.decode(data, jobs=1)
        assert np.abs(out.astype(np.int64) - frame).max() <= max(mdc2.stream_error_bound(data))


def test_damaged_choice_segments_and_misplaced_flags_are_refused() -> None:
    frame, coder = _frame(), _coder(12, False, 50.0)
    ifr, offsets, _ = _encode25(frame, coder)
    n = struct.unpack_from("<I", ifr.payload)[0]
    for cut in (0, 1, n // 2):  # a mode segment that ends early
        short = struct.pack("<I", cut) + ifr.payload[4 : 4 + cut] + ifr.payload[4 + n :]
        with pytest.raises(CodecError):
            intra.decode_intra_frame(short, *frame.shape, coder, offsets, mode_model=3)
    with pytest.raises(TruncatedStreamError):
        intra.decode_intra_frame(ifr.payload[:3], *frame.shape, coder, offsets, mode_model=3)
    # FRAM flag 128 in a 2.4 stream, or without mode model 2, is an unknown bit
    best = medcodec.encode(frame, quality=50, effort="best", bits_stored=12, signed=False, jobs=1, compact=False)
    header, index = container.parse_container(best)
    assert header.version == container.VERSION_25
    old = dict(vars(header)) if hasattr(header, "__dict__") else header._asdict()
    as24 = type(header)(**{**old, "version": container.VERSION_24})
    with pytest.raises(CorruptStreamError):
        mdc2.read_dct_frame(best, as24, index[0])
    off = index[0][0] + 8 + 5  # the FRAM flags byte (u32 index, u8 table, u8 flags)
    cleared = bytearray(best)
    cleared[off] &= ~mdc2.FLAG_MODES2 & 0xFF
    with pytest.raises(CorruptStreamError):
        mdc2.read_dct_frame(bytes(cleared), header, index[0])


def test_2_4_streams_are_unchanged_by_the_tx_decoder() -> None:
    """The 2.4 decoder path through reconstruct_pair gives 2.4's encoder reconstruction (the goldens
    check the bytes; this the kernel on a fresh frame)."""
    frame, coder = _frame(seed=5), _coder(12, False, 45.0)
    scaled = coder.scaled(frame)
    offsets = mdc2.reconstruction_offsets(mdc2.round_scaled(scaled), scaled)
    ifr = intra.encode_intra_frame(frame, coder, offsets, "fast", 2, mdc2.error_bound_with_offsets(coder.steps, offsets))
    np.testing.assert_array_equal(intra.decode_intra_frame(ifr.payload, *frame.shape, coder, offsets, mode_model=2),
                                  ifr.recon)  # fmt: skip
    assert mdc.INTRA_RDOQ_EFFORTS  # the RD levels are on: 2.5 needs them


@pytest.mark.parametrize("joint", [1, 2])
@pytest.mark.parametrize("q", [30.0, 70.0])
def test_joint_mode_transform_decision_decodes_bit_for_bit(monkeypatch: pytest.MonkeyPatch, joint: int,
                                                           q: float) -> None:  # fmt: skip
    """``intra.TX_JOINT`` (encoder only): the pair tried for every RD-tried candidate writes streams
    the 2.5 decoders (kernel, plain-Python choices, literal inverse) read as the encoder has them."""
    monkeypatch.setattr(intra, "TX_JOINT", {"fast": joint, "best": joint})
    frame, coder = _frame(seed=7), _coder(12, False, q)
    for effort in ("fast", "best"):
        ifr, offsets, bound = _encode25(frame, coder, effort)
        status, recon, modes, txc = _kernel_decode(ifr.payload, frame.shape, coder, offsets)
        assert status == KM.OK
        np.testing.assert_array_equal(recon[: frame.shape[0], : frame.shape[1]], ifr.recon)
        np.testing.assert_array_equal(modes, ifr.modes)
        levels, n = _levels(ifr.payload, frame.shape)
        ref_modes, choices = intra.decode_modes25_reference(ifr.payload[4 : 4 + n], recon, levels, coder.offset,
                                                            intra.flat_tolerance(coder))  # fmt: skip
        np.testing.assert_array_equal(ref_modes, modes)
        np.testing.assert_array_equal(choices, txc)
        assert (choices == 1).any() and (choices == 0).any()
        np.testing.assert_array_equal(_literal_recon(recon, levels, modes, choices, coder, offsets), recon)
        assert np.abs(ifr.recon.astype(np.int64) - frame).max() <= bound


@pytest.mark.realdata
@pytest.mark.parametrize("series,index", [("ct_head_phantom_philips_ingenuity", 60), ("mr_head_ge_signa_t1_ctk", 50)])
def test_joint_decision_picks_pairs_the_winner_only_search_cannot(monkeypatch: pytest.MonkeyPatch, shared_data: Path,
                                                                  series: str, index: int) -> None:  # fmt: skip
    """With the joint decision some blocks take a mode other than the DCT's RD winner together with
    that mode's DST pair (what trying the pair for the winner only cannot find), and the frame's
    ``SSE + lambda bits`` (the loop's reconstruction, the payload's real bits) is lower than with the
    winner-only search."""
    ds = pydicom.dcmread(sorted((shared_data / series).glob("*.dcm"))[index])
    bits, signed = int(ds.BitsStored), bool(ds.PixelRepresentation)
    frame = ds.pixel_array[96:352, 96:352].astype(np.int16 if signed else np.uint16)
    coder = _coder(bits, signed, 55.0)
    lam = intra.lambda_for(coder)
    out = {}
    for joint in (0, 1):
        monkeypatch.setattr(intra, "TX_JOINT", {"fast": joint, "best": 0})
        ifr, offsets, bound = _encode25(frame, coder, "fast")
        _, _, _, txc = _kernel_decode(ifr.payload, frame.shape, coder, offsets)
        sse = float(np.sum((ifr.recon.astype(np.float64) - frame) ** 2))
        out[joint] = (ifr.modes, txc, sse + lam * 8 * len(ifr.payload))
        assert np.abs(ifr.recon.astype(np.int64) - frame).max() <= bound
    (m0, _, j0), (m1, t1, j1) = out[0], out[1]
    assert ((m1 != m0) & (t1 == 1)).sum() > 0.01 * m0.size
    assert j1 < j0
