"""8x8 intra prediction: the intra frames of ``.mdc`` format 2.2 (issue 12), one frame's encoder and decoder.

The ``.mdc`` default since 2026-11-30: :func:`medcodec.encode` writes them with the multi-symbol
coder unless ``intra=False`` (``docs/format.md`` §14, the normative text;
:func:`.mdc.encode_mdc_to` wraps the payload in a FRAM with flag bit 3, adds 2.1's centroid
offsets, deblocking and restoration filter). Measured: docs/benchmarks-v2.md.

Decoding process of one frame (rows and cols padded up to multiples of 8 by repeating the last
row and column; the decoder crops), blocks in raster order, all sample arithmetic in integers:

- References of the block at (r0, c0) from the reconstruction so far: ``top[0:16]`` the row above
  (and above-right; beyond the frame the last available sample of the first eight), ``left[0:8]``
  the column to the left, ``left[8:16] = left[7]``, the corner above-left. In the first row
  ``top[:] = left[0]``, in the first column ``left[0:8] = top[0]``, the first block uses the
  level offset (``2**(bits-1)`` unsigned, 0 signed) everywhere; a missing corner is ``top[0]``
  (first column) or ``left[0]`` (first row).
- Modes 5..15 predict from smoothed references: ``f[k] = (r[k-1] + 2 r[k] + r[k+1] + 2) >> 2``
  with ``r[-1]`` the corner and ``r[16] = r[15]``; corner ``(left[0] + 2 corner + top[0] + 2) >> 2``.
- Mode 0 DC: ``(sum(top[0:8]) + sum(left[0:8]) + 8) >> 4``. Mode 1 SMOOTH (AV1 weights w =
  255, 197, 146, 105, 73, 50, 37, 32): ``(w[i] top[j] + (256 - w[i]) left[7] + w[j] left[i] +
  (256 - w[j]) top[7] + 256) >> 9``. Mode 2 paeth (AV1).
- Modes 3..15 (:data:`._kernels_intra.ANGULAR`, (family, A)): for family 1 (from above) row i,
  column j: r = i, c = j; family 0 (from the left) r = j, c = i. With ``n = 32 c + (r + 1) A``:
  if ``n >= -32`` or ``A >= 0`` the main line at ``n / 32``, else the side line at
  ``(r |A| - 32 (c + 1)) / |A|``; a line at ``num / den`` is the corner for ``num <= -den``, else
  with ``k = num // den``, ``f = num - k den``: ``((den - f) v0 + f v1 + den // 2) // den``,
  ``v0 = line[k]`` (the corner if k < 0), ``v1 = line[k + 1]``, indices capped at 15.
- Residual: zigzag level l at position k dequantized ``(256 l - sign(l) offsets[k]) step / 256``
  (``offsets`` in 1/256 step, from FRAM flag bit 0), orthonormal 8x8 IDCT, each sample
  ``clip(pred + floor(v + 0.5), lo, hi)``.

Payload of a frame: ``u32`` byte count of the mode segment, the modes range-coded (16-ary
adaptive symbol, one context row per left neighbour's mode, the block above's in the first column),
then the residual levels coded by the 2.1 multi-symbol level coder.

Mode model 2 (format 2.4, FRAM flag bit 5, the default, ``docs/format.md`` §17): a block whose
references lie within :func:`flat_tolerance` of each other codes no mode (the context's is
implied), so the decoder reads the modes inside the prediction loop
(:func:`._kernels_intra.decode_intra2`; :func:`decode_modes2_reference` is the plain-Python twin).
Format 2.5 (§18) adds a per-block choice of the DCT or the mode's DST-VII pair; format 2.6 (§19, the
default, :data:`BIG_EFFORTS`) codes 16x16 macroblocks in raster order, each one 16x16 block (DC,
SMOOTH or paeth predicted) or four 8x8 blocks in Z order (:func:`._kernels_intra.decode_intra26`,
:func:`decode_modes26_reference`).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from contextvars import ContextVar
from typing import NamedTuple

import numpy as np

from ..errors import CorruptStreamError, InvalidInputError, TruncatedStreamError
from . import _kernels_intra as KI
from . import _kernels_ms as KM
from . import _kernels_v2 as K
from . import quantize
from .framecoder import FrameCoder
from .transform import DCT_MATRIX
from .zigzag import ZIGZAG

__all__ = ["IntraFrame", "encode_intra_frame", "decode_intra_frame", "N_MODES", "MODE_MODEL", "lambda_for",
           "mode_lambda", "decode_modes2_reference", "decode_modes25_reference", "written_mode_model", "written_model",
           "model_for", "TX_EFFORTS", "BIG_EFFORTS", "BIG_MODE_TRIALS",
           "decode_modes26_reference"]  # fmt: skip

N_MODES = KI.N_MODES
#: The mode model :func:`encode_intra_frame` writes by default: 2 (format 2.4, ``docs/format.md`` §17).
MODE_MODEL = 2
_WRITTEN_MODE_MODEL: ContextVar[int] = ContextVar("written_mode_model", default=MODE_MODEL)
#: False within :func:`without_big_blocks`.
_BIG_BLOCKS: ContextVar[bool] = ContextVar("big_blocks", default=True)
#: What prices the RD intra levels' symbols (:func:`rd_params`), per effort: ``"intra"`` the rounded
#: levels of a plain intra pass (one more pass of the loop: encode ~1.8-1.9x), ``"dct"`` those of
#: the plain 8x8 DCT of the frame (other statistics, 0.1-0.2 % BD-rate worse, encode ~1.3-1.5x;
#: docs/design-notes.md "RD-optimised levels for intra residuals").
RD_PRICE: dict[str, str] = {"fast": "dct", "best": "intra"}
#: The RD intra levels' lambda x mean squared AC step (2.1's ``mdc2.RDOQ_LAMBDA_SCALE``; measured
#: against 0.05 / 0.12 / 0.16 in docs/design-notes.md).
RD_LAMBDA_SCALE = 0.08
#: The texture term's weight (2.1's ``mdc2.RDOQ_TEXTURE_MU``, issue 11's metric at 1 bpp).
RD_TEXTURE_MU = 4.0
#: Efforts whose mode decision sees the RD levels (:func:`._kernels_intra.encode_intra2_rdmode`; with
#: the RD levels only, no format change): the candidates near the best rounded one are charged the
#: squared error and the modelled rate of their RD levels (docs/design-notes.md "The intra mode
#: decision sees the RD levels": the default -7.1 % mean BD-rate against OpenJPEG instead of -6.4 %
#: for ~1.1-1.2x its encode time, best -8.1 % instead of -6.8 % with :data:`RD_MODE_SEARCH`). The
#: switch: ``("best",)`` gives ``fast`` back its bytes of before.
RD_MODE_EFFORTS: tuple[str, ...] = ("fast", "best")
#: The weight of the RD levels' modelled rate against the mode bits (measured 1 / 1.1 / 1.25 / 1.5 / 2.5),
#: for frames whose contexts start uniform (formats 2.4-2.11); 2.12's frames take
#: :data:`TRAINED_RD_MODE_RATE` (:func:`mode_lambda`).
RD_MODE_RATE = 1.25
#: Per effort: candidates whose rounded ``SSE + lambda bits`` exceeds this x the least one's are not
#: RD-tried (inf: all; 1.05 / 1.1 / 1.3 / inf measured: fast keeps most of the gain at 1.1, best takes all).
RD_MODE_MARGIN: dict[str, float] = {"fast": 1.1, "best": float("inf")}
#: Per effort, the ``(n_coarse, n_full)`` of :data:`SEARCH` when the mode decision sees the RD levels
#: (None: :data:`SEARCH`'s). Measured (docs/benchmarks-v2.md): ``fast`` (4, 3) -7.4 % mean BD-rate
#: instead of -7.1 % for ~1.1x more encode time with 2.4 (not on then), -9.5 % instead of -9.2 % with
#: 2.5, and with :data:`TX_JOINT` 0.6 points more than the joint decision alone (on since joint26);
#: ``best`` (16, 6) -8.1 % instead of -7.8 % for ~1.15-1.2x best's time (on).
RD_MODE_SEARCH: dict[str, tuple[int, int] | None] = {"fast": (4, 3), "best": (16, 6)}
#: The RD intra levels' weight of a block's last row and column (:func:`._kernels_intra.edge_gain`):
#: later blocks predict from them (1: off; measured in the design note).
RD_EDGE_WEIGHT = 1.0
#: Efforts that write format 2.5 (``docs/format.md`` §18, mode model 3: mode model 2 plus a per-block
#: choice of the DCT or the mode family's DST-VII pair, each candidate's RD levels deciding;
#: docs/design-notes.md "The per-block transform choice": -2.1 points of mean BD-rate for the default
#: at 1.2x its encode CPU, -1.9 for best at 1.09x). ``("best",)`` gives ``fast`` its 2.4 bytes back;
#: ``()`` writes 2.4 for every effort. Format 2.5 takes the RD mode decision (it runs whatever
#: :data:`RD_MODE_EFFORTS` says).
TX_EFFORTS: tuple[str, ...] = ("fast", "best")
#: Per effort, format 2.5's joint mode / transform decision (encoder only): 0 the DST pair is tried
#: for the RD winner's mode only; 1 for each RD-tried candidate (its DCT and its pair each charged
#: their RD levels and their choice symbol); 2 as 1, each candidate's rounded pair ``J`` joining the
#: margin (:data:`RD_MODE_MARGIN`) so a mode whose DCT is out of it may be tried with its pair.
#: Measured (docs/design-notes.md "The joint mode / transform decision"): with ``fast``'s wider
#: :data:`RD_MODE_SEARCH` -1.1 points of mean BD-rate for ~1.3x its encode CPU, best -1.4 points
#: for ~1.4x (2 is 1 for best, whose margin takes every candidate; for fast 0.1-0.2 more at ~1.05x).
TX_JOINT: dict[str, int] = {"fast": 1, "best": 1}
#: Efforts that write format 2.6 (``docs/format.md`` §19, mode model 4: format 2.5 plus 16x16
#: blocks (DC, SMOOTH or paeth), each full macroblock's 16x16 candidate against its four 8x8 blocks by
#: ``SSE + lambda bits``; docs/design-notes.md "2.6 built": with :data:`BIG_MODE_TRIALS` -1.0 points
#: of mean BD-rate for the default, -0.7 for best, the unseen Siemens MR +1.0 -> -0.4 %, at ~1.5x /
#: ~1.3x 2.5's encode CPU, docs/benchmarks-v2.md). Takes :data:`TX_EFFORTS` (2.5 inside); ``()``
#: writes 2.5 again.
BIG_EFFORTS: tuple[str, ...] = ("fast", "best")
#: Per effort, the 16x16 candidate's mode search (``_kernels_intra.encode_intra25``'s ``big_trials``):
#: DC and the one of SMOOTH / paeth of lesser prediction SAD; 2 RD-codes both and keeps the lesser
#: ``J``, 1 RD-codes only the one of lesser rounded-level ``J`` estimate, 0 DC only. Measured
#: (docs/design-notes.md "2.6 built"): 1 gave -11.4 % mean BD-rate for fast at ~1.16x the encode CPU
#: of 0, 2 -11.5 % at ~1.3x; best 2 at ~1.10x.
BIG_MODE_TRIALS: dict[str, int] = {"fast": 1, "best": 2}
#: Efforts whose format 2.6 intra frames code their residual levels under format 2.11's within-block
#: contexts (``docs/format.md`` §21, :func:`._kernels_ms._neighbour_bucket`: the same symbols, each AC
#: context also from the block's own levels above and left of it; docs/design-notes.md "Within-block
#: contexts": the levels 0.6-3.3 % smaller on the training images). ``()`` writes 2.6 again.
WITHIN_EFFORTS: tuple[str, ...] = ("fast", "best")
#: Efforts whose 2.11 frames start every context, of the levels and of the modes, from format 2.12's
#: trained tables (``docs/format.md`` §22, :data:`._kernels_ms.TRAINED_MODEL`,
#: :data:`._kernels_intra.TRAINED_MODE_MODEL` ..., ``benchmarks/train_level_starts.py``; docs/design-notes.md
#: "Trained starts": 1-8 % fewer level bytes on small frames, the most on MR). ``()`` writes 2.11 again.
TRAINED_EFFORTS: tuple[str, ...] = ("fast", "best")
#: lambda = LAMBDA_SCALE x (geometric mean of the steps at zigzag 1..9)^2 (dD/dR of a uniform
#: quantiser, benchmarks/explore_transforms.py), for frames whose contexts start uniform (formats
#: 2.2-2.11); 2.12's frames take :data:`TRAINED_LAMBDA_SCALE` (:func:`mode_lambda`).
LAMBDA_SCALE = 0.116
#: The mode decision's lambda scale and RD rate weight for frames with format 2.12's trained starts
#: (:func:`trained_starts`), chosen on the training series after 2.12 (2026-12-04, twenty-second
#: session; docs/design-notes.md "The mode decision's lambda after 2.12"): the trained starts make the
#: coded levels cheaper than under uniform starts, which the 1.25 weight had made up for. -0.2 points
#: of BD-rate against OpenJPEG on the training series (default and best) and on 15 unseen images
#: (14 of them better); encode time +0-2 %. The 2.12 frames of before were made with
#: (:data:`LAMBDA_SCALE`, :data:`RD_MODE_RATE`): setting these to those gives their bytes back.
TRAINED_LAMBDA_SCALE = 0.09
TRAINED_RD_MODE_RATE = 1.0


@contextlib.contextmanager
def written_mode_model(model: int) -> Iterator[None]:
    """Within the block, encoders called from this thread (or task) write intra frames with mode
    model ``model`` (1: format 2.2, as before 2.4), for the goldens, the fuzz corpus and benchmarks
    that compare the two. A context variable: other threads keep :data:`MODE_MODEL`."""
    if model not in (1, 2):
        raise InvalidInputError(f"mode model {model!r} is unknown, expected 1 or 2")
    token = _WRITTEN_MODE_MODEL.set(model)
    try:
        yield
    finally:
        _WRITTEN_MODE_MODEL.reset(token)


@contextlib.contextmanager
def without_big_blocks() -> Iterator[None]:
    """Within the block, encoders called from this thread (or task) write format 2.5's intra frames
    (no 16x16 blocks: mode model 3) where they would write 2.6's, for the warm-up and tests that
    compile or read 2.5 streams. A context variable like :func:`written_mode_model`: until
    2026-12-06 the warm-up set :data:`BIG_EFFORTS` for the whole process, and encodes running in
    other threads meanwhile wrote 2.5 streams (an outside audit)."""
    token = _BIG_BLOCKS.set(False)
    try:
        yield
    finally:
        _BIG_BLOCKS.reset(token)


def written_model() -> int:
    """The mode model encoders write here: :data:`MODE_MODEL` unless :func:`written_mode_model` says."""
    return _WRITTEN_MODE_MODEL.get()


def within_levels(effort: str, mode_model: int) -> bool:
    """Whether an encoder of ``effort`` writing intra frames of ``mode_model`` codes their levels under
    format 2.11's within-block contexts (2.6 frames of the efforts in :data:`WITHIN_EFFORTS`)."""
    return mode_model == 4 and effort in WITHIN_EFFORTS


def trained_starts(effort: str, mode_model: int) -> bool:
    """Whether such frames start their contexts (levels and modes) from format 2.12's trained tables
    (2.11 frames of the efforts in :data:`TRAINED_EFFORTS`): the stream is then written as 2.12."""
    return within_levels(effort, mode_model) and effort in TRAINED_EFFORTS


def model_for(effort: str) -> int:
    """The mode model an encoder of ``effort`` writes: 3 (format 2.5, the transform choice) where
    :func:`written_model` is 2 and ``effort`` is in :data:`TX_EFFORTS`, 4 (format 2.6, 16x16 blocks)
    if it is also in :data:`BIG_EFFORTS`, else :func:`written_model`."""
    model = written_model()
    if model == 2 and effort in TX_EFFORTS:
        return 4 if effort in BIG_EFFORTS and _BIG_BLOCKS.get() else 3
    return model


class IntraFrame(NamedTuple):
    """What :func:`encode_intra_frame` returns."""

    payload: bytes
    recon: np.ndarray  #: the decoder's output (cropped, the coder's storage dtype)
    modes: np.ndarray  #: per 8x8 block of the padded frame, raster order
    split: np.ndarray | None = None  #: format 2.6: per macroblock, 0 one 16x16 block, 1 split, 2 none coded


def flat_tolerance(coder: FrameCoder) -> int:
    """Mode model 2's flatness tolerance: the step of the first AC coefficient (row 0, column 1)
    shifted right by :data:`._kernels_intra.FLAT_TOL_SHIFT` (``docs/format.md`` §17)."""
    return int(coder.steps.ravel()[1]) >> KI.FLAT_TOL_SHIFT


def mode_lambda(trained: bool) -> tuple[float, float]:
    """The mode decision's (lambda scale, RD rate weight): :data:`TRAINED_LAMBDA_SCALE` and
    :data:`TRAINED_RD_MODE_RATE` for frames with trained starts (``trained``, :func:`trained_starts`),
    else :data:`LAMBDA_SCALE` and :data:`RD_MODE_RATE`."""
    return (TRAINED_LAMBDA_SCALE, TRAINED_RD_MODE_RATE) if trained else (LAMBDA_SCALE, RD_MODE_RATE)


def lambda_for(coder: FrameCoder, trained: bool = False) -> float:
    """The mode decision's lambda for these steps (``trained``: for a frame with trained starts)."""
    ac = coder.steps.astype(np.float64).ravel()[ZIGZAG[1:10]]
    return mode_lambda(trained)[0] * float(np.exp(np.mean(np.log(ac)))) ** 2


def _padded(frame: np.ndarray) -> np.ndarray:
    """int32 copy (samples of at most 16 bits), rows and cols repeated up to multiples of 8 (what
    np.pad's "edge" mode does, ~40x faster)."""
    rows, cols = frame.shape
    out = np.empty((rows + (-rows % 8), cols + (-cols % 8)), dtype=np.int32)
    out[:rows, :cols] = frame
    out[:rows, cols:] = frame[:, -1:]
    out[rows:] = out[rows - 1]
    return out


def _offsets(offsets: np.ndarray | None) -> np.ndarray:
    out = np.zeros(64, dtype=np.int64)
    if offsets is not None:
        out[1:] = np.asarray(offsets, dtype=np.int64)
    return out


def _encode_levels(levels: np.ndarray, bx: int, within: bool = False, trained: bool = False) -> bytes:
    """The residual levels by the 2.1 multi-symbol coder (what :func:`.mdc2.encode_levels` does;
    mdc2 imports this module, so not through it); ``within``: format 2.11's contexts (§21);
    ``trained``: from 2.12's trained starts (§22)."""
    cap = levels.size * 4 + 1024
    while True:
        out = np.empty(cap, dtype=np.uint8)
        status, n = KM.encode_coefficients_ms(levels, bx, out, within, trained)
        if status == K.OK:
            return out[:n].tobytes()
        if status != K.E_OVERFLOW:
            raise InvalidInputError("a DCT level beyond what the range coder can hold (|level| >= 2**22 + 15)")
        cap *= 2


#: The encoder's mode search per effort, ``(n_coarse, n_full)`` of :func:`._kernels_intra.encode_intra`:
#: ``fast`` ranks the 16 modes on a 16-sample SAD and DCT-codes 2 (+ the context's mode);
#: ``best`` predicts all 16 in full and DCT-codes the 4 best (+ the context's).
SEARCH = {"fast": (KI.N_COARSE, KI.N_FULL), "best": (N_MODES, 4)}


def encode_intra_frame(
    frame: np.ndarray,
    coder: FrameCoder,
    offsets: np.ndarray | None = None,
    effort: str = "fast",
    mode_model: int | None = None,
    rd_bound: float | None = None,
    *,
    rounded: np.ndarray | None = None,
) -> IntraFrame:
    """Intra-code one 2-D frame with ``coder``'s steps and range.

    Parameters
    ----------
    frame
        2-D integer samples inside ``coder``'s range.
    coder
        Steps, level offset and clipping range (:meth:`.FrameCoder.for_table`).
    offsets
        63 reconstruction offsets (zigzag 1..63, in 1/256 step) or None (all 0).
    effort
        The mode search (:data:`SEARCH`): ``"fast"`` or ``"best"``.
    mode_model
        1: every block's mode coded (format 2.2); 2: mode model 2 (format 2.4, FRAM flag
        bit 5: blocks with (near) flat references code no mode, the encoder charges a mode half its
        bits under the adaptive model, +1 off the context's mode); None: :data:`MODE_MODEL`.
    rd_bound
        If given, RD-optimised residual levels (mode model 2 only, no format change): rounded
        levels (:data:`RD_PRICE`) price the 2.1 coder's symbols, then the intra loop decides each
        block's levels by :func:`._rdoq_ms.rdoq_block` before reconstructing it; a block whose
        samples would lie further than ``rd_bound`` from ``frame`` keeps its rounded levels (pass
        the bound the stream prints, :func:`.mdc2.error_bound_with_offsets` of ``offsets``). For the
        efforts in :data:`RD_MODE_EFFORTS` the mode decision sees each candidate's RD levels.
    rounded
        The frame's plain rounded DCT levels (``mdc2.round_scaled(coder.scaled(frame))``) if the
        caller has them (:func:`.mdc._intra_frame` does, for the offsets): the ``"dct"`` pricing
        (:data:`RD_PRICE`) takes them instead of transforming the frame again. None: computed.

    Returns
    -------
    IntraFrame
    """
    frame = np.asarray(frame)
    if frame.ndim != 2 or frame.size == 0:
        raise InvalidInputError(f"intra coding takes one non-empty 2-D frame, got shape {frame.shape}")
    if frame.min() < coder._lo or frame.max() > coder._hi:
        raise InvalidInputError(f"samples outside {coder._lo}..{coder._hi}")
    rows, cols = frame.shape
    x = _padded(frame)
    nb = x.size // 64
    levels = np.empty((nb, 64), dtype=np.int32)  # the kernel writes every level, mode and sample
    modes = np.empty(nb, dtype=np.int64)
    recon = np.empty_like(x)
    steps = coder.steps.astype(np.float64).reshape(8, 8)
    if effort not in SEARCH:
        raise InvalidInputError(f"effort={effort!r} is unknown, expected one of {tuple(SEARCH)}")
    mode_model = written_model() if mode_model is None else mode_model
    if mode_model not in (1, 2, 3, 4):
        raise InvalidInputError(f"mode_model={mode_model!r} is unknown, expected 1, 2, 3 or 4")
    if mode_model >= 3 and rd_bound is None:
        raise InvalidInputError("format 2.5's transform choice (mode model 3, 4) takes the RD levels (rd_bound)")
    n_coarse, n_full = SEARCH[effort]
    trained = trained_starts(effort, mode_model)
    rd_mode_rate = mode_lambda(trained)[1]
    args = (x, steps, ZIGZAG.astype(np.int64), _offsets(offsets), DCT_MATRIX, lambda_for(coder, trained),
            np.int64(coder.offset), np.int64(coder._lo), np.int64(coder._hi), levels, modes, recon)  # fmt: skip
    skip = np.zeros(nb, dtype=np.uint8)
    if rd_bound is not None and mode_model == 1:
        raise InvalidInputError("RD intra levels take mode model 2 or 3")
    txc = np.full(nb, 2, dtype=np.uint8)  # mode model 3: per block 0 the DCT, 1 the DST pair, 2 none coded
    by, bx = x.shape[0] // 8, x.shape[1] // 8
    split = np.full(((by + 1) // 2) * ((bx + 1) // 2), 2, dtype=np.uint8)  # mode model 4: per macroblock
    if mode_model >= 2:
        if rd_bound is None:
            KI.encode_intra2(*args, skip, n_coarse, n_full, KI.MODE2_SCALE, KI.MODE2_BIAS, flat_tolerance(coder))
        else:  # rounded levels price the symbols: the plain DCT's (cheap) or a plain intra pass's
            if RD_PRICE[effort] == "dct":  # mdc2.round_scaled (mdc2 imports this module)
                if rounded is None:
                    scaled = coder.scaled(frame)
                    rounded = K.round_scaled(scaled, quantize.ROUNDING_ZZ, np.empty(scaled.shape, np.int32))
                elif rounded.shape != (nb, 64):
                    raise InvalidInputError(f"rounded levels of shape {rounded.shape} for a {rows} x {cols} frame")
                priced = rounded
                bxf = -(-cols // 8)
            else:
                KI.encode_intra2(*args, skip, n_coarse, n_full, KI.MODE2_SCALE, KI.MODE2_BIAS, flat_tolerance(coder))
                priced, bxf = levels, x.shape[1] // 8  # the RD pass below overwrites every output
            cost, lam_rd, mu, rho, tex_sum = rd_params(coder, frame, priced, bxf)
            if effort in RD_MODE_EFFORTS or mode_model >= 3:  # the RD mode decision: a wider search for best
                wide = RD_MODE_SEARCH.get(effort)
                if wide is not None:
                    n_coarse, n_full = wide
            if mode_model >= 3:  # format 2.5: the RD mode decision, then the DCT or the mode's DST pair
                KI.encode_intra25(*args, skip, n_coarse, n_full, KI.MODE2_SCALE, KI.MODE2_BIAS, flat_tolerance(coder),
                                  cost, lam_rd, mu, rho, tex_sum, float(rd_bound), rd_mode_rate,
                                  float(RD_MODE_MARGIN[effort]), float(RD_EDGE_WEIGHT), KI.DST7, txc,
                                  int(TX_JOINT.get(effort, 0)), mode_model == 4, KI.DCT16, split,
                                  int(BIG_MODE_TRIALS[effort]), trained)  # fmt: skip
            elif effort in RD_MODE_EFFORTS or RD_EDGE_WEIGHT != 1.0:  # the mode decision sees the RD levels
                KI.encode_intra2_rdmode(*args, skip, n_coarse, n_full, KI.MODE2_SCALE, KI.MODE2_BIAS,
                                        flat_tolerance(coder), cost, lam_rd, mu, rho, tex_sum, float(rd_bound),
                                        effort in RD_MODE_EFFORTS, rd_mode_rate, float(RD_MODE_MARGIN[effort]),
                                        float(RD_EDGE_WEIGHT))  # fmt: skip
            else:
                KI.encode_intra2_rd(*args, skip, n_coarse, n_full, KI.MODE2_SCALE, KI.MODE2_BIAS,
                                    flat_tolerance(coder), cost, lam_rd, mu, rho, tex_sum, float(rd_bound))  # fmt: skip
    else:
        KI.encode_intra(*args, n_coarse, n_full)
    cap = nb + 1024
    while True:
        out = np.empty(cap, dtype=np.uint8)
        if mode_model == 4:
            status, n = KI.encode_modes26(modes, skip, txc, split, bx, by, out, trained)
        elif mode_model == 3:
            status, n = KI.encode_modes25(modes, skip, txc, bx, out)
        elif mode_model == 2:
            status, n = KI.encode_modes2(modes, skip, bx, out)
        else:
            status, n = KI.encode_modes(modes, bx, out)
        if status == K.OK:
            break
        cap *= 2
    coded_levels = _encode_levels(levels, bx, within_levels(effort, mode_model), trained)
    payload = struct.pack("<I", n) + out[:n].tobytes() + coded_levels
    return IntraFrame(payload, recon[:rows, :cols].astype(coder._dtype), modes, split if mode_model == 4 else None)


def rd_params(coder: FrameCoder, frame: np.ndarray, priced: np.ndarray,
              bx: int) -> tuple[np.ndarray, float, float, float, float]:  # fmt: skip
    """The RD intra pass's parameters, as :func:`.mdc2.rdoq_levels` has them for 2.1: symbol costs of
    the ``priced`` levels (:func:`._rdoq_ms.symbol_costs`), lambda (:data:`RD_LAMBDA_SCALE` x the
    mean squared AC step), the texture term (:data:`RD_TEXTURE_MU`; the energy target only for
    blocks whose sample sum reaches 64 x the background floor, the same blocks 2.1's DC test
    picks): (cost, lambda, mu, rho, sample-sum floor)."""
    from . import _rdoq, _rdoq_ms

    cost = _rdoq_ms.symbol_costs(_rdoq_ms.symbol_counts(priced, bx, np.zeros(int(KM.OFFSET[-1]))))
    weights = coder.steps_zz.astype(np.float64) ** 2
    lam_rd = RD_LAMBDA_SCALE * float(np.mean(weights[1:]))
    mu, tex_sum = 0.0, -np.inf
    if RD_TEXTURE_MU > 0:
        mu, floor = _rdoq.texture_weight(coder, frame, weights, RD_TEXTURE_MU)
        tex_sum = 64.0 * floor
    return cost, lam_rd, float(mu), float(_rdoq.TEXTURE_RHO), tex_sum


def decode_intra_frame(payload: bytes, rows: int, cols: int, coder: FrameCoder, offsets: np.ndarray | None = None,
                       *, offset: int | None = None, segment: str | None = None,
                       mode_model: int = 1, within: bool = False, trained: bool = False) -> np.ndarray:  # fmt: skip
    """Inverse of :func:`encode_intra_frame` (``mode_model``: as the frame was written, FRAM flag bit
    5; ``within``: its levels under format 2.11's contexts, a 2.6 frame in a stream of minor >= 11;
    ``trained``: those contexts from 2.12's trained starts, minor >= 12); a
    damaged payload raises a :class:`.CorruptStreamError` (``offset`` / ``segment``: where the payload
    lies in a stream, for the message)."""
    if mode_model not in (1, 2, 3, 4):
        raise InvalidInputError(f"mode_model={mode_model!r} is unknown, expected 1, 2, 3 or 4")
    if rows < 1 or cols < 1:
        raise CorruptStreamError(f"intra frame of {rows} x {cols} samples", offset=offset, segment=segment)
    data = np.frombuffer(payload, dtype=np.uint8)
    if data.size < 4:
        raise TruncatedStreamError(
            "intra frame payload ends before its mode segment's length", offset=offset, segment=segment
        )
    nmode = struct.unpack_from("<I", payload, 0)[0]
    if 4 + nmode > data.size:
        raise TruncatedStreamError("intra frame's mode segment runs past the payload", offset=offset, segment=segment)
    prow, pcol = rows + (-rows % 8), cols + (-cols % 8)
    bx = pcol // 8
    nb = prow * pcol // 64
    if nb > (data.size + 1) * 4096:
        raise CorruptStreamError(
            "intra frame claims far more blocks than its bytes can code", offset=offset, segment=segment
        )
    modes = np.zeros(nb, dtype=np.int64)
    if mode_model == 1:
        _mode_status(KI.decode_modes(data, 4, 4 + nmode, bx, modes), offset, segment)
    levels = np.zeros((nb, 64), dtype=np.int32)
    within = within and mode_model == 4  # 2.11's contexts and 2.12's starts: frames with 16x16 blocks only
    status = KM.decode_coefficients_ms(data, 4 + nmode, data.size, bx, levels, within, trained and within)
    if status == K.E_TRUNCATED:
        raise TruncatedStreamError("intra residual levels end before the frame does", offset=offset, segment=segment)
    if status != K.OK:
        raise CorruptStreamError("intra residual levels out of range", offset=offset, segment=segment)
    recon = np.empty((prow, pcol), dtype=np.int32)  # every sample written before it is read
    steps = coder.steps.astype(np.float64).reshape(8, 8)
    if mode_model == 4:  # format 2.6: 16x16 blocks, macroblocks in raster order, 8x8 blocks in Z order
        by = prow // 8
        split = np.empty(((by + 1) // 2) * ((bx + 1) // 2), np.uint8)
        status = KI.decode_intra26(data, 4, 4 + nmode, levels, steps, ZIGZAG.astype(np.int64), _offsets(offsets),
                                   DCT_MATRIX, np.int64(coder.offset), np.int64(coder._lo), np.int64(coder._hi),
                                   recon, modes, flat_tolerance(coder), KI.DST7, np.zeros(nb, np.uint8), split,
                                   KI.DCT16, False, trained and within)  # fmt: skip
        _mode_status(status, offset, segment)
        return recon[:rows, :cols].astype(coder._dtype)
    if mode_model == 3:  # format 2.5: mode model 2 and each coded block's transform choice
        status = KI.decode_intra25(data, 4, 4 + nmode, levels, steps, ZIGZAG.astype(np.int64), _offsets(offsets),
                                   DCT_MATRIX, np.int64(coder.offset), np.int64(coder._lo), np.int64(coder._hi),
                                   recon, modes, flat_tolerance(coder), KI.DST7, np.zeros(nb, np.uint8))  # fmt: skip
        _mode_status(status, offset, segment)
        return recon[:rows, :cols].astype(coder._dtype)
    if mode_model == 2:  # the modes are read block by block: whether one is coded depends on the samples
        status = KI.decode_intra2(data, 4, 4 + nmode, levels, steps, ZIGZAG.astype(np.int64), _offsets(offsets),
                                  DCT_MATRIX, np.int64(coder.offset), np.int64(coder._lo), np.int64(coder._hi), recon,
                                  modes, flat_tolerance(coder))  # fmt: skip
        _mode_status(status, offset, segment)
        return recon[:rows, :cols].astype(coder._dtype)
    bad = KI.decode_intra(levels, modes, steps, ZIGZAG.astype(np.int64), _offsets(offsets), DCT_MATRIX,
                          np.int64(coder.offset), np.int64(coder._lo), np.int64(coder._hi), recon)  # fmt: skip
    if bad >= 0:
        raise CorruptStreamError(f"intra mode of block {bad} out of range", offset=offset, segment=segment)
    return recon[:rows, :cols].astype(coder._dtype)


def _mode_status(status: int, offset: int | None, segment: str | None) -> None:
    """Raise the error a mode decoder's status names (nothing for OK)."""
    if status == K.E_TRUNCATED:
        raise TruncatedStreamError("intra modes end before the frame does", offset=offset, segment=segment)
    if status != K.OK:
        raise CorruptStreamError("intra modes out of range", offset=offset, segment=segment)


def decode_modes2_reference(segment: bytes, recon: np.ndarray, mid: int, tol: int) -> np.ndarray:
    """Mode model 2's mode segment decoded as ``docs/format.md`` §17 writes it, in plain Python (the
    twin :func:`._kernels_intra.decode_intra2` is checked against; slow, for tests).

    Parameters
    ----------
    segment
        The mode segment's bytes.
    recon
        The frame's decoded samples, padded (rows and cols multiples of 8): they tell which blocks
        have flat references (the samples a block's references read are final before it is decoded).
    mid
        The level offset (the references of the first block).
    tol
        The flatness tolerance (:func:`flat_tolerance` of the frame's steps).

    Returns
    -------
    numpy.ndarray
        The mode of every block, raster order.
    """
    return _decode_modes_reference(segment, recon, mid, tol, None)[0]


def decode_modes25_reference(segment: bytes, recon: np.ndarray, levels: np.ndarray, mid: int,
                             tol: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Format 2.5's mode segment (``docs/format.md`` §18) in plain Python: :func:`decode_modes2_reference`
    with each coded block's transform choice after its mode (a block not flat, of mode other than DC,
    with a non-zero level in ``levels``, (nblocks, 64)). Returns (modes, choices: 0 the DCT, 1 the
    mode's DST-VII pair, 2 none coded)."""
    return _decode_modes_reference(segment, recon, mid, tol, np.asarray(levels))[:2]


def decode_modes26_reference(segment: bytes, recon: np.ndarray, levels: np.ndarray, mid: int, tol: int,
                             trained: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Format 2.6's mode segment (``docs/format.md`` §19) in plain Python: macroblocks in raster order,
    a full one's split symbol (context: how many of the left and above macroblocks are one 16x16
    block), a 16x16 block's mode (0 DC, 1 SMOOTH, 2 paeth; one context row) which its positions carry,
    the 8x8 blocks of the others in Z order
    read as :func:`decode_modes25_reference` reads them (the bottom-right block's above-right samples
    not decoded yet); ``trained``: every model from format 2.12's starts (§22). Returns (modes, choices,
    split: per macroblock 0 one 16x16 block, 1 split, 2 past the frame's edge)."""
    return _decode_modes_reference(segment, recon, mid, tol, np.asarray(levels), big=True, trained=trained)


def _reference_rows(model: np.ndarray, n: int) -> tuple[list[list[int]], list[int]]:
    """A model in the §13.1 layout (rows of ``n``: count, then ``c[1] .. c[n-1]``) as the reference
    decoder keeps it: each row's full CDF ``c[0..n]`` and the counts."""
    rows = len(model) // n
    cdfs = [[0, *(int(v) for v in model[r * n + 1 : (r + 1) * n]), 32768] for r in range(rows)]
    return cdfs, [int(model[r * n]) for r in range(rows)]


def _decode_modes_reference(segment: bytes, recon: np.ndarray, mid: int, tol: int, levels: np.ndarray | None,
                            big: bool = False,
                            trained: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    rows, cols = recon.shape
    bx, nb = cols // 8, rows * cols // 64
    data = bytes(segment)
    pos, past = 0, 0

    def byte() -> int:
        nonlocal pos, past
        v = data[pos] if pos < len(data) else 0
        past += pos >= len(data)
        pos += 1
        return v

    code, rng = 0, 0xFFFFFFFF
    for _ in range(5):
        code = ((code << 8) | byte()) & 0xFFFFFFFF
    # the starts: §13.1's uniform rows, or format 2.12's trained tables (§22)
    cdf, count = _reference_rows(KI.TRAINED_MODE_MODEL if trained else KI.INITIAL_MODE_MODEL, N_MODES)
    modes = np.zeros(nb, dtype=np.int64)
    choices = np.full(nb, 2, dtype=np.int64)
    tcdf, tcount = _reference_rows(KI.TRAINED_TX_MODEL if trained else KI.INITIAL_TX_MODEL, 2)

    def symbol(c: list[int], row: int, counts: list[int], n: int) -> int:
        """One n-ary symbol of the §13.1 coder with the CDF ``c`` (c[0] = 0, c[n] = 32768), adapted."""
        nonlocal code, rng
        r = rng >> 15
        if code >= r << 15:
            raise CorruptStreamError("intra mode code value outside the range")
        s = 0
        while code >= r * c[s + 1]:
            s += 1
        code -= r * c[s]
        rng = r * (c[s + 1] - c[s])
        rate = min(7, (counts[row] + 1).bit_length())
        for i in range(1, n):
            t = i * KM.FLOOR + ((32768 - n * KM.FLOOR) if i > s else 0)
            c[i] += (t - c[i]) >> rate
        counts[row] = min(counts[row] + 1, KM.COUNT_MAX)
        while rng < 1 << 24:
            rng <<= 8
            code = (code << 8) | byte()
        if past > 8:
            raise TruncatedStreamError("intra modes end before the frame does")
        return s

    def read_blocks(blocks: list[int]) -> None:
        """The mode (and format 2.5's choice) of each block of ``blocks``, in that order."""
        for b in blocks:
            r0, c0 = 8 * (b // bx), 8 * (b % bx)
            ctx = int(modes[b - 1]) if c0 > 0 else int(modes[b - bx]) if r0 > 0 else 0
            refs: list[int] = []  # every distinct source of the references (copies add no new value)
            if r0 > 0:  # format 2.6: a macroblock's bottom-right block has no above-right samples yet
                reach = 8 if big and r0 % 16 == 8 and c0 % 16 == 8 else 16
                refs += [int(v) for v in recon[r0 - 1, c0 : min(c0 + reach, cols)]]
            if c0 > 0:
                refs += [int(v) for v in recon[r0 : r0 + 8, c0 - 1]]
            if r0 > 0 and c0 > 0:
                refs.append(int(recon[r0 - 1, c0 - 1]))
            if not refs:
                refs = [mid]
            if max(refs) - min(refs) <= tol:
                modes[b] = ctx
                continue
            modes[b] = s = symbol(cdf[ctx], ctx, count, N_MODES)
            if levels is not None and s != 0 and np.any(levels[b] != 0):  # format 2.5: the transform choice
                cls = int(KI.TX_CLASS[s])
                choices[b] = symbol(tcdf[cls], cls, tcount, 2)

    nmx, nmy = (bx + 1) // 2, (rows // 8 + 1) // 2
    split = np.full(nmx * nmy if big else 0, 2, dtype=np.int64)
    scdf, scount = _reference_rows(KI.TRAINED_SPLIT_MODEL if trained else KI.INITIAL_SPLIT_MODEL, 2)
    mcdfs, mcount = _reference_rows(KI.TRAINED_MODE16_MODEL if trained else KI.INITIAL_MODE16_MODEL, KI.N_MODES16)
    mcdf = mcdfs[0]
    for mb in range(nmx * nmy if big else 0):
        my, mx = divmod(mb, nmx)
        if 16 * my + 16 <= rows and 16 * mx + 16 <= cols:
            row = int(mx > 0 and split[mb - 1] == 0) + int(my > 0 and split[mb - nmx] == 0)
            split[mb] = symbol(scdf[row], row, scount, 2)
            if split[mb] == 0:  # one 16x16 block: its mode (one context row), its positions that mode
                m16 = symbol(mcdf, 0, mcount, KI.N_MODES16)
                for q in range(4):
                    modes[(2 * my + q // 2) * bx + 2 * mx + q % 2] = m16
                continue
        # the modes of this macroblock's blocks, in Z order, before the next split symbol
        read_blocks([(2 * my + q // 2) * bx + 2 * mx + q % 2 for q in range(4)
                     if 2 * my + q // 2 < rows // 8 and 2 * mx + q % 2 < bx])  # fmt: skip
    if not big:
        read_blocks(list(range(nb)))
    if past > 0:
        raise TruncatedStreamError("intra modes end before the frame does")
    return modes, choices, split
