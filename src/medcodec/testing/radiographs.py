"""Radiographs for tests: real pixels in the DX / mammography headers no public sample has.

No real DX or mammogram above 12 bits with a VOI LUT Sequence, a SIGMOID window or MONOCHROME1
could be found on PyPI, Debian or npm (an outside audit, 2026-12-04). :func:`radiograph` puts the
real pixels of a CR (the shared data's NEMA WG04 RG3) scaled to 15 bits into such a header, as the
audit did; tests in several folders use it (a ``conftest`` module is per folder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

__all__ = ["CR", "DX", "MG", "radiograph", "voi_lut_item"]

#: The real CR whose pixels are used, relative to the shared data (``MEDCODEC_DATA``).
CR = "singles/cr_RG3_1760x1760_10bit_uncompressed.dcm"
DX = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
MG = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image Storage - For Presentation


def voi_lut_item(first: int, n: int, bits: int = 12) -> Dataset:
    """A VOI LUT Sequence item: a 0.6 gamma curve of ``n`` entries from ``first`` to ``bits`` bits (LUT Data OW)."""
    item = Dataset()
    x = np.linspace(0.0, 1.0, n)
    item.add_new(0x00283002, "US", [n, first, bits])  # LUT Descriptor
    item.add_new(0x00283003, "LO", "GAMMA 0.6")
    item.add_new(0x00283006, "OW", np.round(x**0.6 * (2**bits - 1)).astype("<u2").tobytes())  # LUT Data
    return item


def radiograph(shared_data: Path, folder: Path, sop_class: str, modality: str, function: str | None) -> Path:
    """A 15-bit For Presentation image of real CR pixels, MONOCHROME1, with windows and a VOI LUT."""
    src = pydicom.dcmread(shared_data / CR)
    pixels = src.pixel_array[600:1112, 600:1112].astype(np.int64) * 32  # 10 -> 15 bits
    ds = src.copy()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.Modality = modality
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 15, 14, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue"):
        if keyword in ds:
            del ds[keyword]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PhotometricInterpretation, ds.PresentationLUTShape = "MONOCHROME1", "INVERSE"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LOG", -1
    ds.ImageLaterality, ds.BurnedInAnnotation = "L", "NO"
    lo, hi = int(pixels.min()), int(pixels.max())
    ds.WindowCenter = [str((lo + hi) // 2), str((lo + hi) // 3)]
    ds.WindowWidth = [str(hi - lo), str((hi - lo) // 2)]
    if function:
        ds.VOILUTFunction = function
    ds.VOILUTSequence = [voi_lut_item(lo + 100, hi - lo - 300)]
    path = folder / f"{modality}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path
