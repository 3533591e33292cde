"""8x8 orthonormal DCT over all blocks of a frame at once (array -> array).

The forward DCT is T.81 §A.3.3's FDCT, which is the orthonormal 2-D DCT-II:
``F = C f C^T`` with ``C[k, n] = a(k) cos((2n+1) k pi / 16)``, ``a(0) = sqrt(1/8)``,
``a(k>0) = 1/2``. Flattening each block to 64 values turns it into one matrix product
with ``K = kron(C, C)``: ``F64 = f64 @ K.T``, and the inverse is ``f64 = F64 @ K``
(K is orthogonal). A frame's N blocks thus transform in a single (N, 64) x (64, 64)
BLAS call; zigzag reordering and division by the quantization steps fold into the
same matrix (:func:`analysis_matrix`), so forward DCT + zigzag + scaling is one GEMM.
Because the transform is orthonormal, squared error in the coefficient domain equals
squared error in the pixel domain (Parseval), which rate control uses.

Blocks: frames are padded to whole blocks by repeating the last row/column (edge
padding keeps the padding cheap to code), split into row-major blocks, and cropped
again on decode.

Fast path: the codec itself does not run these matrix products. :mod:`._kernels` fuses
blockify, level shift, an AAN-factorised float64 DCT (as libjpeg's ``jfdctflt.c`` /
``jidctflt.c``: 5 multiplications instead of 64 multiply-adds per 8-point transform),
quantization and zigzag in one pass per frame, with the per-coefficient factors from
:func:`forward_multipliers` / :func:`inverse_multipliers`; the products here are the
reference twins its tests compare against (equal except for values within rounding noise
of a half-integer).
"""

from __future__ import annotations

import numpy as np

from .zigzag import ZIGZAG

__all__ = [
    "BLOCK",
    "DCT_MATRIX",
    "KRON",
    "blocks_shape",
    "blockify",
    "unblockify",
    "fdct",
    "idct",
    "analysis_matrix",
    "synthesis_matrix",
    "AAN_SCALE",
    "NAT_ZZ",
    "forward_multipliers",
    "inverse_multipliers",
]

BLOCK = 8


def _dct_matrix(n: int = BLOCK) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    c = np.cos((2 * x + 1) * k * np.pi / (2 * n)) * np.sqrt(2.0 / n)
    c[0, :] = np.sqrt(1.0 / n)
    return c


DCT_MATRIX: np.ndarray = _dct_matrix()
KRON: np.ndarray = np.kron(DCT_MATRIX, DCT_MATRIX)  # (64, 64): row u*8+v, column y*8+x
DCT_MATRIX.flags.writeable = False
KRON.flags.writeable = False


def blocks_shape(rows: int, cols: int) -> tuple[int, int]:
    """Number of block rows and block columns covering a rows x cols frame."""
    return -(-rows // BLOCK), -(-cols // BLOCK)


def blockify(frame: np.ndarray) -> np.ndarray:
    """(rows, cols) -> (nblocks, 64) row-major 8x8 blocks, edge-padded to whole blocks."""
    rows, cols = frame.shape
    by, bx = blocks_shape(rows, cols)
    if (by * BLOCK, bx * BLOCK) != (rows, cols):
        frame = np.pad(frame, ((0, by * BLOCK - rows), (0, bx * BLOCK - cols)), mode="edge")
    return frame.reshape(by, BLOCK, bx, BLOCK).transpose(0, 2, 1, 3).reshape(by * bx, BLOCK * BLOCK)


def unblockify(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(nblocks, 64) -> (rows, cols): the inverse of :func:`blockify`, cropped."""
    by, bx = blocks_shape(rows, cols)
    full = blocks.reshape(by, bx, BLOCK, BLOCK).transpose(0, 2, 1, 3).reshape(by * BLOCK, bx * BLOCK)
    return full[:rows, :cols]


def fdct(blocks: np.ndarray) -> np.ndarray:
    """Forward orthonormal DCT of (N, 64) natural-order blocks (float64 reference)."""
    return np.asarray(blocks, dtype=np.float64) @ KRON.T


def idct(coefficients: np.ndarray) -> np.ndarray:
    """Inverse of :func:`fdct`."""
    return np.asarray(coefficients, dtype=np.float64) @ KRON


def analysis_matrix(steps_zz: np.ndarray) -> np.ndarray:
    """(64, 64) matrix M with ``blocks @ M`` = zigzag-ordered DCT coefficients / steps.

    ``steps_zz`` are the quantization steps in zigzag order.
    """
    return (KRON[ZIGZAG] / np.asarray(steps_zz, dtype=np.float64)[:, None]).T


def synthesis_matrix(steps_zz: np.ndarray, *, exact_dc: bool = False) -> np.ndarray:
    """(64, 64) matrix S with ``levels_zz @ S`` = reconstructed (natural-order) blocks.
    ``exact_dc``: the DC basis exactly 1/8 (the float product of two 1/sqrt(8) is 1/8 + 2**-55,
    which puts a negative DC level's exact half a hair below it), as :func:`inverse_multipliers`."""
    s = KRON[ZIGZAG] * np.asarray(steps_zz, dtype=np.float64)[:, None]
    if exact_dc:
        s[0, :] = float(np.asarray(steps_zz, dtype=np.float64)[0]) / 8.0
    return s


#: AAN output scale per frequency: a(0) = 1, a(k) = sqrt(2) cos(k pi / 16). The AAN 8x8 DCT
#: yields the orthonormal coefficient (v, u) times 8 a(v) a(u); its inverse takes the
#: coefficient times a(v) a(u) / 8.
AAN_SCALE: np.ndarray = np.array([1.0] + [np.sqrt(2.0) * np.cos(k * np.pi / 16) for k in range(1, BLOCK)])
AAN_SCALE[4] = 1.0  # exactly (the float product is 1 + 2**-52): keeps the rational coefficients exact
_AAN_2D = np.outer(AAN_SCALE, AAN_SCALE).ravel()  # natural order
#: ZIGZAG as the int64 index array the kernels take.
NAT_ZZ: np.ndarray = np.ascontiguousarray(ZIGZAG, dtype=np.int64)
for _a in (AAN_SCALE, _AAN_2D, NAT_ZZ):
    _a.flags.writeable = False


def forward_multipliers(steps_zz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exact divisors, zigzag multipliers) that turn the AAN DCT into coefficients / steps.

    Coefficient k (zigzag) of a block is ``aan[NAT_ZZ[k]] * qmul[k]``, except the four
    whose basis function is rational (:data:`._kernels.EXACT_ZZ`: the DC, (4, 0), (0, 4),
    (4, 4)): their AAN outputs are exact integers and are divided by ``8 * step``, one
    correctly rounded division, so a value exactly half-way between two levels stays
    exactly half-way and is rounded away from zero like any other half.
    """
    from ._kernels import EXACT_ZZ

    s = np.asarray(steps_zz, dtype=np.float64)
    qmul = 1.0 / (s * 8.0 * _AAN_2D[ZIGZAG])
    return np.ascontiguousarray(8.0 * s[list(EXACT_ZZ)]), np.ascontiguousarray(qmul)


def inverse_multipliers(steps_zz: np.ndarray, *, exact_dc: bool = False) -> tuple[np.ndarray, float]:
    """(natural-order dequantization multipliers for the AAN inverse DCT, DC-only multiplier).

    A block whose only level is its DC ``d`` reconstructs to ``d * dc_mul`` everywhere,
    where ``dc_mul`` is the reference :func:`synthesis_matrix` entry, so such blocks (most
    of the air in a CT) decode to exactly the pixels of the reference product. ``exact_dc``
    (JPEG): ``step / 8`` exactly, so that a DC level whose value is an exact half is one
    (ISO 10918-1 decoders round it up; ``KRON[0, 0]`` is 1/8 + 2**-55, and -27.5 came out
    -27.500000000000004: an outside audit, 2026-12-03). ``.mdc`` keeps the product it was
    coded against.
    """
    s = np.asarray(steps_zz, dtype=np.float64)
    deq = np.empty(64)
    deq[ZIGZAG] = s * _AAN_2D[ZIGZAG] / 8.0
    dc_mul = float(s[0]) / 8.0 if exact_dc else float(KRON[0, 0] * s[0])
    return deq, dc_mul
