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
    return (
        frame.reshape(by, BLOCK, bx, BLOCK).transpose(0, 2, 1, 3).reshape(by * bx, BLOCK * BLOCK)
    )


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


def synthesis_matrix(steps_zz: np.ndarray) -> np.ndarray:
    """(64, 64) matrix S with ``levels_zz @ S`` = reconstructed (natural-order) blocks."""
    return KRON[ZIGZAG] * np.asarray(steps_zz, dtype=np.float64)[:, None]
