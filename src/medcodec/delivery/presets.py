"""Presets: what a study is delivered as, and :meth:`Preset.encode_instance`, the ONE function that
both pre-computation and live (on-the-fly) delivery call for one instance.

==============  ===========================  ==========================================================
preset          transfer syntax              operating point
==============  ===========================  ==========================================================
``original``    as stored                    the original bytes, always
``lossless``    HTJ2K lossless (.201)        reversible 5/3 (OpenJPH), bit-exact; same SOP Instance UID
``near-``       JPEG-LS near-lossless (.81)  CharLS, NEAR = 2: every stored value within 2 of the
``lossless``                                 original (checked); lossy attributes; new UIDs
``diagnostic``  JPEG 12-bit (.51) / 8-bit    medcodec JPEG, a FIXED quality per modality (table below),
                (.50), medcodec's encoder    one value mapping per series; lossy attributes; new UIDs
``preview``     same as diagnostic           ~40:1; labelled NOT FOR DIAGNOSIS in Derivation
                                             Description, Series Description and Image Comments
==============  ===========================  ==========================================================

Operating points (quality of medcodec's JPEG; ratios measured on ``../shared/data`` with
``python benchmarks``-free code in ``docs/delivery.md``, whole series, every 2nd slice):

==================  ===========  ==========================  =========  ===========================
class               diagnostic   measured ratio              preview    measured ratio
==================  ===========  ==========================  =========  ===========================
CT body             56           8.1:1 chest CT 5 mm         24         39.2:1 chest CT
CT neuro (head)     92           12.7:1 head CT 1 mm         55         42.1:1 head CT
MR                  68           13.3:1 head MR T1           41         37.9:1 head MR
CR / DX             74           15, 7.1, 4.3:1 (CR, CR, DX) 41         109, 37, 18:1 (geo. mean 41)
MG (mammography)    lossless     HTJ2K .201, bit-exact       41         (as CR)
PET, NM, RT Dose    lossless     HTJ2K .201, bit-exact       lossless   (IOD: Bits Stored; PET: all presets)
anything else       90                                       40
==================  ===========  ==========================  =========  ===========================

The qualities were re-chosen (2026-11-30) when the JPEG default became the texture-aware
quantizer with tables trained per modality and one content range per series (issue 11): at the
old qualities the same series came out 25-45 % larger; the ratios are the targets, so the
qualities moved to keep them.

Why (published guidance, README "Choosing a quality", DESIGN §6): CAR 2008 allows 15:1 for
CT body, 12:1 for CT neuro, 24:1 for MR and 30:1 for CR/DX; the German consensus is stricter
(8:1 CT body, 5:1 CT brain). We take the stricter figure where it leaves the preset useful
(CT body ~8:1), CAR's 12:1 for CT neuro (the German 5:1 is within 30 % of lossless size on
head CT), and half of CAR for MR (~12:1) and CR/DX (~15:1). Quality fixes the error relative
to the data's range; the ratio follows the image noise, so a noisy series compresses less
than these figures and a quiet one more, but the error stays that of the quality. The point
is fixed per class (no rate search per file), so live encoding of one instance needs nothing
but its header and the series mapping. The class is read from the header: Modality, and for
CT "neuro" when Body Part Examined, Series/Study Description or Protocol Name say HEAD, BRAIN,
SKULL or NEURO, or when the reconstruction field is at most 280 mm (:func:`image_class`: a head
CT described only as "5/5mm Plain" was coded at the body point before).

Mammography (Modality MG: digital mammography, breast tomosynthesis) is not coded lossy under
``diagnostic``: it gets the ``lossless`` preset's HTJ2K, bit-exact. In the United States the FDA's
MQSA policy does not accept lossy-compressed mammograms for final interpretation (they may serve
as priors), and no guidance we follow gives a ratio for it; ``preview`` still codes it at the CR
point, labelled not for diagnosis. (Until 2026-12-01 MG was coded at the CR point, ~15:1.)

PET, NM and RT Dose (2026-12-04): their IODs fix Bits Stored (PET 16, NM Image Storage 8 or 16,
RT Dose 16 or 32, :mod:`medcodec.dicom.iod`), which a 12-bit JPEG copy cannot keep (dciodvfy rejects
it), so every JPEG point becomes HTJ2K lossless for them (:meth:`Preset.operating_point`); JPEG-LS
near-lossless keeps the depth and stays, except for PET, whose IOD also fixes the rescale intercept
at 0 (a signed PET would be shifted) and which is read quantitatively (SUV), for which no guidance
we follow gives a ratio: PET is HTJ2K lossless under every preset.

Near-lossless (2026-12-02; DESIGN §6 lists it, the issues did not ask for it): JPEG-LS
near-lossless (.81) by CharLS with ``NEAR`` = :data:`NEAR_LOSSLESS_ERROR` = 2 stored units (2 HU on
a CT of slope 1, well below CT image noise; 2 levels of 1024-65536 on MR and radiographs), for
readers who want a bound rather than a quality. It is the only standard syntax here whose error
bound is part of the codestream, so any JPEG-LS decoder keeps it. The series mapping is an offset
at most (16-bit unsigned samples, no clipping, no scale): JPEG-LS has no sign, and a NEAR error
at the top of a two's complement range would wrap to its bottom. Every pre-computed file is
decoded and compared voxel by voxel, padding included; a file over the bound would be a bug and
is replaced by the original (with the reason). Mammography gets HTJ2K lossless as under
``diagnostic``; colour is delivered as stored. Not pre-computed by default
(``--presets near-lossless``); WADO-RS gives it for ``transfer-syntax=1.2.840.10008.1.2.4.81``.
File ratios (original file / preset file, every 4th slice of ``../shared/data``, 2026-12-02):
chest CT lossless 2.11, near-lossless 3.22, diagnostic 7.82:1; head CT 4.02, 7.73, 7.47:1 (this
quiet phantom is the one series where the bound is also the smaller file); head MR 2.16, 3.14,
4.91:1. Maximum error 2 on every file.

Lossless: HTJ2K (.201) rather than JPEG-LS (.80): on the two CT series JPEG-LS was 7-8 %
smaller (2.29 vs 2.12:1 chest, 4.38 vs 4.06:1 head) but HTJ2K encoded 1.6-2.6x and decoded
3-4x faster (CharLS 63-66 MB/s encode, OpenJPH 104-170 MB/s), and it codes signed samples as
they are (JPEG-LS has no sign), so the stored values are bit-exact for every image.

Colour (8-bit RGB or YCbCr, three samples: ultrasound, photographs, secondary captures) under
``diagnostic`` and ``preview``: baseline JPEG (.50) by libjpeg-turbo (imagecodecs), RGB as
YCbCr with the chroma halved horizontally, Photometric Interpretation ``YBR_FULL_422``, Planar
Configuration 0 (PS3.5 §8.2.1), optimised Huffman tables; libjpeg quality 95 (diagnostic: 8.8:1,
36.2 dB, on the shared colour US; 14.8:1 on the YBR one) and 40 (preview: 27-41:1). Why 4:2:2
and not full-resolution chroma (which gives ~4 dB more at the same size on colour edges): the US
Image IOD admits ``YBR_FULL_422`` for JPEG and not ``YBR_FULL`` (dicom3tools' dciodvfy reports
it, with Planar Configuration 0), and most colour objects a PACS sends are ultrasound. The
error (peak 255, max error in 8-bit RGB values) is that of libjpeg-turbo's decode of every frame;
pydicom's decode of the written file's first frame must agree within 40 dB (decoders upsample the
chroma their own ways: they differ by up to ~16 at colour edges, ~55 dB). A tiny image whose JPEG
would be larger than its pixels stays as stored. Under ``lossless`` (since 2026-12-02; it kept colour
as stored before) colour is coded losslessly (:meth:`Preset._colour_lossless`): HTJ2K .201 by
default, JPEG 2000 .90 or JPEG-LS .80 when a client asks for them (.91 / .203: the .90 / .201
codestream), reversible colour transform where the codec has one (Photometric Interpretation
``YBR_RCT``, else ``RGB``), Planar Configuration 0, same SOP Instance UID, decoded back and compared
when measured; lossless pixels stored as YCbCr stay as stored (as RGB they would round). On the
shared RGB ultrasound (921,600 bytes of pixels): HTJ2K 167,535 bytes (5.5:1), JPEG 2000 152,322
(6.1:1), JPEG-LS 261,771 (3.5:1). RLE and HTJ2K RPCL (.5, .202) are not used for
colour: a client asking for them gets 406.

What a preset cannot compress passes through unchanged and is listed as passthrough in the
manifest: palette colour, more than 8 bits per colour sample, SR, dose reports, presentation
states, images with a Modality LUT Sequence or per-frame rescale (the reason is kept). The
catalog's ``compressible`` flag means "coded by the grayscale pipeline with a series mapping";
colour records are not, and are coded all the same (:func:`is_colour_record`).

Already lossy: an original whose pixel data are stored lossy-compressed
(:func:`medcodec.registry.pixel_data_is_lossy` and a compressed syntax: a JPEG ultrasound, a
lossy JPEG 2000 series) passes through ``lossless`` (a lossless copy of lossy pixels is only
larger) and ``diagnostic`` (a second lossy generation adds error), labelled ``lossy`` with the
reason; ``preview`` codes it when its file comes out smaller. ``recode=True`` (a WADO-RS
client asking for a syntax) codes it all the same. An original stored uncompressed whose header
says it was lossy once is coded, its earlier ratios kept. Likewise any preset delivers an
original as it is when its file is no larger than the preset's: smaller and exact (a
losslessly compressed or Deflated flat synthetic image, a 16x16 one whose JPEG and lossy
attributes outweigh its pixels, a JPEG 2000 lossless radiograph HTJ2K would code 3 % larger).

The series mapping (:class:`medcodec.dicom.SeriesMapping`) comes from the value statistics
the catalog holds for the series (:func:`series_mapping`: min/max/tissue range gathered at
ingest), so it is the same for pre-computed and live files of a series. Without one, an
instance is mapped on its own (still correct HU, but a series would not share one mapping).
"""

from __future__ import annotations

import io
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom import dcmread, dcmwrite
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.pixels import pixel_array
from pydicom.uid import UID

from ..dicom import SeriesMapping, SeriesStats, get_syntax, pixel_spec_from_dataset, plan_series_mapping
from ..dicom._lenient import source_values_as_is
from ..dicom.codestream import stored_pixels_lossy
from ..dicom.compress import compress, dataset_frames
from ..dicom.image import read_deflated
from ..dicom.iod import bits_stored_allowed, quantitative
from ..dicom.limits import check_dataset_decoded_size
from ..dicom.mapping import dataset_padding, dataset_stats
from ..dicom.pixel_spec import with_stored_syntax
from ..dicom.write import (
    VOI_FOLD_NOTE,
    _append_item,
    _code,
    _set_derived_type,
    _source_reference,
    _values,
    encode_file,
    folds_rescale,
    keep_lossy_history,
    mark_lossy,
    reference_source,
    set_colour_jpeg_pixels,
    set_colour_pixels,
)
from ..errors import (
    CodecError,
    DicomError,
    ImageTooLargeError,
    InvalidInputError,
    NotAcceptableError,
    without_traceback,
)
from ..external import (
    COLOUR_LOSSLESS,
    COLOUR_PHOTOMETRIC,
    colour_lossless_decode,
    colour_lossless_encode,
    jpeg8_decode,
    jpeg8_encode_colour,
)
from ..registry import pixel_data_compressed, transfer_syntax
from ..spec import PixelSpec
from ..warnfilter import filtered
from .fastread import read_native
from .fastwrite import encode_file_fast, native_frames
from .header import as_part10, read_header, stored_syntax
from .manifest import ManifestEntry

__all__ = [
    "Preset",
    "OperatingPoint",
    "EncodedInstance",
    "PRESETS",
    "DEFAULT_PRESETS",
    "HTJ2K_LOSSLESS",
    "NEAR_LOSSLESS_ERROR",
    "lossless_syntaxes",
    "LOSSLESS_UNDER",
    "with_lossless_aliases",
    "image_class",
    "NEURO_FIELD_MM",
    "ALREADY_LOSSY",
    "SMALLER_STORED",
    "YCBCR_KEPT",
    "is_colour",
    "is_colour_record",
    "series_mapping",
    "get_preset",
]

#: HTJ2K lossless only (PS3.5 §A.4.x, Table A-1).
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
#: Syntaxes that hold lossy or lossless codestreams, and the lossless-only syntax whose codestream
#: the ``lossless`` preset writes for them: a client that asks for JPEG 2000 .91 or HTJ2K .203 gets
#: the lossless .90 / .201 codestream labelled as it asked (PS3.5 §A.4.4: .91 "may be lossless or
#: lossy"; HTJ2K .203 likewise), where it got 406 until 2026-12-02 (an audit's "left" item).
LOSSLESS_UNDER = {"1.2.840.10008.1.2.4.91": "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.203": HTJ2K_LOSSLESS}


def with_lossless_aliases(syntaxes: list[str]) -> list[str]:
    """``syntaxes`` and the :data:`LOSSLESS_UNDER` syntaxes whose lossless sibling is among them."""
    return [*syntaxes, *(ts for ts, sibling in LOSSLESS_UNDER.items() if sibling in syntaxes)]


def lossless_syntaxes() -> list[str]:
    """The lossless encapsulated transfer syntaxes the ``lossless`` preset can write here (the
    registry's, with their library installed): HTJ2K .201 (its default), JPEG 2000 .90, JPEG-LS
    .80, RLE .5, ...; what WADO-RS offers a client that asks for one of them."""
    from ..registry import encodable_syntaxes

    return [ts.uid for ts in encodable_syntaxes() if ts.encapsulated and not ts.lossy]


_UID_NAMESPACE = uuid.UUID("5d1c3d0e-9a4b-5c55-9a1e-6d6564636f64")  # medcodec presets
#: Live shortcuts (:mod:`.fastwrite`: numpy pixel read, raw-element writer), same output; the
#: tests switch it off to compare with the pydicom-only path.
_FAST_IO = True
_NEURO = re.compile(r"\b(HEAD|BRAIN|SKULL|NEURO|CRANE|CRANIAL|CEREBR)", re.IGNORECASE)


@dataclass(frozen=True)
class OperatingPoint:
    """How one class of image is coded: ``syntax`` (``"jpeg"``, ``"jpegls"``, ``"htj2k-lossless"``,
    ``"jpeg-colour"``) and its quality, or ``max_error``, a guaranteed bound in stored units
    (JPEG-LS ``NEAR``, instead of a quality); ``subsampling`` (``"444"``, ``"422"``) for colour."""

    syntax: str
    quality: float | None = None
    subsampling: str = ""
    max_error: int | None = None


@dataclass(frozen=True)
class EncodedInstance:
    """One instance under a preset: the DICOM file's bytes and its manifest entry."""

    data: bytes
    entry: ManifestEntry


#: A CT reconstructed on a field this small (mm) is coded at the CT-neuro point even when its header
#: names no head: an adult head is reconstructed on ~220-260 mm, an adult body on 320-500 mm. What
#: else falls under it (neck, extremities, children, cardiac) gets the stricter point, the safe side.
NEURO_FIELD_MM = 280.0


def image_class(ds: Dataset) -> str:
    """``"CT-neuro"``, ``"CT"``, ``"MR"``, ``"MG"`` (mammography, breast tomosynthesis), ``"CR"`` (CR,
    DX, RF, XA as projection radiography) or ``"*"``.

    A CT is ``"CT-neuro"`` (the stricter point) when Body Part Examined, Series / Study
    Description or Protocol Name name the head, or when its reconstruction field (Reconstruction
    Diameter, else Columns x Pixel Spacing) is at most :data:`NEURO_FIELD_MM`: a head CT whose
    descriptions say "5/5mm Plain" (pydicom's ``693_UNCR``) was coded at the body point before
    (26.5:1, 77 HU maximum error in the brain; 10.8:1 and 12 HU at the neuro point)."""
    with source_values_as_is():
        modality = str(ds.get("Modality", "") or "").upper()
        if modality == "CT":
            keywords = ("BodyPartExamined", "SeriesDescription", "StudyDescription", "ProtocolName")
            texts = [_peek_text(ds, k) for k in keywords]
            if any(_NEURO.search(t) for t in texts):
                return "CT-neuro"
            field_mm = _reconstruction_field(ds)
            return "CT-neuro" if field_mm is not None and field_mm <= NEURO_FIELD_MM else "CT"
    if modality == "MR":
        return "MR"
    if modality == "MG":
        return "MG"
    if modality in ("CR", "DX", "DR", "RF", "XA", "IO", "PX"):
        return "CR"
    return "*"


def _peek_text(ds: Dataset, keyword: str) -> str:
    """A text element's value, decoded without converting the element in ``ds``: pydicom keeps an
    element it has decoded and writes it encoded again, so text invalid in its declared character
    set came out of a derived (even a ``lossless``) file with U+FFFD where the source had its own
    bytes (an outside audit, 2026-12-02). Elements nobody reads are written as they were read."""
    tag = tag_for_keyword(keyword)
    if tag is None or tag not in ds:
        return ""
    element = ds.get_item(tag)
    if isinstance(element, RawDataElement):
        encoding = getattr(ds, "_character_set", None) or ds.original_character_set
        with filtered():
            element = convert_raw_data_element(element, encoding=encoding, ds=ds)
    return str(element.value or "")


def _reconstruction_field(ds: Dataset) -> float | None:
    """The CT's reconstruction field in mm: Reconstruction Diameter, else Columns x Pixel Spacing
    (column spacing); ``None`` when the header has neither (or they do not parse)."""
    try:
        diameter = ds.get("ReconstructionDiameter")
        if diameter not in (None, ""):
            value = float(diameter)
            return value if value > 0 else None
        spacing, columns = ds.get("PixelSpacing"), ds.get("Columns")
        if spacing is None or columns is None or len(spacing) < 2:
            return None
        value = float(spacing[1]) * int(columns)
        return value if value > 0 else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Preset:
    """A way of delivering a study (see the module docstring).

    Parameters
    ----------
    name
        ``original``, ``lossless``, ``near-lossless``, ``diagnostic``, ``preview``.
    description
        One line for people.
    points
        Operating point per image class (:func:`image_class`); ``"*"`` for the rest. Empty
        for ``original``.
    lossy, diagnostic
        Whether files lose information; whether they are meant for diagnosis (``preview`` is not).
    """

    name: str
    description: str
    points: Mapping[str, OperatingPoint] = field(default_factory=dict)
    lossy: bool = False
    diagnostic: bool = True

    @property
    def label(self) -> str:
        """What the files say about themselves (empty for ``original``)."""
        if self.name == "preview":
            return "PREVIEW - NOT FOR DIAGNOSIS"
        return ""

    @property
    def codes_colour(self) -> bool:
        """Whether 8-bit colour images (:func:`is_colour`) are coded, not delivered as stored:
        baseline JPEG under a colour point (``diagnostic``, ``preview``), lossless under
        ``lossless`` (since 2026-12-02)."""
        star = self.points.get("*")
        return COLOUR in self.points or (star is not None and star.syntax == "htj2k-lossless")

    def operating_point(self, ds: Dataset) -> OperatingPoint | None:
        """The point for this image's class, or ``None`` (``original``: nothing is coded). An IOD that
        fixes Bits Stored where JPEG cannot follow (NM's 8 or 16, RT Dose's 16 or 32:
        :data:`medcodec.dicom.iod.FIXED_BITS_STORED`) gets HTJ2K lossless instead of a JPEG point;
        PET (:func:`medcodec.dicom.iod.quantitative`) gets it whatever the point."""
        if not self.points:
            return None
        point = self.points.get(image_class(ds)) or self.points.get("*")
        if point is None or point.syntax == "htj2k-lossless":
            return point
        with source_values_as_is():
            if quantitative(ds):  # PET: lossless whatever the point (its IOD fixes depth and intercept)
                return _FIXED_DEPTH_POINT
            if point.syntax == _JPEG:  # (colour is 8-bit JPEG of 8-bit RGB: no such IOD)
                try:
                    bits = int(ds.get("BitsStored", 16) or 16)
                except (TypeError, ValueError):
                    bits = 16
                coded, _ = get_syntax(_JPEG).target(bits, False)  # a source already outside its IOD keeps its own
                if coded != bits and not bits_stored_allowed(ds, coded):  # NM, RT Dose
                    return _FIXED_DEPTH_POINT
        return point

    @property
    def transfer_syntax_uid(self) -> str | None:
        """The syntax of this preset's coded files for 9-16-bit images (``None`` for ``original``).

        8-bit images get the 8-bit variant (JPEG baseline .50 for the JPEG presets): see
        :meth:`transfer_syntax_for`. Passthrough files keep their own syntax.
        """
        return self.transfer_syntax_for(12)

    def transfer_syntax_for(self, bits_stored: int) -> str | None:
        """Transfer syntax of this preset's coded files for ``bits_stored`` samples (``None``: as stored)."""
        point = self.points.get("*")
        if point is None:
            return None
        if point.syntax == "htj2k-lossless":
            return HTJ2K_LOSSLESS
        return get_syntax(point.syntax).uid(8 if bits_stored <= 8 else 12)

    def encode_instance(
        self,
        source: bytes | bytearray | memoryview | Dataset,
        *,
        mapping: SeriesMapping | None = None,
        measure: bool = True,
        jobs: int = 1,
        syntax: str | None = None,
        recode: bool = False,
    ) -> EncodedInstance:
        """This preset's file for one instance: coded, or the original passed through.

        Parameters
        ----------
        source
            The original file's bytes (or a dataset with its pixel data).
        mapping
            The series mapping (:func:`series_mapping`); ``None`` maps the instance on its own.
            Ignored by ``original`` and ``lossless``.
        measure
            Decode the written file with pydicom and fill ``psnr``/``max_error`` in the entry
            (pre-computation); ``False`` skips it (``measured: false``), for live delivery.
        jobs
            Threads for the frames of a multi-frame instance (live delivery: the encoder process's
            cores, so that one large object does not code on one core).
        syntax
            ``lossless`` preset only: the lossless transfer syntax to write (:func:`lossless_syntaxes`;
            default HTJ2K .201), e.g. JPEG 2000 or JPEG-LS lossless for a WADO-RS client that asks
            for it. Bit-exact like the default (checked by decoding when ``measure``).
        recode
            Code the instance even where this preset delivers the stored file instead (a WADO-RS
            client that asks for this preset's syntax). By default an original whose pixel data
            are stored lossy-compressed passes through ``lossless`` and ``diagnostic`` as it is (a
            second lossy generation adds error, a lossless copy of lossy pixels only bytes) and
            ``preview`` when its file would not be smaller; and a lossy preset passes through any
            stored file no larger than its own (module docstring, "Already lossy"), as does
            ``lossless`` when ``syntax`` is not given.

        Returns
        -------
        EncodedInstance
            ``data`` is a complete DICOM file (PS3.10).

        Raises
        ------
        NotDicomError
            ``source`` is not DICOM.
        CodecError
            Encoding failed for an image the preset should be able to code.

        Examples
        --------
        >>> from pathlib import Path
        >>> from pydicom.data import get_testdata_file
        >>> data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
        >>> out = PRESETS["diagnostic"].encode_instance(data)
        >>> out.entry.transfer_syntax_uid, out.entry.lossy, out.entry.passthrough
        ('1.2.840.10008.1.2.4.51', True, False)
        """
        if syntax is not None:
            point_ = self.points.get("*")
            if point_ is None or point_.syntax != "htj2k-lossless" or syntax not in lossless_syntaxes():
                raise InvalidInputError(
                    f"syntax={syntax!r}: only the lossless preset takes a syntax, one of {lossless_syntaxes()}"
                )
        data = _as_bytes(source)
        full = _read_full(data)  # one parse serves the header and the pixels (PS3.10 files)
        ds = full if full is not None else read_header(data, "<instance>")  # NotDicomError when not DICOM
        try:
            with source_values_as_is():
                base = {
                    "preset": self.name,
                    "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
                    "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
                    "sop_class_uid": str(ds.get("SOPClassUID", "")),
                    "modality": str(ds.get("Modality", "") or ""),
                    "source_bytes": len(data),
                }
            source_ts = stored_syntax(ds)
            point = self.operating_point(ds)
            lossy_source = stored_pixels_lossy(ds, source_ts)
        except CodecError:
            raise
        except Exception as exc:  # pydicom's own errors on a damaged header (e.g. a VR it does not know)
            raise DicomError(f"cannot read the header: {type(exc).__name__}: {exc}") from exc
        if point is None:
            return self._passthrough(
                data, source_ts, base, "the original preset delivers the stored file", as_stored=True,
                lossy=lossy_source,
            )  # fmt: skip
        already = "" if recode or not lossy_source else _already_lossy(ds, source_ts)
        if already and self.diagnostic:
            how = "a second lossy generation would add error" if self.lossy else "a lossless copy would only be larger"
            return self._passthrough(data, source_ts, base, f"{already}: {how}", lossy=True)
        encoded = self._code_pixels(data, full, ds, point, base, source_ts, mapping=mapping, measure=measure, jobs=jobs,
                             syntax=syntax)  # fmt: skip
        if lossy_source and not encoded.entry.lossy:  # a passthrough, or a lossless copy, of lossy pixels
            encoded = EncodedInstance(encoded.data, replace(encoded.entry, lossy=True))
        if already and not encoded.entry.passthrough and len(encoded.data) >= len(data):
            reason = f"{already}: this preset's file would not be smaller ({len(encoded.data)} bytes)"
            return self._passthrough(data, source_ts, base, reason, lossy=True)
        if (
            not recode and syntax is None and not encoded.entry.passthrough and len(encoded.data) >= len(data)
        ):  # the stored file is no larger than this preset's (a deflated or lossless one of a flat
            # synthetic image, a tiny image whose codestream and lossy attributes outweigh its
            # pixels): it is smaller and at least as faithful (the series template checks the same)
            reason = (
                f"{SMALLER_STORED} ({len(data)} bytes, {UID(source_ts).name}) "
                f"than this preset's file ({len(encoded.data)} bytes)"
            )
            return self._passthrough(data, source_ts, base, reason, lossy=lossy_source)
        return encoded

    def _code_pixels(
        self,
        data: bytes,
        full: Dataset | None,
        ds: Dataset,
        point: OperatingPoint,
        base: dict[str, Any],
        source_ts: str,
        *,
        mapping: SeriesMapping | None,
        measure: bool,
        jobs: int,
        syntax: str | None,
    ) -> EncodedInstance:
        """:meth:`encode_instance` once the header is read: colour, grayscale lossy or lossless."""
        try:  # a small file may declare gigabytes of pixels: delivered as stored, never decoded
            check_dataset_decoded_size(ds)
        except ImageTooLargeError as exc:
            return self._passthrough(data, source_ts, base, str(exc))
        colour = self.points.get(COLOUR)
        if is_colour(ds):
            if colour is not None:
                return self._colour(data, full, colour, base, source_ts, measure=measure)
            if point.syntax == "htj2k-lossless" and (syntax or HTJ2K_LOSSLESS) in COLOUR_LOSSLESS:
                return self._colour_lossless(data, full, base, source_ts, syntax or HTJ2K_LOSSLESS, measure=measure)
            reason = f"colour ({ds.get('PhotometricInterpretation', '')}): {self.name} delivers colour images as stored"
            if syntax is not None:
                reason = f"colour ({ds.get('PhotometricInterpretation', '')}): {syntax} is not one colour is coded in"
            return self._passthrough(data, source_ts, base, reason)
        samples = ds.get("SamplesPerPixel")
        if isinstance(samples, int) and samples > 1 and "PixelData" in ds:  # not 8-bit colour (is_colour above)
            reason = (
                f"colour ({ds.get('PhotometricInterpretation', '')}, {ds.get('BitsStored', '?')} bits per sample): "
                "only 8-bit colour is coded; delivered as stored"
            )
            return self._passthrough(data, source_ts, base, reason)
        try:
            if full is None:
                with source_values_as_is():
                    full = dcmread(io.BytesIO(data), force=True)
            spec = pixel_spec_from_dataset(full)
        except DicomError as exc:  # SR, colour, palette...: not ours to code
            return self._passthrough(data, source_ts, base, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # pydicom could not read the whole file: deliver it as it is
            return self._passthrough(data, source_ts, base, f"unreadable pixel module: {type(exc).__name__}: {exc}")
        lossless = point.syntax == "htj2k-lossless"
        if not lossless and spec.extra.get("rescale_varies_per_frame"):
            return self._passthrough(data, source_ts, base, "per-frame Rescale Slope/Intercept differ")
        if not lossless and "ModalityLUTSequence" in full:
            return self._passthrough(
                data, source_ts, base, "(0028,3000) Modality LUT Sequence: values cannot be remapped"
            )
        try:
            read = native_frames if _FAST_IO else dataset_frames
            frames = read(full, spec)
        except DicomError as exc:
            return self._passthrough(data, source_ts, base, f"pixel data cannot be decoded: {exc}")
        try:  # from here on `full` is changed in place
            if lossless:
                return self._lossless(full, frames, spec, base, measure=measure, jobs=jobs, syntax=syntax)
            # (compress() pairs the lossy history before the pixels change)
            return self._lossy(full, frames, spec, point, base, mapping=mapping, measure=measure, jobs=jobs)
        except Exception as exc:  # an image this preset cannot code after all (CodecError, or pydicom's own
            # errors on a damaged element, e.g. a VR it does not know): delivered as stored, and said so
            return self._passthrough(data, source_ts, base, f"could not be coded: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ kinds

    def _passthrough(
        self, data: bytes, ts: str, base: dict[str, Any], reason: str, *, as_stored: bool = False, lossy: bool = False
    ) -> EncodedInstance:
        """``data`` delivered unchanged; a preamble-less dataset gets its PS3.10 preamble and file
        meta first (dataset bytes unchanged) unless ``as_stored`` (the original preset: byte for byte).
        ``lossy``: its pixel data are lossy already (the manifest says what the file is)."""
        if not as_stored:
            data = as_part10(data, base["sop_class_uid"], base["sop_instance_uid"], ts)
        entry = ManifestEntry(
            **base,
            rendition_sop_instance_uid=base["sop_instance_uid"],
            transfer_syntax_uid=ts,
            passthrough=True,
            lossy=lossy,
            bytes=len(data),
            reason=without_traceback(reason.removeprefix("<bytes>: "), 300),
            max_error=None,
            measured=False,
        )
        return EncodedInstance(data, entry)

    def _colour_lossless(
        self, data: bytes, full: Dataset | None, base: dict[str, Any], source_ts: str, ts: str, *, measure: bool
    ) -> EncodedInstance:
        """An 8-bit colour image (:func:`is_colour`) coded losslessly in ``ts`` (one of
        :data:`~medcodec.external.COLOUR_LOSSLESS`: HTJ2K .201 by default, JPEG 2000 .90, JPEG-LS
        .80, JPEG Lossless .70 / .57) by :func:`~medcodec.external.colour_lossless_encode`: the RGB
        samples pydicom reads, Photometric Interpretation as the codestream holds them (``YBR_RCT`` with the reversible
        colour transform, else ``RGB``), Planar Configuration 0, same SOP Instance UID. Pixels
        pydicom cannot read are passed through, said so; ``measure`` decodes every frame back. Stored
        YCbCr samples (``YBR_FULL``, ``YBR_FULL_422``...) of lossless pixels are passed through too: as
        RGB they would round (an outside audit found 9.7 % of a YBR_FULL image's samples changed by up
        to 3 under a label that said lossless), and the codecs here take RGB."""
        try:
            if full is None:
                with source_values_as_is():
                    full = dcmread(io.BytesIO(data), force=True)
            photometric_in = str(full.get("PhotometricInterpretation", "")).strip()
            if photometric_in not in ("RGB", "YBR_RCT") and not stored_pixels_lossy(full, source_ts):
                reason = f"colour ({photometric_in}): {YCBCR_KEPT}; delivered as stored"
                return self._passthrough(data, source_ts, base, reason)
            rows, cols = int(full.Rows), int(full.Columns)
            rgb = np.asarray(pixel_array(full)).reshape(-1, rows, cols, 3)  # RGB whatever is stored (as_rgb)
        except Exception as exc:
            reason = f"colour pixel data cannot be decoded: {type(exc).__name__}: {exc}"
            return self._passthrough(data, source_ts, base, reason)
        try:
            coded = [colour_lossless_encode(f, ts) for f in rgb]
            streams = [c[0] for c in coded]
            photometric = coded[0][1]
            keep_lossy_history(full, full, source_ts)  # before the pixels change: a lossless copy of lossy pixels
            multi = "NumberOfFrames" in full or len(streams) > 1
            set_colour_pixels(full, streams, transfer_syntax=ts, photometric=photometric, rows=rows, columns=cols,
                              multi_frame=multi)  # fmt: skip
            result = encode_file_fast(full) if _FAST_IO else encode_file(full)
        except Exception as exc:  # a library's or pydicom's error on this file: delivered as stored
            return self._passthrough(data, source_ts, base, f"colour could not be coded: {type(exc).__name__}: {exc}")
        if measure:  # every frame by the codec's decoder, the written file's first by pydicom, as a reader gets it
            try:
                decoded = [np.asarray(colour_lossless_decode(s, ts)) for s in streams]
                first = np.asarray(pixel_array(dcmread(io.BytesIO(result)), index=0))
            except Exception as exc:
                raise CodecError(f"colour {ts} of {base['sop_instance_uid']} does not decode: {exc}") from exc
            if not (
                all(np.array_equal(d, f) for d, f in zip(decoded, rgb, strict=True)) and np.array_equal(first, rgb[0])
            ):
                raise CodecError(f"colour {ts} of {base['sop_instance_uid']} does not decode to the same values")
        ratio = rgb.size / sum(len(x) + len(x) % 2 for x in streams)
        entry = _lossless_entry(base, str(full.SOPInstanceUID), ts, len(result), ratio, measure, hu=False)
        return EncodedInstance(result, entry)

    def _colour(
        self,
        data: bytes,
        full: Dataset | None,
        point: OperatingPoint,
        base: dict[str, Any],
        source_ts: str,
        *,
        measure: bool,
    ) -> EncodedInstance:
        """An 8-bit colour image (:func:`is_colour`) as baseline JPEG (.50) by libjpeg-turbo: RGB to
        YCbCr, chroma as ``point.subsampling`` says, libjpeg quality ``point.quality`` (module
        docstring); the grayscale path's derivation attributes. Pixels pydicom cannot read are
        passed through, said so."""
        try:
            if full is None:
                with source_values_as_is():
                    full = dcmread(io.BytesIO(data), force=True)
            rows, cols = int(full.Rows), int(full.Columns)
            rgb = np.asarray(pixel_array(full)).reshape(-1, rows, cols, 3)  # RGB whatever is stored (as_rgb)
        except Exception as exc:
            reason = f"colour pixel data cannot be decoded: {type(exc).__name__}: {exc}"
            return self._passthrough(data, source_ts, base, reason)
        quality = float(point.quality or 90.0)
        chroma = point.subsampling
        photometric = COLOUR_PHOTOMETRIC[chroma]  # KeyError for a point without one: a preset bug
        try:
            streams = [jpeg8_encode_colour(f, quality=int(quality), subsampling=chroma) for f in rgb]
            keep_lossy_history(full, full, source_ts)  # before the pixels change; mark_lossy appends this step
            with source_values_as_is():
                reference = _source_reference(full, full.get("SOPClassUID"))
            enhanced = "PerFrameFunctionalGroupsSequence" in full or "SharedFunctionalGroupsSequence" in full
            multi = "NumberOfFrames" in full or len(streams) > 1
            coded = sum(len(s) + len(s) % 2 for s in streams)
            if coded >= rgb.size:  # a tiny image: JPEG's headers and tables outweigh its pixels
                reason = f"colour: baseline JPEG ({coded} bytes) would not be smaller than the pixels ({rgb.size})"
                return self._passthrough(data, source_ts, base, reason)
            set_colour_jpeg_pixels(full, streams, photometric=photometric, rows=rows, columns=cols, multi_frame=multi)
            ratio = rgb.size / coded
            mark_lossy(full, ratio=ratio, method="ISO_10918_1")
            description = colour_description(self, quality, ratio, photometric)
            _derive_attributes(full, self, None, quality, ratio, base, reference, enhanced, description=description)
            result = encode_file_fast(full) if _FAST_IO else encode_file(full)
        except Exception as exc:  # a library's or pydicom's error on this file: delivered as stored
            return self._passthrough(data, source_ts, base, f"colour could not be coded: {type(exc).__name__}: {exc}")
        psnr = max_error = None
        if measure:  # every frame by libjpeg-turbo; the written file's first frame by pydicom too, as a
            # reader gets it (its decoder upsamples chroma its own way: within 40 dB, not bit-exact)
            try:
                decoded = np.stack([np.asarray(jpeg8_decode(s)) for s in streams]).reshape(rgb.shape)
                first = np.asarray(pixel_array(dcmread(io.BytesIO(result)), index=0)).astype(np.int64)
            except Exception as exc:
                raise CodecError(f"colour JPEG of {base['sop_instance_uid']} does not decode: {exc}") from exc
            if first.shape != rgb.shape[1:] or _psnr8(first, decoded[0]) < 40.0:
                raise CodecError(f"colour JPEG of {base['sop_instance_uid']}: pydicom reads another image")
            max_error = float(np.abs(decoded.astype(np.int64) - rgb.astype(np.int64)).max())
            psnr = _psnr8(decoded, rgb)
        return _coded(
            base, full, result,
            ratio=ratio, psnr=psnr, max_error=max_error,
            max_error_hu=max_error,  # no units: the error in 8-bit RGB values
            quality=quality, measured=measure, mapping=f"colour: RGB coded as {photometric}",
        )  # fmt: skip

    def _lossless(
        self,
        full: Dataset,
        frames: NDArray[np.integer],
        spec: PixelSpec,
        base: dict[str, Any],
        *,
        measure: bool,
        jobs: int = 1,
        syntax: str | None = None,
    ) -> EncodedInstance:
        # the frames already read are coded (no second decode of a compressed original)
        ts = syntax or HTJ2K_LOSSLESS
        result, out, ratio = _compress(full, ts, quality=None, mapping=None, frames=frames, spec=spec, jobs=jobs)
        measured = measure
        if measure:
            decoded = _decode_file(result, frames.shape)
            if not np.array_equal(decoded.astype(np.int64), frames.astype(np.int64)):
                raise CodecError(f"{ts} of {base['sop_instance_uid']} does not decode to the same values")
        entry = _lossless_entry(base, str(out.SOPInstanceUID), ts, len(result), ratio, measured)
        return EncodedInstance(result, entry)

    def _lossy(
        self,
        full: Dataset,
        frames: NDArray[np.integer] | None,
        spec: PixelSpec,
        point: OperatingPoint,
        base: dict[str, Any],
        *,
        mapping: SeriesMapping | None,
        measure: bool,
        jobs: int = 1,
    ) -> EncodedInstance:
        syntax = get_syntax(point.syntax)
        bits, signed = syntax.target(spec.bits_stored, spec.signed)
        if (
            mapping is None
            or (mapping.bits_stored, mapping.signed) != (bits, signed)
            or (mapping.source_bits_stored, mapping.source_signed) != (spec.bits_stored, spec.signed)
        ):
            assert frames is not None  # decoded above whenever no series mapping was given
            padding = dataset_padding(full, bits_stored=spec.bits_stored, signed=spec.signed)
            mapping = plan_series_mapping(dataset_stats(frames, spec, padding=padding), bits_stored=bits,
                                          signed=signed, padding=padding)  # fmt: skip
        bound = point.max_error  # near-lossless: a guaranteed error instead of a quality
        quality = None if bound is not None else float(point.quality or 75.0)
        with source_values_as_is():
            reference = _source_reference(full, full.get("SOPClassUID"))
        enhanced = "PerFrameFunctionalGroupsSequence" in full or "SharedFunctionalGroupsSequence" in full
        result, ds, ratio = _compress(
            full,
            syntax.uid(bits),
            quality=quality,
            max_error=bound,
            mapping=mapping,
            frames=frames,
            spec=spec,
            finish=lambda out, r: _derive_attributes(
                out, self, mapping, quality, r, base, reference, enhanced, max_error=bound
            ),
            jobs=jobs,
        )
        psnr = max_error = max_error_hu = None
        # what the mapping clips (padding without a code of its own is; padding is never measured), or
        # None: a live file coded without decoding its source says nothing (not 0)
        clipped = mapping.clipped_count(frames) if frames is not None else None
        if frames is not None and measure:
            restored = mapping.unmap(_decode_file(result, frames.shape))
            mask = mapping.kept(frames)
            if mask.any():
                diff = restored[mask].astype(np.int64) - frames[mask].astype(np.int64)
                max_error = float(np.abs(diff).max())
                mse = float(np.mean(diff.astype(np.float64) ** 2))
                peak = (1 << mapping.source_bits_stored) - 1
                psnr = math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)
            else:
                max_error, psnr = 0.0, math.inf
            max_error_hu = max_error * abs(spec.rescale_slope)
            if bound is not None:  # the guarantee, checked on every voxel (padding and clipped ones too)
                worst = int(np.abs(restored.astype(np.int64) - frames.astype(np.int64)).max())
                if worst > bound:
                    raise CodecError(
                        f"{syntax.name} of {base['sop_instance_uid']}: an error of {worst}, the bound is {bound}"
                    )
        return _coded(
            base, ds, result,
            ratio=ratio, psnr=psnr, max_error=max_error, max_error_hu=max_error_hu, n_clipped=clipped,
            quality=quality, max_error_bound=bound, measured=frames is not None and measure,
            mapping=mapping.describe(),
        )  # fmt: skip


def _lossless_entry(
    base: dict[str, Any], rendition_uid: str, ts: str, nbytes: int, ratio: float, measured: bool, *, hu: bool = True
) -> ManifestEntry:
    """The manifest row of a lossless file (grayscale or colour): error 0 when decoded and compared
    (``measured``), in HU too unless colour (``hu=False``)."""
    return ManifestEntry(
        **base,
        rendition_sop_instance_uid=rendition_uid,
        transfer_syntax_uid=ts,
        passthrough=False,
        lossy=False,
        bytes=nbytes,
        ratio=ratio,
        psnr=None,
        max_error=0.0 if measured else None,
        max_error_hu=0.0 if measured and hu else None,
        measured=measured,
    )


def _coded(base: dict[str, Any], ds: Dataset, result: bytes, **numbers: Any) -> EncodedInstance:
    """A lossy preset's file and its manifest row: identity and syntax from the written dataset
    ``ds``, ``numbers`` (ratio, psnr, max_error, ..., mapping) as measured by the caller."""
    entry = ManifestEntry(
        **base,
        rendition_sop_instance_uid=str(ds.SOPInstanceUID),
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        passthrough=False,
        lossy=True,
        bytes=len(result),
        **numbers,
    )
    return EncodedInstance(result, entry)


# --------------------------------------------------------------------------- the one coding function


def _compress(
    ds: Dataset,
    ts_uid: str,
    *,
    quality: float | None,
    mapping: SeriesMapping | None,
    frames: NDArray[np.integer] | None = None,
    finish: Callable[[Dataset, float], None] | None = None,
    spec: PixelSpec | None = None,
    jobs: int = 1,
    max_error: int | None = None,
) -> tuple[bytes, Dataset, float]:
    """The ONE place a preset file is coded: ``ds`` (the whole original, changed in place) under
    ``ts_uid`` -> (file bytes, dataset, ratio), coded at ``quality`` or within ``max_error`` (JPEG-LS
    near-lossless). ``finish(ds, ratio)`` adds the derivation attributes before the file is written.

    Live delivery and pre-computation both come here and get the same bytes (a rendition's SOP
    Instance UID is derived from the source's and the preset's, so two different files under one
    UID would be a DICOM error): :func:`medcodec.dicom.compress` with the series mapping (the
    default JPEG encoder: texture-aware quantizer, the modality's trained table, one content range
    per series; padding declared as it decodes), given the frames already read, then the file
    written by :func:`~.fastwrite.encode_file_fast` (``dcmwrite``'s bytes with less work).
    """
    ts = transfer_syntax(ts_uid)
    try:
        compress(
            ds,
            ts.uid,
            quality=quality,
            max_error=max_error,
            mapping=mapping,
            generate_instance_uid=False,
            frames=frames,
            spec=spec,
            jobs=jobs,
            warn=False,  # the manifest reports each file (depth, ratio, error); a warning per instance is noise
        )
    except CodecError:
        raise
    except Exception as exc:  # a library's own error becomes ours
        raise CodecError(f"{ts.name}: encoding failed: {type(exc).__name__}: {exc}") from exc
    fragments = generate_fragments(ds.PixelData)
    next(fragments)  # the Basic Offset Table
    nbytes = sum(len(f) + len(f) % 2 for f in fragments)
    ratio = rendition_ratio(int(ds.get("NumberOfFrames", 1) or 1), int(ds.Rows), int(ds.Columns),
                            int(ds.BitsAllocated), nbytes)  # fmt: skip
    if finish is not None:
        finish(ds, ratio)
    return (encode_file_fast(ds) if _FAST_IO else encode_file(ds)), ds, ratio


def _derive_attributes(
    ds: Dataset,
    preset: Preset,
    mapping: SeriesMapping | None,
    quality: float | None,
    ratio: float,
    base: dict[str, Any],
    reference: Dataset | None,
    enhanced: bool,
    *,
    description: str | None = None,
    max_error: int | None = None,
) -> None:
    """What a lossy preset file says about itself (PS3.3 C.7.6.1.1.2/.5, C.7.6.1.1.3): DERIVED,
    Derivation Description (``description``, or the grayscale one of ``mapping``) and Code (113040
    Lossy Compression), Source Image Sequence, the name-based SOP Instance and Series Instance UIDs,
    and the preview's NOT FOR DIAGNOSIS label."""
    if description is None:
        assert mapping is not None
        description = derivation_description(preset, mapping, quality, ratio, max_error=max_error)
        if not enhanced and folds_rescale(ds, *mapping.rescale(1.0, 0.0)):  # DX / mammography (write.set_rescale)
            description = (description + VOI_FOLD_NOTE)[:1024]
    ds.DerivationDescription = description
    _append_item(ds, "DerivationCodeSequence", _code("113040", "Lossy Compression"))
    _set_derived_type(ds)
    reference_source(ds, reference, enhanced)
    sop_uid = UID(_derived_uid(preset.name, base["sop_instance_uid"], _coding_name(mapping, quality, max_error)))
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    if "MediaStorageSOPClassUID" not in ds.file_meta and "SOPClassUID" in ds:
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    # the series' copies change together (one mapping a series): a series re-coded is a new series
    series = base["series_instance_uid"] or base["sop_instance_uid"]
    ds.SeriesInstanceUID = _derived_uid(preset.name, series, _coding_name(mapping))
    if preset.label:
        with source_values_as_is():
            old = str(ds.get("SeriesDescription", "") or "")
            comments = str(ds.get("ImageComments", "") or "")
        ds.SeriesDescription = f"{preset.label} {old}".strip()[:64]
        ds.ImageComments = preview_comment(preset, ratio, comments)


def preview_comment(preset: Preset, ratio: float, original: str = "") -> str:
    """(0020,4000) of a file of a preset not meant for diagnosis: the label, then the source's own
    comment (until 2026-12-02 replaced: clinical free text lost from the preview; an outside audit),
    within LT's 10,240 characters.

    >>> preview_comment(PRESETS["preview"], 41.2, "patient moved")
    'PREVIEW - NOT FOR DIAGNOSIS: lossy preview at 41:1. patient moved'
    """
    label = f"{preset.label}: lossy preview at {ratio:.0f}:1"
    return f"{label}. {original}"[:10240] if original.strip() else label


def rendition_ratio(frames: int, rows: int, columns: int, bits_allocated: int, nbytes: int) -> float:
    """A preset file's compression ratio (manifest, Derivation Description): the rendition's pixel
    bytes uncompressed (``bits_allocated`` of the coded file) over ``nbytes`` of fragments."""
    return frames * rows * columns * (2 if bits_allocated > 8 else 1) / nbytes


#: What the Derivation Description of every lossy copy medcodec writes says after its label: how
#: ingest knows such a copy sent back to the store (``ingest._own_copy_of``).
LOSSY_MARK = "Lossy compression by medcodec"


def derivation_description(
    preset: Preset, mapping: SeriesMapping, quality: float | None, ratio: float, *, max_error: int | None = None
) -> str:
    """(0008,2111) of a lossy preset file: JPEG at ``quality``, or JPEG-LS near-lossless within ``max_error``."""
    from .. import __version__

    label = f"{preset.label}. " if preset.label else ""
    if max_error is not None:
        how = (
            f"JPEG-LS near-lossless (ISO 14495-1) by CharLS, NEAR={max_error}: every stored value within "
            f"{max_error} of the original"
        )
    else:
        how = f"JPEG (ISO 10918-1), quality={quality:g}"
    return (
        f"{label}{LOSSY_MARK} {__version__}, preset {preset.name}: {how}, "
        f"ratio {ratio:.2f}:1. Series mapping: {mapping.describe()}."
    )[:1024]


def colour_description(preset: Preset, quality: float, ratio: float, photometric: str) -> str:
    """(0008,2111) of a colour image of a lossy preset."""
    from .. import __version__

    label = f"{preset.label}. " if preset.label else ""
    chroma = {"YBR_FULL_422": "4:2:2", "YBR_FULL": "4:4:4"}[photometric]
    return (
        f"{label}{LOSSY_MARK} {__version__}, preset {preset.name}: JPEG baseline (ISO 10918-1) "
        f"by libjpeg-turbo, RGB as YCbCr {chroma}, quality={quality:g}, ratio {ratio:.2f}:1."
    )[:1024]


#: Photometric Interpretations of the colour images the lossy presets code (:func:`is_colour`).
COLOUR_PHOTOMETRICS = frozenset(
    {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_PARTIAL_422", "YBR_ICT", "YBR_RCT"}
)
#: The key of a preset's operating point for colour images.
COLOUR = "colour"


def _colour_pixels(samples: Any, bits_allocated: Any, bits_stored: Any, photometric: Any) -> bool:
    """The one rule of :func:`is_colour` and :func:`is_colour_record`: three 8-bit samples in a
    colour space of :data:`COLOUR_PHOTOMETRICS`."""
    return (
        int(samples or 1) == 3
        and int(bits_allocated or 0) == 8
        and int(bits_stored or 8) == 8
        and str(photometric or "").strip().upper() in COLOUR_PHOTOMETRICS
    )


def is_colour(ds: Dataset) -> bool:
    """An 8-bit, three-sample colour image the lossy presets code as colour JPEG (palette colour,
    more than 8 bits, or anything else stays as it is)."""
    with source_values_as_is():
        try:
            return "PixelData" in ds and _colour_pixels(
                ds.get("SamplesPerPixel"), ds.get("BitsAllocated"), ds.get("BitsStored"),
                ds.get("PhotometricInterpretation"),
            )  # fmt: skip
        except (TypeError, ValueError):
            return False


def _psnr8(a: NDArray[np.integer], b: NDArray[np.integer]) -> float:
    """PSNR of two 8-bit images, peak 255 (``inf`` when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 * 255.0 / mse)


def is_colour_record(record: Any) -> bool:
    """:func:`is_colour` from a catalog :class:`~.catalog.InstanceRecord` (no file read)."""
    return _colour_pixels(record.samples_per_pixel, record.bits_allocated, record.bits_stored, record.photometric)


# --------------------------------------------------------------------------- helpers


def _derived_uid(preset: str, uid: str, coding: str = "") -> str:
    """A UID derived deterministically from an original UID, a preset and how it was coded
    (:func:`_coding_name`): live == pre-computed, and other pixels get another UID."""
    # PS3.5 §B.2: "2.25." + the decimal of a UUID; a name-based (v5) UUID makes it reproducible
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, f'{preset}:{uid}' + (f':{coding}' if coding else '')).int}"


def _coding_name(mapping: SeriesMapping | None, *settings: Any) -> str:
    """What, besides the preset and the original, decides a lossy copy's pixels: the coding rules'
    revision, the series mapping (its compared fields) and ``settings`` (quality, error bound).
    Named by the preset and the original's UID alone, one SOP Instance UID had two images: a
    series re-coded with a wider mapping after an instance arrived kept its UIDs, and a PACS that
    had fetched the first copy kept it silently (an outside audit with Orthanc, 2026-12-05)."""
    from dataclasses import fields

    from .manifest import CODING_REVISION

    mapped = [] if mapping is None else [(f.name, getattr(mapping, f.name)) for f in fields(mapping) if f.compare]
    numbers = tuple(None if v is None else float(v) for v in settings)  # 75 and 75.0 are one quality
    return f"r{CODING_REVISION}:{mapped}:{numbers}"


#: How the reason of an original passed through for being stored lossy-compressed already begins.
ALREADY_LOSSY = "already lossy-compressed"
#: How the reason of an original passed through for being stored smaller than a lossy preset codes it begins.
SMALLER_STORED = "the stored file is smaller"
#: The reason of a lossless colour passthrough whose stored samples are YCbCr (:meth:`Preset._colour_lossless`).
YCBCR_KEPT = "its YCbCr samples would round as RGB"


def _already_lossy(ds: Dataset, ts: str) -> str:
    """Why an original whose pixel data :func:`~medcodec.registry.pixel_data_is_lossy` says are
    lossy is stored lossy-compressed (its syntax names a compression), or ``""`` when it is stored
    uncompressed (a decompressed copy of a lossy image: coding it is what makes it small)."""
    if not pixel_data_compressed(ts):
        return ""
    name = UID(ts).name
    try:
        ratios = [float(r) for r in _values(ds, "LossyImageCompressionRatio") if str(r).strip()]
    except (TypeError, ValueError):
        ratios = []
    at = f", {':1 then '.join(f'{r:.0f}' if r >= 100 else f'{r:.3g}' for r in ratios)}:1" if ratios else ""
    return f"{ALREADY_LOSSY} ({name}{at})"


def _read_full(data: bytes) -> Dataset | None:
    """The whole dataset of a DICOM file (pixel data read lazily by pydicom), or ``None``. A deflated
    one from a bounded inflate (:func:`~medcodec.dicom.image.read_deflated`; None past the limits).
    A file without preamble (with file meta or none: its syntax then the one its bytes are in,
    :func:`~medcodec.dicom.pixel_spec.with_stored_syntax`) is read too: until 2026-12-06 it was
    not, and a colour one was delivered as stored by every preset, a grayscale one without file
    meta could not be coded (an outside audit of input syntaxes, 2026-12-05)."""
    try:
        with source_values_as_is():
            if len(data) < 132 or data[128:132] != b"DICM":
                ds = with_stored_syntax(dcmread(io.BytesIO(data), force=True))
            else:
                whole = read_deflated(data, "<instance>", stop_before_pixels=False)
                if whole is not None:
                    ds = whole[0]
                else:
                    ds = (read_native(data) if _FAST_IO else None) or dcmread(io.BytesIO(data))
    except Exception:
        return None
    return ds if ("SOPClassUID" in ds or "SOPInstanceUID" in ds) else None


def _as_bytes(source: Any) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, Dataset):
        buffer = io.BytesIO()
        try:
            with source_values_as_is():
                dcmwrite(buffer, source, enforce_file_format=getattr(source, "file_meta", None) is not None)
        except Exception as exc:
            raise DicomError(f"cannot serialise the dataset: {type(exc).__name__}: {exc}") from exc
        return buffer.getvalue()
    raise InvalidInputError(f"encode_instance takes the file's bytes or a pydicom Dataset, not {type(source).__name__}")


def _decode_file(data: bytes, shape: tuple[int, ...]) -> NDArray[np.integer]:
    """Decode a written file with pydicom (an independent decoder for our JPEG)."""
    try:
        arr = np.asarray(pixel_array(io.BytesIO(data)))
    except Exception as exc:
        raise DicomError(f"the written file does not decode with pydicom: {type(exc).__name__}: {exc}") from exc
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.shape != tuple(shape):
        raise DicomError(f"the written file decodes to shape {arr.shape}, expected {tuple(shape)}")
    return arr


def series_mapping(
    store: Any, series_uid: str, preset: Preset | str, *, stats: dict[str, Any] | None = None
) -> SeriesMapping | None:
    """The series-wide mapping ``preset`` uses, from the value statistics the catalog holds.

    ``None`` when the preset codes nothing lossy (``original``, ``lossless``) or the series
    has no compressible instance. One SQL aggregate (or ``stats``, its result, when the caller
    has it), the first instance's record and header; no pixel is read.
    """
    preset = get_preset(preset)
    point = preset.points.get("*")
    if point is None or point.syntax == "htj2k-lossless":
        return None
    stats = stats if stats is not None else store.catalog.series_stats(series_uid)
    if stats is None:
        return None
    first = next((r for r in store.catalog.instances(None, series_uid, None) if r.compressible), None)
    if first is None or first.bits_stored is None:
        return None
    if (stats.get("n_kinds") or 1) > 1:  # the mapping is for the first's kind (others plan their own)
        stats = store.catalog.series_stats(series_uid, bits_stored=first.bits_stored,
                                           pixel_representation=first.pixel_representation)  # fmt: skip
        if stats is None:
            return None
    spec = PixelSpec(
        int(first.bits_stored),
        bool(first.pixel_representation),
        rescale_slope=first.rescale_slope or 1.0,
        rescale_intercept=first.rescale_intercept or 0.0,
        extra={"modality": first.modality},
    )
    is_ct = first.modality == "CT"
    # the content range of other data (outside a declared padding) counts only when every instance
    # has one: records of medcodec before 2026-12-02 have none (their series keep the mapping they had)
    content = is_ct or stats.get("n_content") == stats["n_images"]
    series_stats = SeriesStats(
        spec=spec,
        n_images=int(stats["n_images"]),
        n_frames=int(stats["n_frames"] or 0),
        n_voxels=int(stats["n_voxels"] or 0),
        min=int(stats["min"]),
        max=int(stats["max"]),
        is_ct=is_ct,
        tissue_min=None if stats["tissue_min"] is None or not content else int(stats["tissue_min"]),
        tissue_max=None if stats["tissue_max"] is None or not content else int(stats["tissue_max"]),
        n_below_floor=int(stats["n_below_floor"] or 0),
    )
    bits, signed = get_syntax(point.syntax).target(spec.bits_stored, spec.signed)
    with store.open_original(first) as fh:  # the padding the series declares (one header, no pixels)
        header = dcmread(fh, stop_before_pixels=True, force=True)
    padding = dataset_padding(header, bits_stored=spec.bits_stored, signed=spec.signed)
    return plan_series_mapping(series_stats, bits_stored=bits, signed=signed, padding=padding)


def get_preset(preset: Preset | str) -> Preset:
    """A preset by name.

    Raises
    ------
    NotAcceptableError
        Unknown name (HTTP 406 where a client asked for it).
    """
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise NotAcceptableError(f"preset {preset!r} is unknown: expected one of {sorted(PRESETS)}")
    return PRESETS[preset]


_JPEG = "jpeg"
#: ``near-lossless``'s bound, in stored units (module docstring, "Near-lossless").
NEAR_LOSSLESS_ERROR = 2
_JPEG_COLOUR = "jpeg-colour"  # libjpeg-turbo, baseline, YCbCr (Preset._colour)

#: What a JPEG point becomes for an IOD whose Bits Stored 12-bit JPEG cannot hold (Preset.operating_point).
_FIXED_DEPTH_POINT = OperatingPoint("htj2k-lossless")

#: The presets, by name (operating points and their sources: module docstring, docs/delivery.md).
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("original", "the stored files, byte for byte"),
        Preset("lossless", "HTJ2K lossless (.201), bit-exact", {"*": OperatingPoint("htj2k-lossless")}),
        Preset(
            "near-lossless",
            f"JPEG-LS near-lossless (.81): every value within {NEAR_LOSSLESS_ERROR} of the original "
            "(mammography: HTJ2K lossless)",
            {
                "MG": OperatingPoint("htj2k-lossless"),  # as under diagnostic (module docstring)
                "*": OperatingPoint("jpegls", max_error=NEAR_LOSSLESS_ERROR),
            },
            lossy=True,
        ),
        Preset(
            "diagnostic",
            "12-bit JPEG (.51) within published guidance for diagnostic reading (mammography: HTJ2K lossless)",
            {
                "CT": OperatingPoint(_JPEG, 56),
                "CT-neuro": OperatingPoint(_JPEG, 92),
                "MR": OperatingPoint(_JPEG, 68),
                "CR": OperatingPoint(_JPEG, 74),
                "MG": OperatingPoint("htj2k-lossless"),  # no lossy mammogram for diagnosis (docstring)
                "*": OperatingPoint(_JPEG, 90),
                COLOUR: OperatingPoint(_JPEG_COLOUR, 95, "422"),
            },
            lossy=True,
        ),
        Preset(
            "preview",
            "~40:1 JPEG, NOT FOR DIAGNOSIS (the seed report's 'rate 100' point)",
            {
                "CT": OperatingPoint(_JPEG, 24),
                "CT-neuro": OperatingPoint(_JPEG, 55),
                "MR": OperatingPoint(_JPEG, 41),
                "CR": OperatingPoint(_JPEG, 41),
                "MG": OperatingPoint(_JPEG, 41),
                "*": OperatingPoint(_JPEG, 40),
                COLOUR: OperatingPoint(_JPEG_COLOUR, 40, "422"),
            },
            lossy=True,
            diagnostic=False,
        ),
    )
}

#: Pre-computed at ingest unless told otherwise.
DEFAULT_PRESETS: tuple[str, ...] = ("diagnostic", "preview")
