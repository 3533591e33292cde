"""What an IOD fixes about the pixel data of a copy: the rules a derived file must keep.

Coding with a syntax narrower than the source (12-bit JPEG for 13-16-bit data) moves the stored
values (:class:`medcodec.dicom.mapping.SeriesMapping`); most IODs let the rescale carry that, but
some fix the attributes it would touch (PS3.3):

* **The rescale** of the IODs built on the DX Image Module (C.8.11.3: digital X-ray, mammography
  and intra-oral, for presentation and for processing): Rescale Slope 1, Intercept 0, Type US.
  The mapping goes into their windows and VOI LUTs instead
  (:func:`medcodec.dicom.write.fold_rescale_into_voi`).
* **Bits Stored** of PET (C.8.9.4: Bits Allocated and Bits Stored 16, the enhanced and legacy
  converted PET likewise), NM (C.8.4.7: 8 or 16) and RT Dose (C.8.8.3: 16 or 32): no mapping into
  12 bits can be written as such an object, so 12-bit JPEG is refused for them (an audit,
  2026-12-04: dciodvfy rejected a PET copy with Bits Stored 12 and High Bit 11, a re-check an NM
  one), and the delivery presets deliver them losslessly
  (:meth:`medcodec.delivery.presets.Preset.operating_point`).
* **The rescale intercept** of PET (C.8.9.4: 0): a syntax without a sign (JPEG-LS, JPEG) shifts
  signed values and moves the intercept, so it is refused for signed PET (a re-check, 2026-12-04:
  ``dicom-jpegls`` wrote Rescale Intercept -800), where JPEG 2000 and HTJ2K keep the sign.
"""

from __future__ import annotations

from typing import Any

from ..errors import UnsupportedImageError

__all__ = [
    "IDENTITY_RESCALE_SOP_CLASSES",
    "FIXED_BITS_STORED",
    "ZERO_INTERCEPT_SOP_CLASSES",
    "rescale_must_be_identity",
    "bits_stored_allowed",
    "intercept_allowed",
    "quantitative",
    "check_copy",
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
    "1.2.840.10008.5.1.4.1.1.20": frozenset({8, 16}),  # Nuclear Medicine Image Storage
}

#: SOP classes whose Rescale Intercept is fixed at 0: the PET ones.
ZERO_INTERCEPT_SOP_CLASSES = frozenset(
    {"1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.128.1", "1.2.840.10008.5.1.4.1.1.130"}
)


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


def intercept_allowed(ds: Any, intercept: float) -> bool:
    """Whether a copy of ``ds`` may declare Rescale Intercept ``intercept`` (:data:`ZERO_INTERCEPT_SOP_CLASSES`)."""
    return _sop_class(ds) not in ZERO_INTERCEPT_SOP_CLASSES or float(intercept) == 0.0


def quantitative(ds: Any) -> bool:
    """Whether ``ds`` is read quantitatively and its IOD narrows what a copy may be (PET): the delivery
    presets deliver it losslessly whatever their point."""
    return _sop_class(ds) in ZERO_INTERCEPT_SOP_CLASSES


def check_copy(
    ds: Any, *, bits: int, source_bits: int, intercept: float, source_intercept: float, syntax: str, keep: str,
    path: str | None = None,
) -> None:  # fmt: skip
    """Raise :class:`~medcodec.errors.UnsupportedImageError` when a copy of ``ds`` coded by ``syntax``
    would change Bits Stored (``source_bits`` -> ``bits``) or the rescale intercept into a value
    the IOD forbids (:func:`bits_stored_allowed`, :func:`intercept_allowed`); ``keep`` names what to
    use instead. A source already outside its IOD keeps what it has (an outside re-check,
    2026-12-04: a PET with its own intercept was refused even losslessly)."""
    what = f"{_sop_class(ds) or '?'} ({ds.get('Modality', '?')})"
    if bits != source_bits and not bits_stored_allowed(ds, bits):
        allowed = "/".join(map(str, sorted(FIXED_BITS_STORED[_sop_class(ds)])))
        raise UnsupportedImageError(
            f"{what} fixes Bits Stored at {allowed} (PS3.3); {syntax} holds {bits} bits: use {keep}", path=path
        )
    if float(intercept) != float(source_intercept) and not intercept_allowed(ds, intercept):
        raise UnsupportedImageError(
            f"{what} fixes Rescale Intercept at 0 (PS3.3 C.8.9.4); {syntax} has no sign and would shift the "
            f"values (intercept {intercept:g}): use {keep}",
            path=path,
        )
