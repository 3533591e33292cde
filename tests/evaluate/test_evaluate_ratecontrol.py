"""Rate search over monotone knobs, on toy size functions with known answers."""

from __future__ import annotations

import math

import pytest

from medcodec.errors import InvalidInputError
from medcodec.evaluate.peers import Knob
from medcodec.evaluate.ratecontrol import KnobSearch, calibration_indices, find_knob_for_rate


def test_continuous_increasing_knob_hits_target() -> None:
    knob = Knob("psnr_db", "toy", 20.0, 100.0)
    # bpp doubles every 6 dB: bpp = 2 ** ((psnr - 44) / 6)  -> 1 bpp at 44 dB, 0.5 at 38
    res = find_knob_for_rate(lambda v: 2 ** ((v - 44.0) / 6.0), knob, 1.0, rel_tol=0.005)
    assert res.hit and abs(math.log(res.bpp)) <= math.log1p(0.005)
    assert res.value == pytest.approx(44.0, abs=0.05)
    assert res.evaluations <= 8  # false position on a log-linear curve converges fast


def test_decreasing_log_knob() -> None:
    knob = Knob("step", "toy", 1e-6, 0.5, size_increases=False, log_scale=True)
    # bpp = 0.001 / step: 2 bpp at step 5e-4
    res = find_knob_for_rate(lambda s: 0.001 / s, knob, 2.0)
    assert res.hit
    assert res.value == pytest.approx(5e-4, rel=0.03)


def test_integer_knob_returns_closest_integer() -> None:
    knob = Knob("near", "toy", 0, 255, size_increases=False, integer=True)
    # bpp = 8 / (1 + near): no integer gives exactly 0.7 bpp (near 10 -> 0.727, 11 -> 0.667)
    res = find_knob_for_rate(lambda n: 8.0 / (1.0 + n), knob, 0.7, rel_tol=0.001)
    assert float(res.value).is_integer()
    assert res.value in (10.0, 11.0)
    assert not res.hit  # within neither 0.1 %


def test_unreachable_target_gives_range_end() -> None:
    knob = Knob("quality", "toy", 1, 100, integer=True)
    res = find_knob_for_rate(lambda q: 0.5 + q / 50.0, knob, 0.1)  # never below 0.52 bpp
    assert res.value == 1.0 and not res.hit


def test_cache_is_reused_across_targets() -> None:
    calls: list[float] = []

    def bpp(v: float) -> float:
        calls.append(v)
        return 2 ** ((v - 44.0) / 6.0)

    search = KnobSearch(bpp, Knob("psnr_db", "toy", 20.0, 100.0))
    search.find(1.0)
    first = len(calls)
    again = search.find(1.0)
    assert again.evaluations == 0 and len(calls) == first
    search.find(2.0)  # bracket starts from cached points
    assert len(calls) - first <= 6


def test_plateau_knob_does_not_loop() -> None:
    knob = Knob("psnr_db", "toy", 20.0, 100.0)
    res = find_knob_for_rate(lambda v: 0.01 if v < 45 else 3.0, knob, 1.0, max_evals=10)
    assert res.evaluations <= 12 and res.bpp in (0.01, 3.0)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInputError):
        find_knob_for_rate(lambda v: v, Knob("q", "toy", 1, 100), 0.0)
    with pytest.raises(InvalidInputError):
        KnobSearch(lambda v: v, Knob("s", "toy", 0.0, 1.0, log_scale=True))
    with pytest.raises(InvalidInputError):
        find_knob_for_rate(lambda v: -1.0, Knob("q", "toy", 1, 100), 1.0)


def test_calibration_indices_are_evenly_spaced() -> None:
    assert calibration_indices(64, 4) == [8, 24, 40, 56]
    assert calibration_indices(3, 4) == [0, 1, 2]
    assert calibration_indices(5, 0) == [0, 1, 2, 3, 4]
    assert calibration_indices(140, 1) == [70]
