"""The decoder's fast paths against plain references (issue 12, decode speed): every fast path
must give the same values, samples and errors as the way the format spells it out."""

from __future__ import annotations

import numpy as np
import pytest

from medcodec.codec import container
from medcodec.errors import CodecError


def _rice_bitwise(data: bytes, n: int, limit: int) -> tuple[list[int], int] | str:
    """:meth:`.container.Reader.rice` as first written (bit by bit, docs/format.md §16): the values and
    the bytes read, or the kind of error ("cut off" / "beyond")."""
    if not data:
        return "cut off"
    k = data[0]
    if k > container.MAX_RICE_K:
        return "parameter"
    zmax = 2 * limit + 1
    bit, end = 8, 8 * len(data)
    values = []
    for _ in range(n):
        q = 0
        while True:
            if bit >= end:
                return "cut off"
            one = data[bit >> 3] >> (7 - (bit & 7)) & 1
            bit += 1
            if not one:
                break
            q += 1
            if q << k > zmax:
                return "beyond"
        if bit + k > end:
            return "cut off"
        low = 0
        for _ in range(k):
            low = low << 1 | (data[bit >> 3] >> (7 - (bit & 7)) & 1)
            bit += 1
        z = q << k | low
        if z > zmax:
            return "beyond"
        values.append(-(z >> 1) - 1 if z & 1 else z >> 1)
    return values, -(-bit // 8)


def _rice_fast(data: bytes, n: int, limit: int) -> tuple[list[int], int] | str:
    r = container.Reader(data, 0, "T")
    try:
        values = r.rice(n, "v", limit)
    except CodecError as e:
        msg = str(e)
        return "cut off" if "cut off" in msg else "beyond" if "beyond" in msg else "parameter"
    return values, r.pos


def test_rice_reader_matches_the_bitwise_reader_on_coded_damaged_and_random_bytes() -> None:
    """Coded blocks (every k the coder picks), the same cut short, bit-flipped, and random bytes: the
    string-window reader gives what the bit-by-bit one gives, values, bytes read and kind of error."""
    rng = np.random.default_rng(12)
    checked = errors = 0
    for trial in range(600):
        limit = int(rng.choice([1, 7, 128, 65535]))
        n = int(rng.integers(1, 70))
        scale = float(rng.choice([0.5, 3, 40, 3000]))
        values = np.clip(np.round(rng.laplace(0, scale, n)), -limit - 1, limit).astype(int).tolist()
        out = bytearray()
        container.put_rice(out, values)
        cases = [bytes(out), bytes(out[: int(rng.integers(0, len(out)))])]
        flipped = bytearray(out)
        pos = int(rng.integers(1, len(out))) if len(out) > 1 else 0
        flipped[pos] ^= 1 << int(rng.integers(0, 8))
        cases += [bytes(flipped), bytes([int(rng.integers(0, 18))]) + rng.bytes(int(rng.integers(0, 40)))]
        cases.append(bytes(out) + rng.bytes(5))  # bytes after the block are not read
        for data in cases:
            want = _rice_bitwise(data, n, limit)
            assert _rice_fast(data, n, limit) == want, (trial, data.hex(), n, limit)
            checked += 1
            errors += isinstance(want, str)
        assert _rice_fast(bytes(out), n, limit) == (values, len(out))
    assert checked == 3000 and 300 < errors < 2700  # both kinds of outcome were exercised


def _dense_reference(lvz: np.ndarray, steps: np.ndarray, offsets: np.ndarray, dv: np.ndarray, dh: np.ndarray,
                     pred: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """An intra block's reconstruction as §14 / §18 write it, in plain Python floats (IEEE doubles):
    ``dv.T @ deq @ dh`` with every sum over k = 0..7 in order, zero products included, then
    ``clip(pred + floor(v + 0.5))``; (samples, the float sums before rounding)."""
    from medcodec.codec.zigzag import ZIGZAG

    deq = [[0.0] * 8 for _ in range(8)]
    for k in range(64):
        v = int(lvz[k])
        if v:
            p = int(ZIGZAG[k])
            q = 256 * v - int(offsets[k]) if v > 0 else 256 * v + int(offsets[k])
            deq[p // 8][p % 8] = q * float(steps[p // 8, p % 8]) / 256.0
    dvl, dhl = dv.tolist(), dh.tolist()
    tmp = [[0.0] * 8 for _ in range(8)]
    for i in range(8):
        for j in range(8):
            s = 0.0
            for k in range(8):
                s += dvl[k][i] * deq[k][j]
            tmp[i][j] = s
    out = np.empty((8, 8), np.int64)
    sums = np.empty((8, 8))
    for i in range(8):
        for j in range(8):
            s = 0.0
            for k in range(8):
                s += tmp[i][k] * dhl[k][j]
            sums[i, j] = s
            out[i, j] = min(max(int(pred[8 * i + j]) + int(np.floor(s + 0.5)), lo), hi)
    return out, sums


@pytest.mark.realdata
def test_sparse_reconstruction_is_bit_exact_on_real_and_random_level_patterns(shared_data) -> None:
    """:func:`._kernels_intra.reconstruct_sparse` (the decoder's) and :func:`.reconstruct_pair` (the
    encoder's) against the dense plain-Python order on 1500 blocks: the levels of real chest CT
    and MR intra frames (q20-q90), the same with random subsets zeroed (many zero patterns: lone
    coefficients anywhere, gaps inside columns, empty columns), random dense and huge levels, each
    with a random transform pair (DCT / DST-VII either way), random offsets and predictions near the
    clipping range. One differing sample, or one float sum before rounding, fails."""
    import pydicom

    import medcodec
    from medcodec.codec import _kernels_intra as KI
    from medcodec.codec import _kernels_ms as KM
    from medcodec.codec import container, mdc2
    from medcodec.codec.framecoder import FrameCoder
    from medcodec.codec.transform import DCT_MATRIX
    from medcodec.codec.zigzag import ZIGZAG

    rng = np.random.default_rng(1212)
    blocks = []
    for series, qs in (("ct_chest_lungpetctdx_A0001_philips", (20, 55, 90)), ("mr_head_ge_signa_t1_ctk", (35, 80))):
        path = sorted((shared_data / series).glob("*.dcm"))[20]
        ds = pydicom.dcmread(path)
        f = ds.pixel_array
        bits, signed = int(ds.BitsStored), bool(ds.PixelRepresentation)
        for q in qs:
            data = medcodec.encode(f, bits_stored=bits, signed=signed, quality=q, jobs=1)
            header, index = container.parse_container(data)
            fr = mdc2.read_dct_frame(data, header, index[0])
            assert fr.intra and fr.intra_payload is not None
            payload = np.frombuffer(fr.intra_payload, np.uint8)
            nmode = int.from_bytes(fr.intra_payload[:4], "little")
            nb = (-(-f.shape[0] // 8)) * (-(-f.shape[1] // 8))
            levels = np.zeros((nb, 64), np.int32)
            within = header.version >= container.VERSION_211  # the default's 2.6 frames: format 2.11's contexts
            trained = header.version >= container.VERSION_212  # from 2.12's trained starts
            assert KM.decode_coefficients_ms(payload, 4 + nmode, payload.size, -(-f.shape[1] // 8), levels,
                                             within, trained) == KM.OK  # fmt: skip
            coder = FrameCoder.for_table(header.qtables[0], bits, signed)
            busy = np.flatnonzero(np.count_nonzero(levels, axis=1) >= 2)
            for b in rng.choice(busy, 150, replace=False):
                blocks.append((levels[b].copy(), coder))
    n_real = len(blocks)
    for lvz, coder in blocks[:n_real]:
        for keep in (0.5, 0.15):  # random subsets of the real levels: gaps, lone coefficients
            sub = lvz * (rng.random(64) < keep)
            blocks.append((sub.astype(np.int32), coder))
    coder = blocks[0][1]
    for _ in range(150):  # random dense, sparse-anywhere and extreme levels
        lv = np.zeros(64, np.int32)
        nz = rng.choice(64, int(rng.integers(1, 65)), replace=False)
        lv[nz] = rng.integers(-40, 41, nz.size) * rng.choice([1, 1, 1, 50_000], nz.size)
        blocks.append((lv, coder))
    lone = np.zeros((64, 64), np.int32)
    lone[np.arange(64), np.arange(64)] = rng.choice([-3, -1, 1, 7], 64)
    blocks += [(lv, coder) for lv in lone]
    assert len(blocks) >= 1500

    zz = ZIGZAG.astype(np.int64)
    mats = (np.ascontiguousarray(DCT_MATRIX), np.ascontiguousarray(KI.DST7))
    deq, tmp, rr = np.zeros(64), np.empty(64), np.empty(64)
    colmask, cols8, cmask = np.zeros(8, np.int64), np.empty(8, np.int64), np.empty(8, np.int64)
    mismatches = differing_pairs = 0
    for lvz, coder in blocks:
        steps = coder.steps.astype(np.float64).reshape(8, 8)
        stepz = np.array([steps[p // 8, p % 8] for p in ZIGZAG], np.float64)
        offsets = np.zeros(64, np.int64)
        offsets[1:] = rng.integers(0, 129, 63)
        lo, hi = int(coder._lo), int(coder._hi)
        pred = rng.integers(lo - 50, hi + 50, 64).astype(np.int64)
        pred[: int(rng.integers(0, 64))] = rng.integers(lo, hi + 1)
        dv, dh = mats[int(rng.integers(0, 2))], mats[int(rng.integers(0, 2))]
        want, sums = _dense_reference(lvz, steps, offsets, dv, dh, pred, lo, hi)
        got = np.zeros((8, 8), np.int32)
        KI.reconstruct_sparse(lvz, stepz, zz, offsets, dv, dh, pred, np.int64(lo), np.int64(hi), deq, tmp, rr,
                              colmask, got, 0, 0)  # fmt: skip
        # the float sums themselves (left in rr), not only their rounding: any change of order shows
        mismatches += int(lvz.any() and not np.array_equal(rr.reshape(8, 8), sums))
        enc = np.zeros((8, 8), np.int32)
        KI.reconstruct_pair(lvz, stepz, zz, offsets, dv, dh, pred, np.int64(lo), np.int64(hi), deq, tmp, rr, cols8,
                            cmask, enc, 0, 0)  # fmt: skip
        mismatches += int(lvz.any() and not np.array_equal(rr.reshape(8, 8), sums))
        mismatches += int(not np.array_equal(got, want)) + int(not np.array_equal(enc, want))
        differing_pairs += dv is not dh
        assert not deq.any() and not colmask.any()  # the scratch contract: left all zero
    assert mismatches == 0
    assert 300 < differing_pairs < len(blocks) - 300
