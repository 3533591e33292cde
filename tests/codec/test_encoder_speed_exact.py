"""The encoder's speed-ups of enc12 give what the code before them gave (issue 12, encoder only):
the RD trial with its block contexts found once (:func:`._kernels_intra._rd_trial_given`) against
the trial that finds them itself plus :func:`._kernels_intra._rest_rate`, the intra frame given the
offsets' rounded levels against the one that computes them, and the Rice block's parameter chosen
with NumPy against the plain rule of ``docs/format.md`` §16 (the cheapest k, the least on ties).
The streams of whole encodes are pinned by the goldens (``test_golden*.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_intra_rdmode import _random_blocks  # tests/codec is on sys.path

import medcodec
from medcodec.codec import _kernels_intra as KI
from medcodec.codec import _kernels_ms as KM
from medcodec.codec import _rdoq_ms as R
from medcodec.codec import container, intra, mdc, mdc2
from medcodec.codec._kernels_v2 import POS_BAND, _dc_context, _nz_ctx
from medcodec.codec.framecoder import FrameCoder
from medcodec.codec.quantize import quant_table
from medcodec.codec.zigzag import ZIGZAG


@pytest.mark.parametrize(("seed", "mu", "texture"), [(5, 0.0, False), (6, 0.4, True), (7, 0.4, False), (8, 2.0, True)])
def test_rd_trial_given_is_the_trial_that_finds_its_contexts(seed: int, mu: float, texture: bool) -> None:
    """Exactly (``==``, not approx) the levels, non-zero count, changed flag, squared error, model
    rate and rest rate of :func:`._kernels_intra._rd_trial` + ``_rest_rate``, with and without the
    texture target, on blocks whose neighbours hold final levels."""
    scaled, rounded = _random_blocks(seed, 36)
    scaled[:, 1:] *= 2.5  # more levels of 2 and 3 (moves and continuation symbols)
    rounded = np.round(scaled).astype(np.int32)
    bx = 6
    cost = R.symbol_costs(R.symbol_counts(rounded, bx, np.zeros(int(KM.OFFSET[-1]))))
    stepz = np.linspace(4.0, 40.0, 64)
    wz, offs_f, zz = stepz**2, np.concatenate([[0.0], np.full(63, 0.12)]), ZIGZAG.astype(np.int64)
    invz, lam = 1.0 / stepz, 0.3 * float(np.mean(stepz[1:] ** 2))
    tex_sum = -np.inf if texture else np.inf  # the old trial's test: the sample sum (0 here) against it

    def scratch() -> tuple[np.ndarray, ...]:
        return (np.empty(64), np.empty(64, np.int64), np.empty(64, np.int64), np.empty(64), np.empty(65, np.int64),
                np.empty(65), np.empty(65))  # fmt: skip

    old_levels, new_levels = rounded.copy(), rounded.copy()
    old_nzs, new_nzs = np.zeros(len(rounded), np.int64), np.zeros(len(rounded), np.int64)
    moved = 0
    for b in range(len(rounded)):
        coef = np.empty(64)
        coef[zz] = scaled[b] * stepz
        lv = rounded[b].astype(np.int64)
        changed, d1, r1 = KI._rd_trial(np.zeros(64, np.int64), coef, lv, old_levels, b, bx, old_nzs, POS_BAND, cost,
                                       wz, offs_f, lam, mu, 1.0, tex_sum, zz, invz, *scratch())  # fmt: skip
        rest = KI._rest_rate(old_levels, b, bx)
        nbkb = np.zeros(64, np.int64)
        R.neighbour_buckets(new_levels, b, bx, 63, nbkb)
        dcp, _ = _dc_context(new_levels, b, bx)
        sc, rm, ra, rrem, rp0, rp1 = (np.empty(64), np.empty(64, np.int64), np.empty(64), np.empty(65, np.int64),
                                      np.empty(65), np.empty(65))  # fmt: skip
        got = KI._rd_trial_given(texture, coef, lv, new_levels, b, new_nzs, _nz_ctx(new_nzs, b, bx), nbkb, dcp,
                                 POS_BAND, cost, wz, offs_f, lam, mu, 1.0, zz, invz, sc, rm, ra, rrem, rp0, rp1)  # fmt: skip
        assert got == (changed, d1, r1, rest)
        np.testing.assert_array_equal(new_levels[b], old_levels[b])
        assert new_nzs[b] == old_nzs[b] == np.count_nonzero(old_levels[b, 1:])
        moved += bool(changed)
    assert 0 < moved < len(rounded)


def test_intra_frame_given_the_offsets_rounded_levels_is_the_same_frame() -> None:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:72, :88]
    frame = (1500 + 700 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + rng.normal(0, 25, xx.shape)).astype(np.uint16)
    coder = FrameCoder.for_table(quant_table(60, 12), 12, False)
    scaled = coder.scaled(frame)
    rounded = mdc2.round_scaled(scaled)
    offsets = mdc2.reconstruction_offsets(rounded, scaled)
    bound = mdc2.error_bound_with_offsets(coder.steps, offsets, tx=True)
    plain = intra.encode_intra_frame(frame, coder, offsets, "fast", 3, bound)
    given = intra.encode_intra_frame(frame, coder, offsets, "fast", 3, bound, rounded=rounded)
    assert given.payload == plain.payload
    np.testing.assert_array_equal(given.recon, plain.recon)
    assert mdc._intra_frame(coder, frame, "fast", 3)[0].payload == plain.payload  # what the encoder runs
    with pytest.raises(medcodec.InvalidInputError, match="rounded levels"):
        intra.encode_intra_frame(frame, coder, offsets, "fast", 3, bound, rounded=rounded[1:])


def _rice_k_rule(values: list[int]) -> int:
    zs = [2 * v if v >= 0 else -2 * v - 1 for v in values]
    return min(range(container.MAX_RICE_K + 1), key=lambda k: sum((z >> k) + 1 + k for z in zs))


@pytest.mark.parametrize("scale", [0, 1, 3, 40, 900, 30000])
def test_rice_parameter_is_the_cheapest_and_the_least_on_ties(scale: int) -> None:
    rng = np.random.default_rng(scale)
    for n in (0, 1, 2, 63):
        values = np.clip(np.rint(rng.normal(0, scale + 1e-9, n)), -65536, 65535).astype(int).tolist()
        out = bytearray()
        container.put_rice(out, values)
        assert out[0] == _rice_k_rule(values)
    tie = [1, 1, 1, 1]  # z = 2 each: k = 0, 1 and 2 all cost 12 bits
    out = bytearray()
    container.put_rice(out, tie)
    assert out[0] == _rice_k_rule(tie) == 0
