"""Bjøntegaard delta rate / PSNR against published numbers and exact cases.

Published example (PCHIP): the two JCT-VC curve pairs of JCTVC-E137, whose BD-rates from the
JCT-VC common-test-conditions spreadsheet are kept, as fractions, in Netflix VMAF's test suite
(``python/test/bd_rate_calculator_test.py``, class ``BDrateCalculatorJCTVCTest``, asserted
there to 4 decimal places of the fraction = 0.005 percentage points). The points and expected
values are copied below; rates in kbit/s, PSNR in dB.

Exact cases (cubic, VCEG-M33): a cubic fit reproduces a curve that is a cubic in PSNR, so a test
curve with exactly twice the rate at every PSNR has BD-rate +100 %, half the rate -50 %, and a
constant PSNR offset is the BD-PSNR.
"""

from __future__ import annotations

import pytest

from medcodec.errors import InvalidInputError
from medcodec.evaluate.bjontegaard import bd_psnr, bd_rate

# JCTVC-E137 example 1 (anchor, test), via VMAF BDrateCalculatorJCTVCTest.test_bd_rate_calculator_1
JCTVC_1_ANCHOR = [(108048.8736, 43.6471), (61279.976, 40.3953), (33905.6656, 37.247), (18883.6928, 34.2911)]
JCTVC_1_TEST = [(108061.2784, 43.6768), (61299.9936, 40.4232), (33928.7472, 37.2761), (18910.912, 34.3147)]
JCTVC_1_BD_RATE_PCT = -0.00465215420752807 * 100
# JCTVC-E137 example 2, via test_bd_rate_calculator_2
JCTVC_2_ANCHOR = [(40433.8848, 37.5761), (7622.7456, 35.3756), (2394.488, 33.8977), (1017.6184, 32.0603)]
JCTVC_2_TEST = [(40370.12, 37.5982), (7587.0024, 35.4025), (2390.0944, 33.9194), (1017.0984, 32.0822)]
JCTVC_2_BD_RATE_PCT = -0.018779823450567612 * 100
PUBLISHED_TOLERANCE_PCT = 0.005  # 4 decimal places of the fraction, as in the source


def _split(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    return [p[0] for p in points], [p[1] for p in points]


@pytest.mark.parametrize(
    ("anchor", "test", "expected"),
    [(JCTVC_1_ANCHOR, JCTVC_1_TEST, JCTVC_1_BD_RATE_PCT), (JCTVC_2_ANCHOR, JCTVC_2_TEST, JCTVC_2_BD_RATE_PCT)],
    ids=["jctvc-e137-1", "jctvc-e137-2"],
)
def test_pchip_bd_rate_matches_published_jctvc_examples(anchor, test, expected) -> None:
    ra, pa = _split(anchor)
    rt, pt = _split(test)
    assert bd_rate(ra, pa, rt, pt, method="pchip") == pytest.approx(expected, abs=PUBLISHED_TOLERANCE_PCT)


def test_cubic_and_pchip_agree_on_well_behaved_curves() -> None:
    # consistency check (not a published value): on these smooth 4-point curves the VCEG-M33 cubic
    # and the PCHIP interpolations give BD-rates within 0.05 percentage points
    for anchor, test in ((JCTVC_1_ANCHOR, JCTVC_1_TEST), (JCTVC_2_ANCHOR, JCTVC_2_TEST)):
        ra, pa = _split(anchor)
        rt, pt = _split(test)
        assert bd_rate(ra, pa, rt, pt, method="cubic") == pytest.approx(
            bd_rate(ra, pa, rt, pt, method="pchip"), abs=0.05
        )


RATES = [0.25, 0.5, 1.0, 2.0, 4.0]
PSNRS = [36.0, 39.5, 42.5, 46.0, 49.0]


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_exact_cases(method: str) -> None:
    assert bd_rate(RATES, PSNRS, RATES, PSNRS, method=method) == pytest.approx(0.0, abs=1e-10)
    double = [2 * r for r in RATES]
    half = [r / 2 for r in RATES]
    assert bd_rate(RATES, PSNRS, double, PSNRS, method=method) == pytest.approx(100.0, abs=1e-9)
    assert bd_rate(RATES, PSNRS, half, PSNRS, method=method) == pytest.approx(-50.0, abs=1e-9)
    better = [p + 0.75 for p in PSNRS]
    assert bd_psnr(RATES, PSNRS, RATES, better, method=method) == pytest.approx(0.75, abs=1e-9)
    assert bd_psnr(RATES, PSNRS, RATES, PSNRS, method=method) == pytest.approx(0.0, abs=1e-10)


def test_sign_convention_and_point_order_do_not_matter() -> None:
    ra, pa = _split(JCTVC_2_ANCHOR)
    rt, pt = _split(JCTVC_2_TEST)
    forward = bd_rate(ra, pa, rt, pt)
    assert bd_rate(ra[::-1], pa[::-1], rt, pt) == pytest.approx(forward, abs=1e-12)
    # the test curve is better (more PSNR, fewer bits): negative BD-rate, positive BD-PSNR
    assert forward < 0 and bd_psnr(ra, pa, rt, pt) > 0


def test_invalid_curves_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="at least 4"):
        bd_rate([1, 2, 3], [30, 33, 36], [1, 2, 3], [30, 33, 36])
    with pytest.raises(InvalidInputError, match="overlap"):
        bd_rate(RATES, PSNRS, RATES, [p + 20 for p in PSNRS])
    with pytest.raises(InvalidInputError, match="positive"):
        bd_rate([0, 1, 2, 3], PSNRS[:4], RATES[:4], PSNRS[:4])
    with pytest.raises(InvalidInputError, match="method"):
        bd_rate(RATES, PSNRS, RATES, PSNRS, method="akima")
    with pytest.raises(InvalidInputError, match="do not determine a cubic"):
        bd_rate([1, 2, 3, 4], [30, 30, 31, 31], [1, 2, 3, 4], [30, 30.4, 30.7, 31])  # two distinct PSNRs: rank 2
    with pytest.raises(InvalidInputError, match="monotonic"):
        bd_rate([1, 2, 3, 4], [30, 30, 31, 31], [1, 2, 3, 4], [30, 30.4, 30.7, 31], method="pchip")
    with pytest.raises(InvalidInputError, match="finite"):
        bd_rate(RATES, [*PSNRS[:4], float("inf")], RATES, PSNRS)
