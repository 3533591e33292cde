"""Write derived DICOM images: decoded (lossy) pixels, every original attribute kept.

:func:`derive_dataset` builds the new dataset, :func:`write_derived` writes it atomically
(:func:`medcodec.fileio.atomic_write`) and never over an input
(:func:`medcodec.fileio.check_output_path`).

What changes, and why (PS3.3 references):

* Pixel data: the decoded stored values, uncompressed, Explicit VR Little Endian, so any
  viewer opens it (:func:`derive_dataset`); or already-compressed frames, encapsulated one
  fragment per frame after a Basic Offset Table (PS3.5 §A.4) under their transfer syntax
  (:func:`derive_encapsulated`, used by :mod:`medcodec.dicom.lossy`). Both share every other
  rule below. Image Pixel module (C.7.6.3) attributes follow the given
  :class:`~medcodec.spec.PixelSpec` (Bits Allocated 8 up to 8 bits stored, else 16). Number of
  Frames is kept for multi-frame objects and not added to single-frame ones. Every other
  group 7FE0 element (offset tables, float pixel data) is dropped, and so are Smallest/Largest
  Image/Series Pixel Value (0028,0106-0109), which the new pixels may contradict.
* Rescale Slope/Intercept (C.11.1) follow the spec: at top level, or inside the Pixel Value
  Transformation functional groups of enhanced objects (C.7.6.16.2.9), whichever the source
  used. Windows are left alone: they are in output units, which the spec's rescale preserves;
  except where the IOD fixes the rescale at 1 / 0 (DX, mammography, intra-oral: :mod:`.iod`),
  whose windows and VOI LUTs carry the mapping instead (:func:`fold_rescale_into_voi`).
* Lossy compression (C.7.6.1.1.5): Lossy Image Compression (0028,2110) = ``"01"``; the new
  ratio and method are *appended* to (0028,2112) and (0028,2114) so the history of earlier
  lossy steps survives. Derivation Code Sequence gets (113040, DCM, "Lossy Compression")
  (CID 7203) and single-frame IODs get a Source Image Sequence item pointing at the
  original with purpose (121320, DCM, "Uncompressed predecessor") (CID 7202); enhanced IODs
  get it in the Derivation Image functional group, with the Source Image Evidence Sequence
  (:func:`reference_source`).
* Image Type value 1 becomes ``DERIVED`` (C.7.6.1.1.2), and Frame Type value 1 in enhanced
  objects; Derivation Description (0008,2111) is set.
* Values the source stores in breach of their VR (e.g. a hash in a UI element) are copied
  verbatim, without pydicom's validation warnings (policy in :mod:`medcodec.dicom._lenient`).
  A private element read with implicit VR has no VR of its own: written in explicit VR, it takes
  its private dictionary VR when its bytes are a valid value of it, else UN with its bytes
  (:func:`untyped_private_as_un`), as DCMTK and GDCM write it.
* Identity: a new SOP Instance UID, mirrored in Media Storage SOP Instance UID (PS3.10 §7.1).
  A whole series gets one new Series Instance UID when the caller passes ``new_series_uid``;
  :func:`new_uid_map` gives one new UID per original UID for that.
"""

from __future__ import annotations

import copy
import io
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom import dcmwrite
from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels.utils import set_pixel_data
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from .._version import __version__
from ..errors import DicomError, InvalidInputError, LossySourceWarning
from ..fileio import atomic_write, check_output_path
from ..spec import PixelSpec, storage_dtype
from ._lenient import source_values_as_is
from .codestream import stored_lossy_step, stored_pixels_lossy
from .iod import rescale_must_be_identity
from .pixel_spec import voi_lut_table

__all__ = [
    "derive_dataset",
    "derive_encapsulated",
    "set_encapsulated_pixels",
    "set_colour_jpeg_pixels",
    "mark_lossy",
    "complete_lossy_history",
    "keep_lossy_history",
    "label_derived_series",
    "is_lossy_source",
    "warn_if_lossy_source",
    "DERIVED_SERIES_NUMBER_OFFSET",
    "encode_file",
    "keep_text_bytes",
    "untyped_private_as_un",
    "private_value_fits",
    "write_derived",
    "new_uid_map",
    "LOSSY_METHODS",
    "DROPPED_TAGS",
]

#: Defined terms of Lossy Image Compression Method (0028,2114), PS3.3 C.7.6.1.1.5.1.
LOSSY_METHODS = ("ISO_10918_1", "ISO_14495_1", "ISO_15444_1", "ISO_15444_15", "ISO_13818_2", "ISO_14496_10")

_CS = re.compile(r"^[A-Z0-9_ ]{1,16}$")
#: Elements a derived image drops: pixel statistics the new pixels may contradict, colour-only ones.
DROPPED_TAGS = {
    0x00280106,  # Smallest Image Pixel Value
    0x00280107,  # Largest Image Pixel Value
    0x00280108,  # Smallest Pixel Value in Series
    0x00280109,  # Largest Pixel Value in Series
    0x00280006,  # Planar Configuration (colour only)
    0xFFFCFFFC,  # Data Set Trailing Padding
}


def new_uid_map() -> defaultdict[str, str]:
    """A mapping that gives each original UID one new UID, generated on first lookup.

    Use one map per output series so every image of a series gets the same new Series
    Instance UID.

    Examples
    --------
    >>> uids = new_uid_map()
    >>> uids["1.2.3"] == uids["1.2.3"] != uids["1.2.4"]
    True
    """
    return defaultdict(generate_uid)


def derive_dataset(
    source_ds: Dataset,
    pixels: NDArray[np.integer],
    spec: PixelSpec,
    *,
    ratio: float,
    method: str,
    description: str,
    lossy: bool = True,
    new_series_uid: str | None = None,
) -> Dataset:
    """Build a derived dataset holding ``pixels`` uncompressed, with all other attributes kept.

    Parameters
    ----------
    source_ds
        The original dataset (pixel data may be present or not; it is never copied).
    pixels
        Decoded stored values, ``(rows, cols)`` or ``(frames, rows, cols)``, integers within
        ``[spec.min_value, spec.max_value]``.
    spec
        What the values mean: bits stored, sign, photometric interpretation, rescale.
    ratio
        Compression ratio achieved (uncompressed size / compressed size), > 0.
    method
        Lossy Image Compression Method, a DICOM CS value (``"ISO_10918_1"`` for JPEG, or
        medcodec's own term): up to 16 of ``A-Z 0-9 _ space``.
    description
        Derivation Description (0008,2111), at most 1024 characters.
    lossy
        When false (a lossless rendition) the lossy attributes are not touched.
    new_series_uid
        Series Instance UID for the derived image; ``None`` keeps the original.

    Returns
    -------
    pydicom.dataset.Dataset
        With ``file_meta`` (Explicit VR Little Endian), ready for :func:`write_derived`.

    Raises
    ------
    InvalidInputError
        Bad pixels (dtype, shape, values outside the spec's range) or bad options.
    DicomError
        The source has no SOP Class UID, so no valid file can be written.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom import examples
    >>> from medcodec.dicom import pixel_spec_from_dataset
    >>> src = examples.ct
    >>> out = derive_dataset(src, src.pixel_array, pixel_spec_from_dataset(src),
    ...                      ratio=10, method="ISO_10918_1", description="JPEG 12-bit q90")
    >>> out.LossyImageCompression, out.ImageType[0], out.SOPInstanceUID != src.SOPInstanceUID
    ('01', 'DERIVED', True)
    """
    arr = _check_pixels(pixels, spec)
    if arr.shape[0] == 1 and "NumberOfFrames" not in source_ds:
        arr = arr[0]

    def set_pixels(out: Dataset) -> None:
        out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        try:
            set_pixel_data(out, arr, spec.photometric_interpretation, spec.bits_stored, generate_instance_uid=False)
        except (ValueError, AttributeError, NotImplementedError) as exc:  # validated above; kept as a guard
            raise InvalidInputError(f"cannot set pixel data: {exc}") from exc

    return _derive(source_ds, set_pixels, spec, ratio=ratio, method=method, description=description, lossy=lossy,
                   new_series_uid=new_series_uid)  # fmt: skip


def derive_encapsulated(
    source_ds: Dataset,
    fragments: Iterable[bytes],
    spec: PixelSpec,
    *,
    transfer_syntax_uid: str,
    rows: int,
    columns: int,
    ratio: float,
    method: str,
    description: str,
    new_series_uid: str | None = None,
    lossy: bool = True,
) -> Dataset:
    """Build a derived dataset holding compressed frames, with all other attributes kept.

    The same rules as :func:`derive_dataset` (lossy attributes appended, DERIVED, new SOP
    Instance UID, rescale from ``spec``...), but the pixel data are ``fragments``, one
    compressed frame each, encapsulated one fragment per frame after a Basic Offset Table
    (PS3.5 §A.4, :func:`pydicom.encaps.encapsulate`).

    Parameters
    ----------
    source_ds
        The original dataset (its pixel data, if present, is never copied).
    fragments
        One codestream per frame, in frame order, each consistent with ``spec`` (PS3.5
        §8.2: Bits Stored, Pixel Representation... must describe the codestream).
    spec
        Bits stored, sign, photometric interpretation and rescale of the *encoded* values.
    transfer_syntax_uid
        The encapsulated transfer syntax of ``fragments`` (e.g. ``1.2.840.10008.1.2.4.51``).
    rows, columns
        Frame size.
    ratio, method, description, new_series_uid
        As in :func:`derive_dataset`.
    lossy
        The frames are lossy (the transfer syntax written says so: ``registry`` ``lossy`` flag);
        ``False`` for bit-exact frames (e.g. JPEG-LS NEAR=0 under .80): no lossy attributes are
        added and the source's Lossy Image Compression history is kept as it is.

    Returns
    -------
    pydicom.dataset.Dataset
        With ``file_meta`` under ``transfer_syntax_uid``, ready for :func:`write_derived`.

    Raises
    ------
    InvalidInputError
        No fragments, a frame count the source cannot hold, a non-encapsulated syntax or bad options.
    DicomError
        The source has no SOP Class UID.
    """
    frames = [bytes(f) for f in fragments]
    if not frames or any(not f for f in frames):
        raise InvalidInputError("fragments must be one non-empty codestream per frame")
    tsyntax = UID(str(transfer_syntax_uid))
    if not tsyntax.is_valid or not tsyntax.is_encapsulated:
        raise InvalidInputError(
            f"transfer_syntax_uid={str(transfer_syntax_uid)!r} is not an encapsulated transfer syntax (PS3.5 §A.4)"
        )
    if len(frames) > 1 and "NumberOfFrames" not in source_ds:
        raise InvalidInputError(f"{len(frames)} frames given, the source is a single-frame image")
    if not (isinstance(rows, int) and isinstance(columns, int) and 0 < rows < 1 << 16 and 0 < columns < 1 << 16):
        raise InvalidInputError(f"rows={rows!r}, columns={columns!r}: expected integers 1..65535")

    def set_pixels(out: Dataset) -> None:
        set_encapsulated_pixels(out, frames, spec, transfer_syntax_uid=tsyntax, rows=rows, columns=columns,
                                multi_frame="NumberOfFrames" in source_ds)  # fmt: skip

    return _derive(source_ds, set_pixels, spec, ratio=ratio, method=method, description=description, lossy=lossy,
                   new_series_uid=new_series_uid)  # fmt: skip


def _derive(
    source_ds: Dataset,
    set_pixels: Callable[[Dataset], None],
    spec: PixelSpec,
    *,
    ratio: float,
    method: str,
    description: str,
    lossy: bool,
    new_series_uid: str | None,
) -> Dataset:
    """Everything a derived image changes apart from the pixel data (see the module docstring)."""
    where = getattr(source_ds, "filename", None)
    where = where if isinstance(where, (str, os.PathLike)) else None
    if lossy:
        if not np.isfinite(ratio) or ratio <= 0:
            raise InvalidInputError(f"ratio={ratio!r} is invalid, expected a finite number > 0")
        if not isinstance(method, str) or not _CS.fullmatch(method):
            raise InvalidInputError(
                f"method={method!r} is not a valid (0028,2114) value: expected up to 16 of A-Z 0-9 _ space "
                f"(CS, PS3.5 §6.2), e.g. one of {LOSSY_METHODS}"
            )
    if not isinstance(description, str) or len(description) > 1024:
        raise InvalidInputError("description must be a str of at most 1024 characters (ST, PS3.5 §6.2)")
    sop_class = source_ds.get("SOPClassUID")
    if not sop_class:
        raise DicomError("(0008,0016) SOP Class UID is missing: cannot write a DICOM file", path=where)

    names = _fallible_encodings(source_ds)
    implicit = source_ds.original_encoding[0] is True
    with source_values_as_is():  # copied verbatim: see medcodec.dicom._lenient
        out = Dataset()
        for tag in source_ds.keys():
            if tag.group in (0x0002, 0x7FE0) or tag in DROPPED_TAGS:
                continue
            raw = source_ds.get_item(tag) if names is not None or implicit else None
            kept = _as_read(source_ds, raw, names) if isinstance(raw, RawDataElement) and names else None
            if kept is None and implicit and isinstance(raw, RawDataElement):
                kept = _private_as_un(source_ds, tag, raw)
            out.add(kept if kept is not None else copy.deepcopy(source_ds[tag]))
        reference = _source_reference(source_ds, sop_class)

    enhanced = "PerFrameFunctionalGroupsSequence" in out or "SharedFunctionalGroupsSequence" in out
    out.file_meta = FileMetaDataset()
    set_pixels(out)
    source_ts = str(getattr(getattr(source_ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if source_ts != str(out.file_meta.get("TransferSyntaxUID", "")):
        native_icons(out, source_ts)

    set_rescale(out, spec, enhanced, source_signed=int(source_ds.get("PixelRepresentation", 0) or 0) == 1)
    keep_lossy_history(out, source_ds, source_ts)  # lossy or not, a copy of lossy pixels says so
    if lossy:
        mark_lossy(out, ratio=ratio, method=method)
        _append_item(out, "DerivationCodeSequence", _code("113040", "Lossy Compression"))
    _set_derived_type(out)
    if not enhanced and folds_rescale(out, spec.rescale_slope, spec.rescale_intercept):
        description = (description + VOI_FOLD_NOTE)[:1024]
    out.DerivationDescription = description
    if lossy or not enhanced:
        reference_source(out, reference, enhanced)

    uid = generate_uid()
    out.SOPInstanceUID = uid
    if new_series_uid is not None:
        out.SeriesInstanceUID = new_series_uid
        label_derived_series(out, source_ds, ratio=ratio, method=method, lossy=lossy)
    meta = out.file_meta
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid
    stamp_writer(meta)
    return out


#: Who wrote a file medcodec writes (PS3.10 §7.1: the implementation that wrote the file, not the one
#: that made its source; a transcoded file kept its source's "GDCM 2.8.4" until 2026-12-02): a UID of
#: medcodec's own (2.25 from a fixed name-based UUID) and its name and version.
IMPLEMENTATION_CLASS_UID = "2.25.130082511047227150762596747257945628296"
IMPLEMENTATION_VERSION_NAME = f"MEDCODEC {__version__}"[:16]


def stamp_writer(meta: FileMetaDataset) -> None:
    """Set a file meta's Implementation Class UID and Version Name (0002,0012-13) to medcodec's: new
    elements, so one shared with another file meta is never changed in place."""
    meta[0x00020012] = DataElement(0x00020012, "UI", UID(IMPLEMENTATION_CLASS_UID))
    meta[0x00020013] = DataElement(0x00020013, "SH", IMPLEMENTATION_VERSION_NAME)


def native_icons(ds: Dataset, source_ts: str) -> None:
    """Decode the Icon Image Sequence's (0088,0200) encapsulated pixel data to native ones, in place.

    An icon's pixel data are encoded in the data set's transfer syntax; once the main pixel data
    change syntax, an icon left as it was (a JPEG 2000 thumbnail inside a ``.51`` file) makes DCMTK
    and GDCM refuse the whole file (found on a nibabel test file, 2026-12-02). Native icon pixel
    data are read by both inside any syntax, so each encapsulated icon is decoded with pydicom
    (colour as RGB); one that does not decode is dropped (the sequence is Type 3), never kept
    broken. Native icons are left alone."""
    items = ds.get("IconImageSequence")
    if not items:
        return
    kept: list[Dataset] = []
    for item in items:
        element = item["PixelData"] if "PixelData" in item else None
        if element is None or not element.is_undefined_length:
            kept.append(item)
            continue
        try:
            item.file_meta = FileMetaDataset()
            item.file_meta.TransferSyntaxUID = UID(source_ts)
            item.decompress(generate_instance_uid=False)
            kept.append(item)
        except Exception:  # a thumbnail pydicom cannot decode: the image goes on without it
            pass
        finally:
            if hasattr(item, "file_meta"):
                del item.file_meta
    if kept:
        ds.IconImageSequence = kept
    else:
        del ds.IconImageSequence


#: Added to the source's Series Number for a derived series (PS3.3 C.7.3.1: a new series
#: gets its own number), so a PACS lists it apart from the original.
DERIVED_SERIES_NUMBER_OFFSET = 1000


def label_derived_series(out: Dataset, source_ds: Dataset, *, ratio: float, method: str, lossy: bool) -> None:
    """Make a derived series recognisable: Series Number (0020,0011) = the source's + 1000 and a
    Series Description (0008,103E, LO: 64 characters) ending in ``[lossy <method>]`` (or
    ``[lossless <method>]``), so a viewer never shows it as the original.

    The description is the series', the same in each of its files: the file's own ratio is in its
    Lossy Image Compression Ratio and Derivation Description (it was in the description too until
    2026-12-05: 9 descriptions in one 64-slice series, an outside audit). ``ratio`` is kept for
    callers and unused.
    """
    try:
        number = int(source_ds.get("SeriesNumber") or 0)
    except (TypeError, ValueError):
        number = 0
    number += DERIVED_SERIES_NUMBER_OFFSET
    out.SeriesNumber = number if number < 2**31 else DERIVED_SERIES_NUMBER_OFFSET  # IS range
    tail = f" [lossy {method}]" if lossy else f" [lossless {method}]"
    base = str(source_ds.get("SeriesDescription", "") or "").strip()
    out.SeriesDescription = (base[: max(0, 64 - len(tail))] + tail).strip()[:64]


def is_lossy_source(ds: Dataset) -> bool:
    """Whether a source image was already lossy-compressed (:func:`~medcodec.dicom.codestream.stored_pixels_lossy`
    in its stored syntax): Lossy Image Compression (0028,2110) ``"01"`` (PS3.3 C.7.6.1.1.5), a syntax
    that is always lossy (JPEG .50/.51), or, the header silent, its first frame's codestream (a
    JPEG-LS NEAR > 0, an irreversible JPEG 2000 wavelet: pydicom's JPEGLSNearLossless_08 says nothing)."""
    meta = getattr(ds, "file_meta", None)
    uid = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    return stored_pixels_lossy(ds, uid)


def keep_lossy_history(out: Dataset, source_ds: Dataset, source_ts: str) -> bool:
    """Once lossy, always (PS3.3 C.7.6.1.1.5): when the pixel data of ``source_ds`` (read in its
    stored syntax ``source_ts``) are lossy already (:func:`is_lossy_source`'s test), ``out`` (a copy
    of its header, or ``source_ds`` itself) says so before its pixels change and before
    :func:`mark_lossy` appends a new step: (0028,2110) ``"01"``, and the stored step's method and
    ratio (:func:`~medcodec.dicom.codestream.stored_lossy_step`) where the header lacks them (paired by
    :func:`complete_lossy_history`; both, when it records no step at all). Returns whether the source
    is lossy. One place for every writer: a lossless copy of a JPEG-LS NEAR=2 source without the flag
    was labelled lossless (an outside audit, 2026-12-05).

    >>> from pydicom.data import get_testdata_file
    >>> from pydicom import dcmread
    >>> src = dcmread(get_testdata_file("JPEGLSNearLossless_08.dcm"))
    >>> "LossyImageCompression" in src, keep_lossy_history(out := Dataset(), src, src.file_meta.TransferSyntaxUID)
    (False, True)
    >>> out.LossyImageCompression, out.LossyImageCompressionMethod
    ('01', 'ISO_14495_1')
    """
    if not stored_pixels_lossy(source_ds, source_ts):
        return False
    method, ratio = stored_lossy_step(source_ds, source_ts)
    silent = not _values(out, "LossyImageCompressionRatio") and not _values(out, "LossyImageCompressionMethod")
    if silent and method and ratio is not None and np.isfinite(ratio) and ratio > 0:
        mark_lossy(out, ratio=ratio, method=method)
    else:
        complete_lossy_history(out, method=method, ratio=ratio)
        out.LossyImageCompression = "01"
    return True


def warn_if_lossy_source(datasets: Iterable[Dataset], *, what: str) -> bool:
    """Warn (:class:`~medcodec.errors.LossySourceWarning`) once when any source image was already
    lossy: compressing it again adds a second generation of error. Returns whether it warned."""
    import warnings

    if not any(is_lossy_source(ds) for ds in datasets):
        return False
    warnings.warn(
        f"{what}: the source is already lossy-compressed (by its header, syntax or codestream); compressing it again "
        "adds to its error (the earlier ratio and method stay on record)",
        LossySourceWarning,
        stacklevel=3,
    )
    return True


def set_encapsulated_pixels(
    ds: Dataset,
    fragments: list[bytes],
    spec: PixelSpec,
    *,
    transfer_syntax_uid: str,
    rows: int,
    columns: int,
    multi_frame: bool,
) -> None:
    """Put compressed frames into ``ds`` in place: one fragment per frame after a Basic Offset
    Table (PS3.5 §A.4), the transfer syntax in ``ds.file_meta``, and the Image Pixel attributes
    (C.7.6.3) describing the codestream (``spec``: PS3.5 §8.2). Number of Frames is set when
    ``multi_frame`` (and removed otherwise)."""
    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(str(transfer_syntax_uid))
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = spec.photometric_interpretation
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = 8 if spec.bits_stored <= 8 else 16
    ds.BitsStored = spec.bits_stored
    ds.HighBit = spec.bits_stored - 1
    ds.PixelRepresentation = spec.pixel_representation
    _put_fragments(ds, fragments, multi_frame)


def _put_fragments(ds: Dataset, fragments: list[bytes], multi_frame: bool) -> None:
    """Encapsulated Pixel Data (Basic Offset Table, one fragment per frame; PS3.5 §A.4) and Number
    of Frames (set when ``multi_frame``, removed otherwise); other group 7FE0 elements dropped."""
    if multi_frame:
        ds.NumberOfFrames = len(fragments)
    elif "NumberOfFrames" in ds:
        del ds["NumberOfFrames"]
    for tag in [t for t in ds.keys() if t.group == 0x7FE0]:
        del ds[tag]
    ds.PixelData = encapsulate(fragments, has_bot=True)
    element = ds["PixelData"]
    element.VR = "OB"
    element.is_undefined_length = True


#: JPEG baseline (PS3.5 §A.4.1): the syntax of coded colour frames.
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
#: JPEG extended (processes 2 and 4): 12-bit frames, and 8-bit ones on request (SOF1).
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"


def set_colour_jpeg_pixels(
    ds: Dataset, fragments: list[bytes], *, photometric: str, rows: int, columns: int, multi_frame: bool
) -> None:
    """Put baseline JPEG colour frames (8-bit YCbCr, one fragment each after a Basic Offset Table)
    into ``ds`` in place, with the Image Pixel attributes PS3.5 §8.2.1 asks of them: three samples,
    Planar Configuration 0, ``photometric`` ``YBR_FULL`` (no chroma subsampling) or
    ``YBR_FULL_422``, 8 bits unsigned; the transfer syntax JPEG baseline (.50)."""
    if photometric not in ("YBR_FULL", "YBR_FULL_422"):
        raise InvalidInputError(f"photometric={photometric!r}: JPEG colour frames are YBR_FULL or YBR_FULL_422")
    set_colour_pixels(ds, fragments, transfer_syntax=JPEG_BASELINE, photometric=photometric, rows=rows,
                      columns=columns, multi_frame=multi_frame)  # fmt: skip


def set_colour_pixels(
    ds: Dataset,
    fragments: list[bytes],
    *,
    transfer_syntax: str,
    photometric: str,
    rows: int,
    columns: int,
    multi_frame: bool,
) -> None:
    """Put 8-bit colour frames coded in ``transfer_syntax`` (one fragment each after a Basic Offset
    Table) into ``ds`` in place: three samples, Planar Configuration 0, ``photometric`` as the
    codestreams hold them (``YBR_FULL`` / ``YBR_FULL_422`` for baseline JPEG, ``YBR_RCT`` for JPEG
    2000 / HTJ2K with the reversible colour transform, ``RGB``: PS3.5 §8.2), 8 bits unsigned."""
    if photometric not in ("YBR_FULL", "YBR_FULL_422", "YBR_RCT", "RGB"):
        raise InvalidInputError(f"photometric={photometric!r}: not one of a coded colour frame's")
    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = photometric
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    _put_fragments(ds, fragments, multi_frame)


def mark_lossy(ds: Dataset, *, ratio: float, method: str) -> None:
    """Lossy Image Compression (0028,2110) = ``"01"``; ``ratio`` and ``method`` *appended* to
    (0028,2112) and (0028,2114), so earlier lossy steps stay on record (PS3.3 C.7.6.1.1.5).

    Raises
    ------
    InvalidInputError
        ``ratio`` not finite and > 0, or ``method`` not a valid CS value.
    """
    if not np.isfinite(ratio) or ratio <= 0:
        raise InvalidInputError(f"ratio={ratio!r} is invalid, expected a finite number > 0")
    if not isinstance(method, str) or not _CS.fullmatch(method):
        raise InvalidInputError(
            f"method={method!r} is not a valid (0028,2114) value: expected up to 16 of A-Z 0-9 _ space "
            f"(CS, PS3.5 §6.2), e.g. one of {LOSSY_METHODS}"
        )
    methods = _values(ds, "LossyImageCompressionMethod")
    ratios = _values(ds, "LossyImageCompressionRatio")
    if len(methods) < len(ratios):
        # earlier steps whose method nobody recorded (and no syntax shows: complete_lossy_history
        # fills what one does): an empty value each, so that this step's method pairs with this
        # step's ratio, not an earlier one's (an outside audit, 2026-12-03)
        methods = [*methods, *[""] * (len(ratios) - len(methods))]
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = lossy_ratios(ratios, ratio)
    ds.LossyImageCompressionMethod = [*methods, method]


def complete_lossy_history(ds: Dataset, *, method: str | None, ratio: float | None) -> None:
    """Pair (0028,2112) and (0028,2114) in place before :func:`mark_lossy` appends one more step:
    each ratio has its method, in order (PS3.3 C.7.6.1.1.5). When one of the two lacks the value
    of the step the *stored* pixel data are (writers that set the ratio but not the method, or
    the reverse: pydicom's RG1_J2KI, SC_rgb_jpeg_app14_dcmd), that value is added from what the
    stored data show: ``method`` from its transfer syntax, ``ratio`` from its compressed size.
    Lists that differ otherwise, or a value not known (``None``), are left as they are.

    >>> ds = Dataset(); ds.LossyImageCompressionRatio = "10"
    >>> complete_lossy_history(ds, method="ISO_15444_1", ratio=9.7)
    >>> ds.LossyImageCompressionMethod
    'ISO_15444_1'
    """
    ratios = _values(ds, "LossyImageCompressionRatio")
    methods = _values(ds, "LossyImageCompressionMethod")
    if len(methods) == len(ratios) - 1 and method:
        ds.LossyImageCompressionMethod = [*methods, method]
    elif len(ratios) == len(methods) - 1 and ratio is not None and np.isfinite(ratio) and ratio > 0:
        ds.LossyImageCompressionRatio = lossy_ratios(ratios, ratio)


def lossy_ratios(earlier: list[Any], ratio: float) -> list[Any]:
    """(0028,2112)'s values after one more lossy step at ``ratio`` (:func:`mark_lossy`)."""
    return [*earlier, format_number_as_ds(round(float(ratio), 2))]


def write_derived(
    path: str | os.PathLike[str],
    dataset: Dataset,
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
) -> Path:
    """Write ``dataset`` as a DICOM file (PS3.10) at ``path``, atomically.

    Parameters
    ----------
    path
        Destination.
    dataset
        Usually from :func:`derive_dataset`; must have ``file_meta``.
    inputs
        Files the output must never replace (the originals).
    overwrite
        Replace an existing file that is not one of ``inputs``.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    InvalidInputError
        ``path`` is one of ``inputs``, or exists and ``overwrite`` is false.
    DicomError
        pydicom cannot encode the dataset.
    """
    out = check_output_path(path, inputs=inputs, overwrite=overwrite)
    return atomic_write(out, encode_file(dataset, path=out))


def encode_file(dataset: Dataset, *, path: str | os.PathLike[str] | None = None) -> bytes:
    """The bytes of ``dataset`` as a DICOM file (PS3.10: preamble, ``DICM``, file meta).

    ``path`` is only quoted in errors. :func:`write_derived` is this plus an atomic write;
    use it directly to check the bytes (e.g. decode them) before writing.

    Raises
    ------
    DicomError
        No file meta Transfer Syntax UID, or pydicom cannot encode the dataset.
    """
    if getattr(dataset, "file_meta", None) is None or "TransferSyntaxUID" not in dataset.file_meta:
        raise DicomError("dataset has no file meta Transfer Syntax UID (0002,0010): use derive_dataset", path=path)
    target = copy.copy(dataset)  # the writer's stamp goes on a copy of the file meta: the caller's stays
    target.file_meta = FileMetaDataset()
    target.file_meta._dict.update(dataset.file_meta._dict)  # elements shared, replaced (not changed) below
    stamp_writer(target.file_meta)
    buffer = io.BytesIO()
    try:
        keep_text_bytes(target)
        dcmwrite(buffer, target, enforce_file_format=True)
    except Exception as exc:  # pydicom raises many kinds on invalid values
        raise DicomError(f"cannot encode DICOM: {type(exc).__name__}: {exc}", path=path) from exc
    return buffer.getvalue()


#: VRs whose values go through the Specific Character Set (PS3.5 §6.1.2.3), where a decoding
#: can fail. AE / CS / UI and the number strings are the default repertoire only.
_CHARSET_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
_COMPLETE: dict[tuple[str, ...], bool] = {}


#: Longest value, in bytes without padding, of each length-limited text VR (PS3.5 Table 6.2-1), and
#: the word size of each binary VR: what a private element read with implicit VR must fit to be
#: written under the VR pydicom's private dictionary gives it (:func:`private_value_fits`).
_MAX_TEXT = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64, "SH": 16, "TM": 14,
             "UI": 64, "ST": 1024, "LT": 10240}  # fmt: skip
_WORD = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "AT": 4, "FD": 8, "SV": 8, "UV": 8}


def private_value_fits(vr: str, value: bytes | None) -> bool:
    """Whether ``value``, the bytes of a private element read with implicit VR, is a valid value of
    ``vr``, the VR pydicom's private dictionary gives it: each value within the VR's length (text),
    a whole number of words (binary). A Siemens (0051,100E) of 22 characters is no SH (at most
    16): written so, it was an invalid SH in every explicit VR file medcodec wrote from such a source
    (an outside audit, 2026-12-04); DCMTK and GDCM write it as UN, and so does medcodec now
    (:func:`untyped_private_as_un`)."""
    if not value:
        return True
    size = _WORD.get(vr)
    if size is not None:
        return len(value) % size == 0
    limit = _MAX_TEXT.get(vr)
    if limit is None:
        return True
    parts = [value] if vr in ("ST", "LT") else value.split(b"\\")
    return all(len(part.strip(b" \x00")) <= limit for part in parts)


def private_vr(ds: Dataset, tag: int) -> str:
    """The VR pydicom gives a private element of ``ds`` read with implicit VR (its creator's entry in
    the private dictionary, else UN; a private creator is LO), as ``pydicom.hooks`` finds it."""
    from pydicom.datadict import private_dictionary_VR

    element = tag & 0xFFFF
    if 0x10 <= element <= 0xFF:
        return "LO"
    if element < 0x1000:
        return "UN"
    creator = ds._dict.get(BaseTag(tag & 0xFFFF0000 | element >> 8))
    if creator is None:
        return "UN"
    name = creator.value
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    try:
        return str(private_dictionary_VR(tag, str(name).rstrip(" \x00")))
    except (KeyError, TypeError):
        return "UN"


def untyped_private_as_un(ds: Dataset) -> None:
    """The top-level private elements of a data set read with implicit VR whose bytes are no valid value
    of the VR the private dictionary gives them (:func:`private_value_fits`) become UN, their bytes as
    read (PS3.5 §6.2.2: a VR that cannot be known is UN), so that an explicit VR file written from it
    holds no invalid value it did not have. Items of sequences are left as pydicom converts them."""
    if ds.original_encoding[0] is not True:
        return
    for tag, elem in list(ds._dict.items()):
        if isinstance(elem, RawDataElement):
            un = _private_as_un(ds, tag, elem)
            if un is not None:
                ds._dict[tag] = un


def _private_as_un(ds: Dataset, tag: int, raw: RawDataElement) -> DataElement | None:
    """``raw`` (of ``ds``, read with implicit VR) as a UN element of its bytes when it is a private
    element whose bytes are no valid value of its dictionary VR (:func:`private_value_fits`), else None."""
    if raw.VR is not None or not tag >> 16 & 1 or tag & 0xFFFF < 0x1000:
        return None
    vr = private_vr(ds, tag)
    return (
        DataElement(tag, "UN", raw.value) if vr not in ("UN", "SQ") and not private_value_fits(vr, raw.value) else None
    )


def keep_text_bytes(ds: Dataset) -> None:
    """Keep, as the bytes they were read with, the text elements of an implicit VR data set that
    are not valid in their Specific Character Set (Latin-1 bytes under ``ISO_IR 192``).

    pydicom writes a data set read with implicit VR into an explicit VR file by converting every
    element (it needs the VRs), so such a value was decoded with replacement characters and
    written as U+FFFD, in derived files whose other text stays the source's (an outside audit,
    2026-12-02; explicit VR originals keep their raw elements and never had this). Each such
    element becomes a :class:`~pydicom.dataelem.DataElement` of its dictionary VR whose value is
    its original bytes, which pydicom's writer puts out unchanged (split at backslashes, PN
    included). Valid text is left to pydicom (the same bytes). Only character sets in which a
    decoding can fail are walked (not the default repertoire, which pydicom reads as Latin-1, nor
    ``ISO_IR 100``), and in them sequences whose bytes are not plain ASCII. (An item declaring a
    character set of its own under a Latin-1 data set is not walked.) :func:`derive_dataset` and
    :func:`derive_encapsulated` copy such elements the same way. Private elements whose bytes do not
    fit their dictionary VR become UN first (:func:`untyped_private_as_un`).
    """
    untyped_private_as_un(ds)
    names = _fallible_encodings(ds)
    if names is not None:
        _keep_in(ds, names)


def _fallible_encodings(ds: Dataset) -> tuple[str, ...] | None:
    """The Python encodings of an implicit VR data set whose text a decoding may have replaced, else
    ``None`` (explicit VR: raw elements are copied as read; a changed character set: pydicom
    re-encodes everything anyway)."""
    if ds.original_encoding[0] is not True or ds.original_character_set != ds._character_set:
        return None
    names = tuple(convert_encodings(ds.original_character_set))
    return names if _can_fail(names) else None


def _keep_in(ds: Dataset, names: tuple[str, ...]) -> None:
    own = ds._dict.get(BaseTag(0x00080005))  # an item may declare its own character set
    if own is not None and own.value:
        with source_values_as_is():
            names = tuple(convert_encodings(ds[0x00080005].value))
        if not _can_fail(names):
            return
    for tag, elem in list(ds._dict.items()):
        if isinstance(elem, RawDataElement):
            kept = _as_read(ds, elem, names)
            if kept is not None:
                ds._dict[tag] = kept
        elif elem.VR == "SQ" and elem.value:
            for item in elem.value:
                _keep_in(item, names)


def _as_read(ds: Dataset, elem: RawDataElement, names: tuple[str, ...]) -> DataElement | None:
    """``elem`` (raw, read with implicit VR) as a new element that keeps text invalid in ``names`` as
    its bytes (a sequence: converted, its items walked), or ``None`` when pydicom's conversion loses
    nothing."""
    value = elem.value
    if elem.VR is not None or not value or value.isascii():
        return None
    with source_values_as_is():
        converted = convert_raw_data_element(elem, encoding=list(names), ds=ds)
    if converted.VR == "SQ":
        for item in converted.value or ():
            _keep_in(item, names)
        return converted
    if converted.VR in _CHARSET_TEXT_VRS and _replaced(str(converted.value), value):
        return DataElement(elem.tag, converted.VR, value)
    return None


def _replaced(text: str, value: bytes) -> bool:
    """Whether decoding ``value`` gave ``text`` replacement characters its bytes did not hold."""
    return "\ufffd" in text and b"\xef\xbf\xbd" not in value


def _can_fail(names: tuple[str, ...]) -> bool:
    """Whether decoding some bytes in these (Python) encodings can fail: anything but one complete
    single-byte code such as Latin-1."""
    hit = _COMPLETE.get(names)
    if hit is None:
        try:
            hit = len(names) == 1 and len(bytes(range(256)).decode(names[0])) == 256
        except (UnicodeDecodeError, LookupError):
            hit = False
        _COMPLETE[names] = hit
    return not hit


# --------------------------------------------------------------------------- helpers


def _check_pixels(pixels: Any, spec: PixelSpec) -> NDArray[np.integer]:
    arr = np.asarray(pixels)
    if arr.dtype.kind not in "ui":
        raise InvalidInputError(f"pixels have dtype {arr.dtype}, expected integers")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3 or 0 in arr.shape:
        raise InvalidInputError(
            f"pixels have shape {np.asarray(pixels).shape}, expected (rows, cols) or (frames, rows, cols)"
        )
    lo, hi = int(arr.min()), int(arr.max())
    if lo < spec.min_value or hi > spec.max_value:
        raise InvalidInputError(
            f"pixel values {lo}..{hi} do not fit bits_stored={spec.bits_stored} "
            f"{'signed' if spec.signed else 'unsigned'} ({spec.min_value}..{spec.max_value})"
        )
    return np.ascontiguousarray(arr.astype(storage_dtype(spec.bits_stored, spec.signed), copy=False))


def _values(ds: Dataset, keyword: str) -> list[Any]:
    """Existing values of a possibly multi-valued attribute, as a list (empty when absent)."""
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _source_reference(source_ds: Dataset, sop_class: Any) -> Dataset | None:
    """Source Image Sequence item: the original, purpose "Uncompressed predecessor"."""
    sop_instance = source_ds.get("SOPInstanceUID")
    if not sop_instance:
        return None
    reference = Dataset()
    reference.ReferencedSOPClassUID = sop_class
    reference.ReferencedSOPInstanceUID = sop_instance
    reference.PurposeOfReferenceCodeSequence = Sequence([_code("121320", "Uncompressed predecessor")])
    return reference


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def reference_source(ds: Dataset, reference: Dataset | None, enhanced: bool) -> None:
    """Point a derived (lossy) image ``ds`` at its source, whose Source Image Sequence item is
    ``reference`` (:func:`_source_reference`; ``None``: nothing to point at), before ``ds`` gets
    its own Series Instance UID: its study and series UIDs are still the source's.

    A single-frame IOD gets a top-level Source Image Sequence item. An enhanced (functional group)
    IOD gets the Derivation Image functional group (C.7.6.16.2.6: Derivation Code 113040 "Lossy
    Compression" and the Source Image Sequence, no frame number: every frame) in the shared groups,
    or in every per-frame item when the source keeps that group per frame (a group is in one or the
    other, C.7.6.16), and the Source Image Evidence Sequence its image module then requires (e.g.
    C.8.13.1, C.8.15.2: the Hierarchical SOP Instance Reference Macro of that source). Until
    2026-12-04 enhanced copies named no source at all (an outside audit)."""
    if reference is None:
        return
    if not enhanced:
        _append_item(ds, "SourceImageSequence", reference)
        return
    derivation = Dataset()
    derivation.DerivationCodeSequence = Sequence([_code("113040", "Lossy Compression")])
    derivation.SourceImageSequence = Sequence([reference])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if any("DerivationImageSequence" in group for group in per_frame):
        for group in per_frame:
            _append_item(group, "DerivationImageSequence", copy.deepcopy(derivation))
    else:
        if not ds.get("SharedFunctionalGroupsSequence"):
            ds.SharedFunctionalGroupsSequence = Sequence([Dataset()])
        _append_item(ds.SharedFunctionalGroupsSequence[0], "DerivationImageSequence", derivation)
    sop = Dataset()
    sop.ReferencedSOPClassUID = reference.ReferencedSOPClassUID
    sop.ReferencedSOPInstanceUID = reference.ReferencedSOPInstanceUID
    study_uid, series_uid = ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID")
    studies = ds.get("SourceImageEvidenceSequence") or Sequence()
    study = next((item for item in studies if item.get("StudyInstanceUID") == study_uid), None)
    if study is None:
        study = Dataset()
        study.StudyInstanceUID = study_uid
        studies.append(study)
    series = next(
        (item for item in study.get("ReferencedSeriesSequence") or [] if item.get("SeriesInstanceUID") == series_uid),
        None,
    )
    if series is None:
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        _append_item(study, "ReferencedSeriesSequence", series)
    _append_item(series, "ReferencedSOPSequence", sop)
    ds.SourceImageEvidenceSequence = studies


def _append_item(ds: Dataset, keyword: str, item: Dataset) -> None:
    existing = ds.get(keyword)
    setattr(ds, keyword, Sequence([*(existing or []), item]))


def _set_derived_type(ds: Dataset) -> None:
    """Image Type value 1 -> DERIVED; same for Frame Type in enhanced functional groups."""
    ds.ImageType = _derived(_values(ds, "ImageType"))
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in ds.get(keyword) or []:
            for element in group:
                if element.VR == "SQ" and element.keyword.endswith("FrameTypeSequence"):
                    for item in element.value:
                        if "FrameType" in item:
                            item.FrameType = _derived(_values(item, "FrameType"))


def _derived(values: list[Any]) -> list[str]:
    values = [str(v) for v in values] or ["DERIVED", "SECONDARY"]
    values[0] = "DERIVED"
    if len(values) == 1:
        values.append("SECONDARY")
    return values


#: What a Derivation Description adds when :func:`set_rescale` folded the mapping into the VOI.
VOI_FOLD_NOTE = (
    " Rescale Slope / Intercept 1 / 0, as the DX Image Module requires: the windows and VOI LUTs are "
    "re-expressed in the coded values, so the image displays as the original."
)


def folds_rescale(ds: Dataset, slope: float, intercept: float) -> bool:
    """Whether :func:`set_rescale` puts the rescale ``slope`` / ``intercept`` into the VOI of ``ds``."""
    return rescale_must_be_identity(ds) and (float(slope), float(intercept)) != (1.0, 0.0)


def fold_rescale_into_voi(
    ds: Dataset, slope: float, intercept: float, *, signed: bool, bits_stored: int, source_signed: bool | None = None
) -> None:
    """Re-express the top-level VOI attributes of ``ds`` in the coded values ``x'`` whose output
    value, before, was ``x = slope x' + intercept``, so that the rescale can be 1 / 0 and every
    pixel still displays as it did (the DX Image Module fixes the rescale: an outside audit,
    2026-12-04, found 12-bit JPEG copies of 15- and 16-bit DX and mammograms with slopes of 4-17,
    which dciodvfy rejects and a reader that assumes identity shows nearly black).

    * Window Center / Width (every value) by the VOI LUT Function (PS3.3 C.11.2.1.2, C.11.2.1.3):
      LINEAR (the default) ``c' - 1/2 = (c - 1/2 - intercept) / slope`` and ``w' - 1 = (w - 1) /
      slope``; LINEAR_EXACT and SIGMOID ``c' = (c - intercept) / slope``, ``w' = w / slope``.
    * VOI LUT Sequence items (C.11.2.1.1): the LUT re-sampled at the coded values,
      ``LUT'[x' - first'] = LUT[round(slope x' + intercept) - first]`` (clipped to the LUT's
      ends), over the coded values from the one at or below the input of the LUT's first entry to
      the one at or above that of its last (within the coded range), the descriptor's first value
      mapped; the output bits and LUT data values stay.

    ``signed`` / ``bits_stored``: the coded values'; ``source_signed``: whether the source's pixels
    were signed, which decides how a LUT's first value mapped is read (C.11.2.1.1: SS for signed
    pixels; ``ds`` already describes the coded ones; an outside re-check, 2026-12-04: a signed DX's
    LUT collapsed to one entry). The caller writes the rescale 1 / 0 (:func:`set_rescale`).
    Nothing else of the VOI depends on the stored values (Presentation LUT Shape, MONOCHROME1
    stay as they are).
    """
    function = str(ds.get("VOILUTFunction", "") or "LINEAR").strip().upper()
    centers, widths = _values(ds, "WindowCenter"), _values(ds, "WindowWidth")
    if centers and widths:
        try:
            c = [float(v) for v in centers]
            w = [float(v) for v in widths]
        except (TypeError, ValueError):
            c = w = []  # unreadable windows: dropped below rather than left in the wrong units
        if function == "LINEAR":
            c = [(v - 0.5 - intercept) / slope + 0.5 for v in c]
            w = [max((v - 1.0) / abs(slope) + 1.0, 1.0) for v in w]
        else:
            c = [(v - intercept) / slope for v in c]
            w = [v / abs(slope) for v in w]
        if c and w:

            def ds_values(values: list[float]) -> Any:
                out = [format_number_as_ds(round(v, 4)) for v in values]
                return out if len(out) > 1 else out[0]

            ds.WindowCenter, ds.WindowWidth = ds_values(c), ds_values(w)
        else:
            for keyword in ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation"):
                if keyword in ds:
                    del ds[keyword]
    lo, hi = (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1) if signed else (0, (1 << bits_stored) - 1)
    for item in ds.get("VOILUTSequence") or []:
        _fold_voi_lut_item(item, slope, intercept, lo, hi, ds, source_signed)


def _fold_voi_lut_item(
    item: Dataset, slope: float, intercept: float, lo: int, hi: int, ds: Dataset, source_signed: bool | None
) -> None:
    """One VOI LUT Sequence item re-sampled at the coded values (:func:`fold_rescale_into_voi`)."""
    table = voi_lut_table(item, ds, signed=source_signed)
    if table is None:
        return  # a malformed item: left as it was (readers reject it as they did the original's)
    first, lut, bits = table
    n = lut.size
    data = item["LUTData"]
    a, b = sorted(((first - intercept) / slope, (first + n - 1 - intercept) / slope))
    # from the last coded value below the LUT's first entry to the first above its last: those two
    # clip to the LUT's ends, as every value beyond them does (C.11.2.1.1), so each coded value shows
    # what its output value showed
    new_first, new_last = max(int(np.floor(a)), lo), min(int(np.ceil(b)), hi)
    if new_last < new_first:  # the LUT lies wholly outside the coded range: its nearest end
        new_first = new_last = min(max(round(a), lo), hi)
    x = np.arange(new_first, new_last + 1, dtype=np.float64)
    index = np.clip(np.rint(slope * x + intercept).astype(np.int64) - first, 0, n - 1)
    new = lut[index].astype(np.uint16)
    item.LUTDescriptor = [len(new) if len(new) < 65536 else 0, new_first if new_first >= 0 else new_first + 65536, bits]
    if data.VR == "OW" or isinstance(data.value, (bytes, bytearray)):
        item["LUTData"].VR = "OW"
        item.LUTData = new.astype("<u2").tobytes()
    else:
        item.LUTData = [int(v) for v in new] if len(new) > 1 else int(new[0])


def set_rescale(ds: Dataset, spec: PixelSpec, enhanced: bool, *, source_signed: bool | None = None) -> None:
    """Rescale Slope/Intercept (C.11.1) from ``spec``: at top level, or in the Pixel Value
    Transformation functional groups of enhanced objects (C.7.6.16.2.9), whichever ``ds`` uses.
    An IOD that fixes the rescale at 1 / 0 (:func:`rescale_must_be_identity`: DX, mammography,
    intra-oral) keeps it there, and ``spec``'s rescale goes into its VOI attributes instead
    (:func:`fold_rescale_into_voi`)."""
    if not enhanced and folds_rescale(ds, spec.rescale_slope, spec.rescale_intercept):
        fold_rescale_into_voi(ds, float(spec.rescale_slope), float(spec.rescale_intercept), signed=spec.signed,
                              source_signed=source_signed,
                              bits_stored=spec.bits_stored)  # fmt: skip
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "0", "US"
        return
    slope = format_number_as_ds(float(spec.rescale_slope))
    intercept = format_number_as_ds(float(spec.rescale_intercept))
    in_groups = False
    if enhanced:
        for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
            for group in ds.get(keyword) or []:
                for item in group.get("PixelValueTransformationSequence") or []:
                    item.RescaleSlope, item.RescaleIntercept = slope, intercept
                    if spec.rescale_type and "RescaleType" in item:
                        item.RescaleType = spec.rescale_type
                    in_groups = True
    identity = spec.rescale_slope == 1.0 and spec.rescale_intercept == 0.0
    if not in_groups and ("RescaleSlope" in ds or "RescaleIntercept" in ds or not identity):
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        if spec.rescale_type and "RescaleType" in ds:
            ds.RescaleType = spec.rescale_type
        elif "RescaleType" not in ds and str(ds.get("Modality", "")).upper() != "CT":
            # Modality LUT module (C.11.1): Rescale Type is 1C with a Rescale Intercept; CT means HU
            ds.RescaleType = spec.rescale_type or "US"  # "US": unspecified (C.11.1.1.2)


# Old private names (kept for callers on other branches).
_set_rescale = set_rescale
_DROPPED = DROPPED_TAGS
