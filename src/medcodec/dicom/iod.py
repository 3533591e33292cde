"""What an IOD fixes about the pixel data of a copy: the rules a derived file must keep.

Coding with a syntax narrower than the source (12-bit JPEG for 13-16-bit data) moves the stored
values (:class:`medcodec.dicom.mapping.SeriesMapping`); most IODs let the rescale carry that, but
some fix the attributes it would touch (PS3.3):

* **The rescale** of the IODs built on the DX Image Module (C.8.11.3: digital X-ray, mammography
  and intra-oral, for presentation and for processing): Rescale Slope 1, Intercept 0, Type US.
  The mapping goes into their windows and VOI LUTs instead
  (:func:`medcodec.dicom.write.fold_rescale_into_voi`).
* **Bits Stored** of PET (C.8.9.4: Bits Allocated and Bits Stored 16, the enhanced and legacy
  converted PET likewise) and RT Dose (C.8.8.3: 16 or 32): no mapping into 12 bits can be written
  as such an object, so 12-bit JPEG is refused for them (an audit, 2026-12-04: dciodvfy rejected
  a PET copy with Bits Stored 12 and High Bit 11), and the delivery presets deliver them losslessly
  (:meth:`medcodec.delivery.presets.Preset.operating_point`).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IDENTITY_RESCALE_SOP_CLASSES",
    "FIXED_BITS_STORED",
    "rescale_must_be_identity",
    "bits_stored_allowed",
]

#: SOP classes built on the DX Image Module, whose Rescale Slope, Intercept and Type have the
#: enumerated values 1, 0 and US only.
IDENTITY_RESCALE_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
        "1.2.840.10008.5.1.4.1.1.1.1.1",  # - For Processing
        "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray Image Storage - For Presentation
        "1.2.840.10008.5.1.4.1.1.1.2.1",  # - For Processing
        "1.2.840.10008.5.1.4.1.1.1.3",  # Digital Intra-Oral X-Ray Image Storage - For Presentation
        "1.2.840.10008.5.1.4.1.1.1.3.1",  # - For Processing
    }
)

#: SOP classes whose IOD allows only these Bits Stored.
FIXED_BITS_STORED: dict[str, frozenset[int]] = {
    "1.2.840.10008.5.1.4.1.1.128": frozenset({16}),  # Positron Emission Tomography Image Storage
    "1.2.840.10008.5.1.4.1.1.128.1": frozenset({16}),  # Legacy Converted Enhanced PET Image Storage
    "1.2.840.10008.5.1.4.1.1.130": frozenset({16}),  # Enhanced PET Image Storage
    "1.2.840.10008.5.1.4.1.1.481.2": frozenset({16, 32}),  # RT Dose Storage
}


def _sop_class(ds: Any) -> str:
    return str(ds.get("SOPClassUID", "") or "").strip()


def rescale_must_be_identity(ds: Any) -> bool:
    """Whether the IOD of ``ds`` fixes its rescale at 1 / 0 (:data:`IDENTITY_RESCALE_SOP_CLASSES`)."""
    return _sop_class(ds) in IDENTITY_RESCALE_SOP_CLASSES


def bits_stored_allowed(ds: Any, bits_stored: int) -> bool:
    """Whether a copy of ``ds`` (same SOP class) may declare ``bits_stored`` (:data:`FIXED_BITS_STORED`).

    >>> from pydicom.dataset import Dataset
    >>> pet = Dataset()
    >>> pet.SOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    >>> bits_stored_allowed(pet, 12), bits_stored_allowed(pet, 16)
    (False, True)
    """
    allowed = FIXED_BITS_STORED.get(_sop_class(ds))
    return allowed is None or bits_stored in allowed
