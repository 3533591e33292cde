"""The intra mode decision that sees the RD levels, and the RD search's edge weight (issue 12,
encoder only: :func:`medcodec.codec._kernels_intra.encode_intra2_rdmode`).

The rate the decision charges (:func:`._kernels_intra._model_rate`), the per-candidate trial
(:func:`._kernels_intra._rd_trial`) and the edge weight's DCT diagonal
(:func:`._kernels_intra.edge_gain`) are re-derived in plain Python from their docstrings; frames
coded with them decode (numba and plain reference decoders) to the encoder's reconstruction,
within the printed bound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from test_intra import _rd_inputs, _smooth_noisy, coder_for, levels_of, ref_decode  # tests/codec is on sys.path

import medcodec
from medcodec.codec import _kernels_intra as KI
from medcodec.codec import _kernels_ms as KM
from medcodec.codec import _rdoq_ms as R
from medcodec.codec import intra, mdc2
from medcodec.codec._kernels_v2 import POS_BAND
from medcodec.codec.transform import DCT_MATRIX
from medcodec.codec.zigzag import ZIGZAG


def _nz_bucket_ref(s: int) -> int:
    from medcodec.codec._kernels_v2 import _nz_bucket

    return int(_nz_bucket(np.int64(s)))


def model_rate_reference(levels: np.ndarray, b: int, bx: int, nzs: np.ndarray, cost: np.ndarray) -> float:
    """The docstring of ``_model_rate``: non-zero count symbol(s) under the neighbours' counts, one
    base symbol per AC position while non-zero levels remain (context: position class, remaining
    count, neighbours' magnitudes), one bit per sign."""
    posc = KM.POS_FINE if levels.shape[0] >= KM.FINE_POSITION_BLOCKS else POS_BAND
    left, up = b % bx > 0, b >= bx
    if left and up:
        nzc = _nz_bucket_ref(int(nzs[b - 1] + nzs[b - bx]))
    elif left:
        nzc = _nz_bucket_ref(int(2 * nzs[b - 1]))
    elif up:
        nzc = _nz_bucket_ref(int(2 * nzs[b - bx]))
    else:
        nzc = 0
    mags = [abs(int(v)) for v in levels[b]]
    nz = sum(m != 0 for m in mags[1:])
    r = float(cost[KM.O_NZ + 16 * nzc + min(nz, 15)]) + nz
    if nz >= 15:
        r += float(cost[KM.O_NZH + ((nz - 15) >> 2)] + cost[KM.O_NZL + ((nz - 15) & 3)])
    rem = nz
    for k in range(1, 64):
        if rem == 0:
            break
        nsum = (abs(int(levels[b - 1, k])) if left else 0) + (abs(int(levels[b - bx, k])) if up else 0)
        nbk = int(KM.NBR_LUT[min(nsum, 21)])
        ctx = KM.O_BASE + 4 * ((int(posc[k]) * KM.REM_BUCKETS + int(KM.REM_LUT[rem])) * KM.NBR_BUCKETS + nbk)
        r += float(cost[ctx + min(mags[k], 3)])
        rem -= mags[k] != 0
    return r


def _random_blocks(seed: int, nblocks: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scaled = rng.laplace(0, 1.0, (nblocks, 64)) * np.exp(-np.arange(64) / 14.0)
    scaled[:, 0] = rng.normal(0, 30, nblocks)
    levels = np.round(scaled).astype(np.int32)
    return scaled, levels


@pytest.mark.parametrize("seed", [1, 2])
def test_model_rate_kernel_matches_plain_twin(seed: int) -> None:
    _, levels = _random_blocks(seed, 30)
    bx = 6
    cost = R.symbol_costs(R.symbol_counts(levels, bx, np.zeros(int(KM.OFFSET[-1]))))
    nzs = np.count_nonzero(levels[:, 1:], axis=1).astype(np.int64)
    posc = POS_BAND
    for b in range(levels.shape[0]):
        got = KI._model_rate(levels, b, bx, nzs, posc, cost)
        assert got == pytest.approx(model_rate_reference(levels, b, bx, nzs, cost), rel=1e-12, abs=1e-9)
    # a zeroed level somewhere changes it (the rate is not a constant)
    b = int(np.argmax(nzs))
    moved = levels.copy()
    k = int(np.flatnonzero(moved[b, 1:])[-1]) + 1
    moved[b, k] = 0
    assert KI._model_rate(moved, b, bx, nzs, posc, cost) != KI._model_rate(levels, b, bx, nzs, posc, cost)


@pytest.mark.parametrize("seed", [3, 4])
def test_rd_trial_reports_what_the_block_search_does_twin(seed: int) -> None:
    """``_rd_trial`` leaves ``rdoq_block``'s levels and reports whether they moved, their squared
    error and :func:`model_rate_reference` of them."""
    scaled, rounded = _random_blocks(seed, 24)
    bx = 6
    cost = R.symbol_costs(R.symbol_counts(rounded, bx, np.zeros(int(KM.OFFSET[-1]))))
    stepz = np.linspace(4.0, 40.0, 64)
    wz = stepz**2
    offs_f = np.concatenate([[0.0], np.full(63, 0.1)])
    zz = ZIGZAG.astype(np.int64)
    invz = 1.0 / stepz
    lam = 0.3 * float(np.mean(wz[1:]))
    scratch = (np.empty(64), np.empty(64, np.int64), np.empty(64, np.int64), np.empty(64), np.empty(65, np.int64),
               np.empty(65), np.empty(65))  # fmt: skip
    levels = rounded.copy()
    nzs = np.zeros(levels.shape[0], np.int64)
    moved = 0
    for b in range(levels.shape[0]):
        coef = np.empty(64)
        coef[zz] = scaled[b] * stepz  # natural order, as the trial's residual DCT
        lv = rounded[b].astype(np.int64)
        want = levels.copy()
        want[b] = lv
        nzs_before = nzs.copy()
        changed, d1, r1 = KI._rd_trial(np.zeros(64, np.int64), coef, lv, levels, b, bx, nzs, POS_BAND, cost, wz,
                                       offs_f, lam, 0.0, 0.0, np.inf, zz, invz, *scratch)  # fmt: skip
        R.rdoq_block(coef[zz] * invz, want, b, bx, nzs_before.copy(), POS_BAND, cost, wz, offs_f, lam, 0.0, 0.0,
                     False, False, np.empty(64, np.int64), np.empty(64, np.int64), np.empty(64),
                     np.empty(65, np.int64), np.empty(65), np.empty(65))  # fmt: skip
        np.testing.assert_array_equal(levels[b], want[b])
        assert bool(changed) == (not np.array_equal(want[b], lv))
        if changed:
            m = np.abs(want[b].astype(np.float64))
            r = np.where(m > 0, m - offs_f, 0.0)
            assert d1 == pytest.approx(float(np.sum(wz * (np.abs(scaled[b]) - r) ** 2)), rel=1e-9)
        assert r1 == pytest.approx(model_rate_reference(want, b, bx, nzs_before, cost), rel=1e-12)
        moved += bool(changed)
        nzs[b] = np.count_nonzero(levels[b, 1:])
    assert 0 < moved < levels.shape[0]


@pytest.mark.parametrize("w", [1.0, 2.5])
def test_edge_gain_is_the_diagonal_of_the_weighted_error_twin(w: float) -> None:
    """``edge_gain`` at basis (u, v) = sum over the samples of weight x basis^2, the weight ``w`` on
    row 7 and column 7, 1 elsewhere."""
    wgt = np.ones((8, 8))
    wgt[7, :] = w
    wgt[:, 7] = w
    for p in range(64):
        u, v = divmod(p, 8)
        basis = np.outer(DCT_MATRIX[u], DCT_MATRIX[v])
        assert KI.edge_gain(p, DCT_MATRIX, w) == pytest.approx(float(np.sum(wgt * basis**2)), rel=1e-12)


def _edged(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Waves, an oblique edge and noise: blocks where several modes compete."""
    rng = np.random.default_rng(seed)
    y, x = np.indices(shape)
    return (1800 + 600 * np.sin(x / 5 + y / 9) + 300 * (x > y + 10) + rng.normal(0, 40, shape)).clip(0, 4095).astype(
        np.uint16
    )


@pytest.mark.parametrize(("rate", "edge", "margin"), [(1.25, 1.0, np.inf), (1.25, 2.5, 1.2), (1.0, 1.0, 1.1)])
@pytest.mark.parametrize("q", [30, 40])
def test_rd_mode_frame_decodes_as_the_plain_reference_twin(q: float, rate: float, edge: float, margin: float,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """No syntax changes: the numba and the plain reference decoders give the encoder's
    reconstruction, within the bound; the decision did change (other modes or levels than without)."""
    frame = _edged((64, 72), q)
    coder = coder_for(12, False, q)
    bound = mdc2.error_bound_with_offsets(coder.steps, None)
    monkeypatch.setattr(intra, "RD_MODE_EFFORTS", ())
    plain = intra.encode_intra_frame(frame, coder, None, mode_model=2, rd_bound=bound)
    monkeypatch.setattr(intra, "RD_MODE_EFFORTS", ("fast", "best"))
    monkeypatch.setattr(intra, "RD_MODE_RATE", rate)
    monkeypatch.setattr(intra, "RD_EDGE_WEIGHT", edge)
    monkeypatch.setattr(intra, "RD_MODE_MARGIN", {"fast": margin, "best": margin})
    rd = intra.encode_intra_frame(frame, coder, None, mode_model=2, rd_bound=bound)
    dec = intra.decode_intra_frame(rd.payload, 64, 72, coder, None, mode_model=2)
    np.testing.assert_array_equal(dec, rd.recon)
    ref = ref_decode(levels_of(rd.payload, rd.modes, 9), rd.modes, coder, 64, 72)
    np.testing.assert_array_equal(dec.astype(np.int64), ref)
    assert np.abs(rd.recon.astype(np.int64) - frame).max() <= bound
    assert not np.array_equal(rd.modes, plain.modes)


def test_rd_mode_blocks_beyond_the_checked_bound_go_back_to_rounded_levels() -> None:
    """The in-loop bound check holds with the RD mode decision too: below what the free search
    reaches, blocks go back to their rounded levels; at the printed bound no sample is further."""
    frame = _smooth_noisy((96, 96), 3)
    coder = coder_for(12, False, 60)
    offsets, x, args, (levels, modes, recon, skip) = _rd_inputs(frame, coder)
    bx = x.shape[1] // 8
    tol = intra.flat_tolerance(coder)
    KI.encode_intra2(*args, levels, modes, recon, skip, KI.N_COARSE, KI.N_FULL, KI.MODE2_SCALE, KI.MODE2_BIAS, tol)
    cost, lam_rd, _, rho, _ = intra.rd_params(coder, frame, levels, bx)
    printed = mdc2.error_bound_with_offsets(coder.steps, offsets)

    def run(bound: float) -> tuple[int, np.ndarray]:
        n = KI.encode_intra2_rdmode(*args, levels, modes, recon, skip, KI.N_COARSE, KI.N_FULL, KI.MODE2_SCALE,
                                    KI.MODE2_BIAS, tol, cost, lam_rd, 0.0, rho, -np.inf, bound, True,
                                    1.25, np.inf, 2.5)  # fmt: skip
        e = np.abs(recon - x).reshape(x.shape[0] // 8, 8, bx, 8)
        return n, e.max(axis=(1, 3)).ravel()

    n_free, err_free = run(np.inf)
    assert n_free == 0
    low = float(np.percentile(err_free, 75))
    assert low < printed and (err_free > low).any()
    n, _ = run(low)
    assert n > 0
    n, err = run(printed)
    assert err.max() <= printed


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("series", "bits", "signed"),
    [("ct_head_phantom_philips_ingenuity", 12, False), ("mr_head_ge_signa_t1_ctk", 16, True)],
)  # fmt: skip
def test_rd_mode_streams_decode_within_their_printed_bound(shared_data: Path, monkeypatch: pytest.MonkeyPatch,
                                                           series: str, bits: int, signed: bool) -> None:  # fmt: skip
    """Whole ``best`` streams with the RD mode decision: every frame within the printed bound, and
    the stream differs from the one without it (the switch reaches the encoder)."""
    paths = sorted((shared_data / series).glob("*.dcm"))
    frames = np.stack([pydicom.dcmread(paths[i]).pixel_array for i in (5, len(paths) // 2)])
    kw = dict(format="mdc", quality=55, bits_stored=bits, signed=signed, jobs=1, effort="best")
    monkeypatch.setattr(intra, "TX_EFFORTS", ())  # 2.4: format 2.5 runs the RD mode decision whatever the switch
    monkeypatch.setattr(intra, "RD_MODE_EFFORTS", ())
    off = medcodec.encode(frames, **kw)
    monkeypatch.setattr(intra, "RD_MODE_EFFORTS", ("best",))
    on = medcodec.encode(frames, **kw)
    assert on != off
    dec = medcodec.decode(on)
    for got, want, bound in zip(dec, frames, mdc2.stream_error_bound(on), strict=True):
        assert np.abs(got.astype(np.int64) - want).max() <= bound


def test_rd_mode_search_override_reaches_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """``intra.RD_MODE_SEARCH`` widens the search of an effort with the RD mode decision: other
    modes than with :data:`intra.SEARCH`'s, the frame still decodes to the encoder's reconstruction
    within the bound; without the RD mode decision it is not read."""
    frame = _edged((64, 72), 30)
    coder = coder_for(12, False, 30)
    bound = mdc2.error_bound_with_offsets(coder.steps, None)
    narrow = intra.encode_intra_frame(frame, coder, None, mode_model=2, rd_bound=bound)
    monkeypatch.setattr(intra, "RD_MODE_SEARCH", {"fast": (16, 6), "best": None})
    wide = intra.encode_intra_frame(frame, coder, None, mode_model=2, rd_bound=bound)
    assert not np.array_equal(wide.modes, narrow.modes)
    dec = intra.decode_intra_frame(wide.payload, 64, 72, coder, None, mode_model=2)
    np.testing.assert_array_equal(dec, wide.recon)
    assert np.abs(dec.astype(np.int64) - frame).max() <= bound
    monkeypatch.setattr(intra, "RD_MODE_EFFORTS", ())
    off = intra.encode_intra_frame(frame, coder, None, mode_model=2, rd_bound=bound)
    monkeypatch.setattr(intra, "RD_MODE_SEARCH", {"fast": None, "best": None})
    assert intra.encode_intra_frame(frame, coder, None, mode_model=2, rd_bound=bound).payload == off.payload
