"""Quantization table shapes trained per modality for the standard JPEG encoder (issue 11).

Each shape is 64 relative weights (natural order, DC first) that :func:`.quantize.quant_table`
scales by the quality and the bits the data spans; the resulting steps travel in the stream's
DQT (T.81 §B.2.4.1), so any decoder reads them. The shape is chosen per modality
(:func:`table_for`): from ``PixelSpec.extra["modality"]`` when the caller knows it (DICOM
input), else :data:`DEFAULT_MODALITY`'s.

How they were trained (``benchmarks/train_jpeg_tables.py``, run 2026-11-30): the family
``w(u, v) = 1 + s (u + v)`` with the DC weight times ``d``, ``s`` in {0, 0.02, 0.05, 0.09} and
``d`` in {0.8, 1}, each scored by the BD-rate (0.4-2.5 bpp, PSNR peak 4095) of the default
encoder (texture-aware quantizer) against libjpeg-turbo 12-bit with optimised Huffman tables.
Training images come from ``../shared/data`` only; the held-out test images (pydicom-data's
``693_UNCR`` CT, ``MR-SIEMENS-DICOM-WithOverlays`` MR, ``RG1_UNCR`` CR) were never used.

| modality | training sets | best s, d | mean BD-rate | the old ``"medical"`` shape (s=0.09, d=1) |
|---|---|---|---|---|
| CT | chest CT series, head phantom series (3 slices each) | 0.02, 1.0 | -19.22 % | -18.21 % |
| MR | T1 head series (halved into 12 bits); MR2 + 384x384 MR | 0, 1.0 | -8.54 % | -5.16 % |
| radiograph | RG3 CR, DX chest (768x768 centre crops) | 0, 0.8 | -20.27 % | -19.22 % |

(The MR mean is low because its second set pools two images whose content spans 10 and
12 bits, so one quality gives them steps 4x apart; per image the MR figures are near -20 %.)

The measurement says what theory says: for an orthonormal transform and squared error, flat
steps are best, and the differences between near-flat shapes are a fraction of a percent. The
photographic shape of T.81 Annex K, whose steps grow 6x towards high frequencies, is what
costs libjpeg-turbo most of the 20 %. Keeping the noise texture is the quantizer's job, not
the table's (``_rdoq`` module docstring, docs/design-notes.md).
"""

from __future__ import annotations

import numpy as np

__all__ = ["TRAINED", "MODALITY_GROUP", "DEFAULT_MODALITY", "table_for"]


def _shape(s: float, d: float) -> np.ndarray:
    v, u = np.mgrid[0:8, 0:8]
    w = (1.0 + s * (u + v)).ravel().astype(np.float64)
    w[0] *= d
    w.flags.writeable = False
    return w


#: Trained shapes, natural order, by modality group (table above).
TRAINED: dict[str, np.ndarray] = {
    "ct": _shape(0.02, 1.0),
    "mr": _shape(0.0, 1.0),
    "radiograph": _shape(0.0, 0.8),
}

#: DICOM Modality (0008,0060) -> trained group. Projection radiography shares one table.
MODALITY_GROUP: dict[str, str] = {
    "CT": "ct",
    "MR": "mr",
    "CR": "radiograph",
    "DX": "radiograph",
    "MG": "radiograph",
    "RG": "radiograph",
    "IO": "radiograph",
    "PX": "radiograph",
    "XA": "radiograph",
    "RF": "radiograph",
}

#: Used when the modality is unknown (plain arrays): the CT shape, medcodec's main input.
DEFAULT_MODALITY = "ct"


def table_for(modality: str | None) -> str:
    """Name of the trained table (a key of :data:`TRAINED`, also a ``quantize.TABLES`` name) for a
    DICOM modality code; the default group's when it is unknown or ``None``.

    >>> table_for("MR"), table_for("DX"), table_for(None), table_for("PT")
    ('mr', 'radiograph', 'ct', 'ct')
    """
    return MODALITY_GROUP.get((modality or "").strip().upper(), DEFAULT_MODALITY)
