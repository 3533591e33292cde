"""Golden files (numcodecs style): every later version must decode these bytes to these pixels.

``tests/golden/<profile>/`` holds ``array.npy`` (input), ``config.json`` (encode
arguments), ``encoded.bin`` (stream) and ``decoded.npy`` (what decoding gave when the
file was made). Inputs are synthetic (made by ``make_array`` below, recorded for
provenance) so no patient data enters the repository. Regenerate only deliberately:
``pytest tests/codec/test_golden.py --regen-golden``, and say why in the commit.
A format change that breaks decoding of these files needs a new format version.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import medcodec
from medcodec.codec import intra, mdc, mdc2
from medcodec.codec.intra import written_mode_model

GOLDEN = Path(__file__).resolve().parent.parent / "golden"

# The 12-bit DCT streams of formats 2.x were made when an image coded on its own got the steps of
# its content's span (11 bits here); since 2026-12-03 it gets those of its bits_stored up to 12
# (levelshift.default_range_bits), so they are re-encoded with that span (``range_bits=11``).
_OWN_SPAN = dict(range_bits=11)
# format 1.0 (Huffman): made when it was the .mdc default, so re-encoded with entropy="huffman"
_V1 = dict(reencode=dict(entropy="huffman"))
PROFILES = {
    "ct.u2.b12.q75": dict(shape=(40, 52), bits_stored=12, signed=False, quality=75, **_V1),
    "ct.i2.b16.q90": dict(shape=(33, 47), bits_stored=16, signed=True, quality=90, **_V1),
    "mr.u2.b10.q50.f3": dict(shape=(3, 24, 24), bits_stored=10, signed=False, quality=50, **_V1),
    "xr.u1.b8.q95": dict(shape=(17, 64), bits_stored=8, signed=False, quality=95, **_V1),
    # format 2.0, predictive mode: lossless and near-lossless (made before run mode: re-encoded
    # with the tools of 2.0, ``pred``)
    "ct.i2.b16.e0": dict(shape=(33, 47), bits_stored=16, signed=True, max_error=0, pred=(2, 0)),
    "mr.u2.b10.e2.f3": dict(shape=(3, 24, 24), bits_stored=10, signed=False, max_error=2, pred=(2, 0)),
    # format 2.7 (docs/format.md §10.4): the predictive mode with run mode chosen per frame; the
    # flat region and the padding rows are runs (made before 2.8: re-encoded with 2.7's tools)
    "ct.i2.b16.e0.runs": dict(shape=(48, 64), bits_stored=16, signed=True, max_error=0, flat=True, pred=(2, 7)),
    "xr.u1.b8.e1.runs.f2": dict(shape=(2, 48, 64), bits_stored=8, signed=False, max_error=1, flat=True,
                                pred=(2, 7)),
    # format 2.8 (§10.2 step 5, §10.4): modular levels, run contexts from the row above; bright labels
    # on a black region (levels that wrap) and flat regions (runs), lossless and near-lossless
    # (made before 2.9: re-encoded with 2.8's tools)
    "xr.u1.b8.e0.modular": dict(shape=(48, 64), bits_stored=8, signed=False, max_error=0, flat=True, labels=True,
                                pred=(2, 8)),
    "ct.i2.b12.e2.modular.f2": dict(shape=(2, 48, 64), bits_stored=12, signed=True, max_error=2, flat=True,
                                    labels=True, pred=(2, 8)),
    # format 2.9 (§10.5): packed lossless frames (the values on every 4th level: a sparse histogram)
    # (made before the compact layout of predictive streams: re-encoded in the long one)
    "dx.u2.b12.e0.packed.f2": dict(shape=(2, 48, 64), bits_stored=12, signed=False, max_error=0, sparse=True,
                                   reencode=dict(compact=False)),
    # format 2.10 (§20): predictive streams in the compact layout, the default since 2026-12-02: packed
    # frames, run mode with labels (lossless), and a signed 2-D near-lossless image
    "dx.u2.b12.e0.packed.compact.f2": dict(shape=(2, 48, 64), bits_stored=12, signed=False, max_error=0,
                                           sparse=True),
    "xr.u1.b8.e0.modular.compact": dict(shape=(48, 64), bits_stored=8, signed=False, max_error=0, flat=True,
                                        labels=True),
    "ct.i2.b12.e2.compact": dict(shape=(33, 47), bits_stored=12, signed=True, max_error=2),
    # format 2.0, range-coded DCT levels with reconstruction offsets (binary coder); made when
    # entropy="arith" meant that coder, so they are re-encoded with "arith-binary" (``reencode``)
    "ct.u2.b12.q75.arith": dict(shape=(40, 52), bits_stored=12, signed=False, quality=75, entropy="arith",
                                reencode=dict(range_bits=11, entropy="arith-binary")),
    "ct.i2.b16.q90.arith.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90, entropy="arith",
                                   reencode=dict(entropy="arith-binary")),
    # format 2.1, DCT levels by the multi-symbol range coder (entropy coder 2)
    # (made before intra frames were the default, so re-encoded with intra=False)
    # (made before intra frames and then the compact layout were the default, so re-encoded without)
    "ct.u2.b12.q75.multi": dict(shape=(40, 52), bits_stored=12, signed=False, quality=75, entropy="arith-multi",
                                reencode=dict(range_bits=11, intra=False, compact=False)),
    "ct.i2.b16.q90.multi.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                   entropy="arith-multi", reencode=dict(intra=False, compact=False)),
    # format 2.2, intra-predicted DCT frames (opt-in intra=True); made before the compact layout and
    # mode model 2 were the default, so re-encoded in the long layout with mode model 1
    "ct.u2.b12.q75.intra": dict(shape=(40, 52), bits_stored=12, signed=False, quality=75, intra=True,
                                mode_model=1, reencode=dict(range_bits=11, compact=False)),
    "ct.i2.b16.q90.intra.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90, intra=True,
                                   mode_model=1, reencode=dict(compact=False)),
    # format 2.3, the default coder (intra frames) with padding masks (the signed arrays have padding rows)
    "ct.i2.b16.q90.pad.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                 padding=[-32768, -32768], mode_model=1, reencode=dict(compact=False)),
    # format 2.4, the compact layout: a 2-D image (HEAD flag), and 3 frames with padding masks (made
    # with mode model 1 intra frames), frames without intra prediction and a 12-bit signed range
    "ct.u2.b12.q75.compact": dict(shape=(40, 52), bits_stored=12, signed=False, quality=75, mode_model=1, reencode=_OWN_SPAN),
    "ct.i2.b16.q90.compact.pad.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                         padding=[-32768, -32768], mode_model=1),
    "mr.i2.b12.q50.compact.nointra.f3": dict(shape=(3, 24, 40), bits_stored=12, signed=True, quality=50,
                                             intra=False, reencode=_OWN_SPAN),
    # format 2.4, intra frames with mode model 2 in the long layout; the 12-bit one has flat regions
    # (references all equal: no mode coded), the 16-bit one padding rows and masks too
    # (made before the intra RD levels were the default: re-encoded without them, ``intra_rd``)
    "ct.u2.b12.q60.modes2": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True,
                                 intra_rd=False, reencode=dict(range_bits=11, compact=False)),
    "ct.i2.b16.q90.modes2.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                    padding=[-32768, -32768], intra_rd=False, reencode=dict(compact=False)),
    # format 2.4 as the default wrote it on 2026-11-30: the compact layout, mode model 2 and the
    # intra residuals' RD levels (made before the default wrote 2.5: re-encoded without the
    # transform choice, ``tx``)
    "ct.u2.b12.q60.default24": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True, tx=False, reencode=_OWN_SPAN),
    "ct.i2.b16.q90.default24.pad.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                           padding=[-32768, -32768], tx=False),
    # their successors: format 2.5 as the default wrote it from tx25 to big26 (the same inputs and
    # options; re-made by joint26: the joint mode / transform decision, fast's wider RD mode search;
    # re-encoded without 2.6's 16x16 blocks, ``big``)
    "ct.u2.b12.q60.default25": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True, big=False, reencode=_OWN_SPAN),
    "ct.i2.b16.q90.default25.pad.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                           padding=[-32768, -32768], big=False),
    # and theirs: format 2.6 (docs/format.md §19, 16x16 blocks) as the default wrote it from big26 to
    # 2026-12-04 (re-encoded without 2.11's level contexts, ``within``; so are the 2.6 profiles below)
    "ct.u2.b12.q60.default26": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True,
                                    within=False, reencode=_OWN_SPAN),
    "ct.i2.b16.q90.default26.pad.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                           padding=[-32768, -32768], within=False),
    # the same with the padding filled before coding (2026-12-03, mdc.FILL_PADDING): format 2.6 as
    # before, the same decoder, other bytes; and without ``padding`` under mdc.AUTO_PADDING, whose
    # trial keeps these padding rows coded as they are (on so small a frame the mask and fill give
    # 2870 bytes against 2862): the plain default's stream
    "ct.i2.b16.q90.default26.fill.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                            padding=[-32768, -32768], fill=True, within=False),
    "ct.i2.b16.q90.default26.auto.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90, fill=True,
                                            within=False),
    # a smooth 12-bit gradient whose 16x16 blocks take each of §19's three modes (DC, SMOOTH, paeth),
    # besides split and edge macroblocks (test_intra_big checks that it still does)
    "ct.u2.b12.q60.default26.smooth": dict(shape=(56, 72), bits_stored=12, signed=False, quality=60, smooth=True,
                                           within=False),
    # format 2.5 (docs/format.md §18): effort="best" writes the intra residuals' transform choice
    # (the DCT or the mode's DST-VII pair per block, FRAM flag 128) in the compact layout (re-made by
    # joint26: the joint mode / transform decision)
    "ct.u2.b12.q60.best25": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True, effort="best",
                                 big=False, reencode=_OWN_SPAN),
    # format 2.6: effort="best" with 16x16 blocks (since big26)
    "ct.u2.b12.q60.best26": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True, effort="best",
                                 within=False, reencode=_OWN_SPAN),
    # format 2.11 (§21): 2.6's intra frames, their levels under within-block contexts, as the default
    # writes them since 2026-12-04: the 12-bit image with flat regions, the signed one with its padding
    # filled and declared, and effort="best"
    # (re-encoded without 2.12's trained starts, ``trained``; so is the near-flat one below)
    "ct.u2.b12.q60.default211": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True,
                                     trained=False),
    "ct.i2.b16.q90.default211.fill.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                             fill=True, trained=False),
    "ct.u2.b12.q60.best211": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True, effort="best",
                                  trained=False),
    # the default with its table of since 2026-12-04 ("near-flat", quantize.MDC_DEFAULT_TABLE): the same
    # format 2.11, other steps in the header. Every quality profile above was made with "medical" and
    # is re-encoded with it (check_golden); ``near_flat`` marks the ones made with the new default
    "ct.u2.b12.q60.default211.nearflat": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True,
                                              near_flat=True, trained=False),
    # format 2.12 (§22): every context of 2.11's frames from the trained starts, as the default writes them since
    # 2026-12-04 (twenty-first session): the 12-bit image, the signed one with its padding filled and
    # declared, and effort="best"
    "ct.u2.b12.q60.default212": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True,
                                     near_flat=True),
    "ct.i2.b16.q90.default212.fill.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                             fill=True, near_flat=True),
    "ct.u2.b12.q60.best212": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True, effort="best",
                                  near_flat=True),
    # the same format 2.12 with the mode decision's lambda of 2026-12-04's twenty-second session
    # (intra.TRAINED_LAMBDA_SCALE 0.09, intra.TRAINED_RD_MODE_RATE 1.0; an encoder change, no format
    # change). The 2.12 profiles above were made with the untrained frames' lambda (intra.LAMBDA_SCALE,
    # RD_MODE_RATE) and are re-encoded with it; ``mode_lambda`` marks the ones made with the new one
    "ct.u2.b12.q60.default212.lambda": dict(shape=(48, 64), bits_stored=12, signed=False, quality=60, flat=True,
                                            near_flat=True, mode_lambda=True),
    "ct.i2.b16.q90.default212.lambda.fill.f2": dict(shape=(2, 33, 47), bits_stored=16, signed=True, quality=90,
                                                    fill=True, near_flat=True, mode_lambda=True),
}


def make_array(shape: tuple[int, ...], bits_stored: int, signed: bool, seed: int = 2024, flat: bool = False,
               smooth: bool = False, labels: bool = False, sparse: bool = False) -> np.ndarray:  # fmt: skip
    rng = np.random.default_rng(seed)
    lo = -(1 << (bits_stored - 1)) if signed else 0
    hi = lo + (1 << bits_stored) - 1
    if smooth:  # a slow curved gradient with faint noise: what large blocks code well
        y, x = np.indices(shape[-2:]) / np.array(shape[-2:])[:, None, None]
        wave = 0.25 + 0.35 * x * x + 0.25 * y + 0.15 * np.sin(3 * x * y)
        arr = lo + (hi - lo) * wave + rng.normal(0, (hi - lo) * 0.002, shape)
    else:
        grid = np.indices(shape[-2:]).sum(0)
        arr = lo + (hi - lo) * (0.3 + 0.2 * np.sin(grid / 5.0)) + rng.normal(0, (hi - lo) * 0.01, shape)
    if signed:
        arr.reshape(-1, *shape[-2:])[..., :3, :] = lo  # padding rows like CT outside the field
    if flat:  # a constant region (air outside the body): blocks whose references are all equal
        arr.reshape(-1, *shape[-2:])[..., 16:, 24:] = lo + (hi - lo) // 8
    if sparse:  # a contrast-stretched radiograph: only every 4th level used
        arr = lo + np.floor((arr - lo) / 4) * 4
    if labels:  # burned-in text: strokes at the top of the range on the lowest value
        view = arr.reshape(-1, *shape[-2:])
        view[..., 30:, :20] = lo
        for c in range(2, 18, 5):
            view[..., 33:40, c] = hi
            view[..., 33, c : c + 3] = hi
            view[..., 39, c : c + 3] = hi
    dtype = (np.int8 if signed else np.uint8) if bits_stored <= 8 else (np.int16 if signed else np.uint16)
    return np.clip(np.rint(arr), lo, hi).astype(dtype)


def check_golden(folder: Path, cfg: dict, encoded_name: str, regen: bool) -> bytes:
    """One golden profile (``folder``): regenerate it if asked, then check that the committed input is
    the synthetic one, that the committed stream decodes to the committed pixels and that encoding the
    input again gives the committed stream byte for byte. Returns the stream."""
    kwargs = {k: v for k, v in cfg.items()
              if k not in ("shape", "reencode", "mode_model", "flat", "smooth", "labels", "sparse", "intra_rd", "tx",
                           "big", "pred", "fill", "within", "near_flat", "trained", "mode_lambda")}  # fmt: skip
    synthetic = make_array(cfg["shape"], cfg["bits_stored"], cfg["signed"], flat=cfg.get("flat", False),
                           smooth=cfg.get("smooth", False), labels=cfg.get("labels", False),
                           sparse=cfg.get("sparse", False))  # fmt: skip
    rd = mdc.INTRA_RDOQ_EFFORTS if cfg.get("intra_rd", True) else ()  # made before the intra RD levels
    tx = intra.TX_EFFORTS if cfg.get("tx", True) else ()  # made before the default wrote 2.5 (§18)
    # format 2.6's 16x16 blocks (§19): True written, False not (made before), absent: what the default does
    big = intra.BIG_EFFORTS if "big" not in cfg else ("fast", "best") if cfg["big"] else ()
    # padding filled before coding, and declared by the default coder itself (2026-12-03): "fill"
    # True written so, absent: made before (padding coded as it is, never declared unasked)
    fill = bool(cfg.get("fill", False))
    # format 2.11's level contexts (§21): False made before (2.6), absent: what the default does
    within = intra.WITHIN_EFFORTS if cfg.get("within", True) else ()
    # format 2.12's trained starts (§22): False made before (2.11), absent: what the default does
    trained = intra.TRAINED_EFFORTS if cfg.get("trained", True) else ()
    # the .mdc default table was "medical" until 2026-12-04: DCT profiles made before are re-encoded with it
    if "quality" in cfg and cfg.get("format", "mdc") == "mdc" and not cfg.get("near_flat", False):
        cfg = {**cfg, "reencode": {"table": "medical", **cfg.get("reencode", {})}}
    # the trained frames' mode decision lambda (intra.mode_lambda): True made with today's, absent made
    # before the twenty-second session (re-encoded with the untrained frames' values)
    lam, rate = ((intra.TRAINED_LAMBDA_SCALE, intra.TRAINED_RD_MODE_RATE) if cfg.get("mode_lambda")
                 else (intra.LAMBDA_SCALE, intra.RD_MODE_RATE))  # fmt: skip
    with written_mode_model(cfg.get("mode_model", 2)), _patched(mdc, "INTRA_RDOQ_EFFORTS", rd), \
            _patched(intra, "TX_EFFORTS", tx), _patched(intra, "BIG_EFFORTS", big), \
            _patched(intra, "WITHIN_EFFORTS", within), _patched(intra, "TRAINED_EFFORTS", trained), \
            _patched(mdc2, "PREDICTIVE_VERSION", cfg.get("pred", mdc2.PREDICTIVE_VERSION)), \
            _patched(mdc, "FILL_PADDING", fill), _patched(mdc, "AUTO_PADDING", fill), \
            _patched(intra, "TRAINED_LAMBDA_SCALE", lam), _patched(intra, "TRAINED_RD_MODE_RATE", rate):
        if not tx:  # and before fast's wider RD mode search (joint26)
            with _patched(intra, "RD_MODE_SEARCH", {**intra.RD_MODE_SEARCH, "fast": None}):
                return _check_golden(folder, cfg, kwargs, synthetic, encoded_name, regen)
        return _check_golden(folder, cfg, kwargs, synthetic, encoded_name, regen)


@contextlib.contextmanager
def _patched(module: object, name: str, value: object) -> Iterator[None]:
    """``module.name`` set to ``value`` inside the block (an encoder switch of the day the file was made)."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def _check_golden(folder: Path, cfg: dict, kwargs: dict, synthetic: np.ndarray, encoded_name: str,
                  regen: bool) -> bytes:  # fmt: skip
    if regen:
        folder.mkdir(parents=True, exist_ok=True)
        arr = synthetic
        data = medcodec.encode(arr, jobs=1, **kwargs)
        np.save(folder / "array.npy", arr)
        (folder / "config.json").write_text(json.dumps(kwargs, indent=2, sort_keys=True) + "\n")
        (folder / encoded_name).write_bytes(data)
        np.save(folder / "decoded.npy", medcodec.decode(data, jobs=1))
    arr = np.load(folder / "array.npy")
    config = json.loads((folder / "config.json").read_text())
    encoded = (folder / encoded_name).read_bytes()
    decoded = np.load(folder / "decoded.npy")
    assert config == kwargs
    np.testing.assert_array_equal(arr, synthetic)
    out = medcodec.decode(encoded, jobs=1)
    assert out.dtype == decoded.dtype
    np.testing.assert_array_equal(out, decoded)
    assert medcodec.encode(arr, jobs=1, **{**config, **cfg.get("reencode", {})}) == encoded
    return encoded


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_golden(profile: str, regen_golden: bool) -> None:
    check_golden(GOLDEN / profile, PROFILES[profile], "encoded.bin", regen_golden)
