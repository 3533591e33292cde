"""One DICOM image: header, :class:`~medcodec.spec.PixelSpec` and stored pixels (decoded now or on demand).

The header is read with ``stop_before_pixels=True`` and the pixel element is checked from its
lengths before any decoding (truncation); pixels are decoded by pydicom's plugins and finished
by :func:`_finish` (shape, native byte order, high bits masked, sign extended, storage dtype).
See :mod:`medcodec.dicom.io` for the decisions (stored values only, memory, warnings, errors).
"""

from __future__ import annotations

import io
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import numpy as np
from numpy.typing import NDArray
from pydicom import dcmread
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import _at_pixel_data, _read_file_meta_info, read_dataset, read_preamble
from pydicom.pixels import iter_pixels, pixel_array
from pydicom.uid import DeflatedExplicitVRLittleEndian, MediaStorageDirectoryStorage, UID_dictionary

from ..errors import DicomError, InvalidInputError, NotAnImageError
from ..spec import PixelSpec, storage_dtype
from ._lenient import source_values_as_is
from .codestream import PIXEL_SUMMARY, SUMMARY_BYTES
from .limits import check_decoded_size, decoded_size, deflated_dataset_offset, inflate_dataset
from .pixel_spec import PIXEL_DATA_TAGS, spec_from_header, with_stored_syntax
from .sources import _SNIFF_BYTES, Source, ZipMember, _looks_like_dicom, _open_source, _source_name

__all__ = [
    "DicomImage",
    "read_image",
    "read_frame",
    "read_deflated",
    "peek_pixel_tag",
    "check_pixel_data",
    "check_native_length",
    "PIXEL_ELEMENTS",
]

_ITEM, _SEQUENCE_DELIMITER = 0xFFFEE000, 0xFFFEE0DD


@dataclass(eq=False)
class DicomImage:
    """One DICOM image (single- or multi-frame): header, pixel meaning and stored pixels.

    Parameters
    ----------
    path
        Where it came from; ``"archive.zip::member"`` for ZIP members.
    dataset
        The header as read by pydicom, without the pixel data element: everything else of
        the original, ready for :func:`medcodec.dicom.write.derive_dataset`.
    spec
        Meaning of the stored values.
    series_instance_uid, study_instance_uid, sop_instance_uid, modality
        Identifiers and modality (``""`` when absent).
    instance_number
        Instance Number (0020,0013), or ``None``.
    position
        Position along the slice normal in mm, or ``None`` without usable geometry.
    orientation
        Image Orientation (Patient) direction cosines, or ``None``.
    header_bytes
        The source file's bytes before Pixel Data (preamble, file meta, dataset), exactly
        as stored, or ``None`` (deflated files): what the ``.mdc`` ``dcmh`` segment carries.
    """

    path: str
    dataset: Dataset
    spec: PixelSpec
    series_instance_uid: str
    study_instance_uid: str
    sop_instance_uid: str
    instance_number: int | None
    position: float | None
    modality: str
    orientation: tuple[float, ...] | None = None
    header_bytes: bytes | None = field(default=None, repr=False)
    _source: Path | ZipMember | bytes | None = field(default=None, repr=False)
    _pixels: NDArray[np.integer] | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(frames, rows, cols)`` from the header."""
        extra = self.spec.extra
        return (int(extra["number_of_frames"]), int(extra["rows"]), int(extra["columns"]))

    @property
    def dtype(self) -> np.dtype:
        """The dtype of :attr:`pixels` (:func:`medcodec.spec.storage_dtype`)."""
        return storage_dtype(self.spec.bits_stored, self.spec.signed)

    @property
    def is_loaded(self) -> bool:
        """Whether decoded pixels are held in memory."""
        return self._pixels is not None

    @property
    def pixels(self) -> NDArray[np.integer]:
        """Stored values, ``(frames, rows, cols)``; decoded on first access, then cached.

        Raises
        ------
        DicomError
            The source can no longer be read or its pixel data cannot be decoded.
        """
        if self._pixels is None:
            self._pixels = self.decode()
        return self._pixels

    def decode(self) -> NDArray[np.integer]:
        """Stored values, ``(frames, rows, cols)``, without caching them.

        Raises
        ------
        DicomError
            The source can no longer be read or its pixel data cannot be decoded.
        """
        if self._pixels is not None:
            return self._pixels
        with _open_source(self._require_source(), self.path) as fp:
            return _decode(fp, self.spec, self.path)

    def iter_frames(self) -> Iterator[NDArray[np.integer]]:
        """Yield frames ``(rows, cols)`` one at a time, decoding them one at a time when not cached.

        Raises
        ------
        DicomError
            The source can no longer be read or its pixel data cannot be decoded.
        """
        if self._pixels is not None:
            yield from self._pixels
            return
        _, rows, cols = self.shape
        if _whole_dataset_needed(self.spec):
            # iter_pixels(fp) reads the raw file and finds no Pixel Data in the deflated stream (pydicom
            # 3.0), and no transfer syntax in a file without file meta: the frames come from one decode
            yield from self.decode()
            return
        with _open_source(self._require_source(), self.path) as fp:
            # pydicom annotates its generator as an Iterator; it is closed below
            frames = cast(Generator[NDArray[Any], None, None], iter_pixels(fp))
            try:
                while True:
                    try:
                        frame = next(frames)
                    except StopIteration:
                        return
                    except Exception as exc:  # any decoder/plugin failure
                        raise _decode_error(exc, self.spec, self.path) from exc
                    yield _finish(frame, self.spec, self.path, (1, rows, cols))[0]
            finally:
                frames.close()  # pydicom's generator restores the file position: close it while fp is open

    def release(self) -> None:
        """Drop cached pixels of a lazily read image (they are decoded again when needed)."""
        if self._source is not None:
            self._pixels = None

    def _require_source(self) -> Path | ZipMember | bytes:
        if self._source is None:  # pragma: no cover - eager images always hold pixels
            raise DicomError("pixels were released and the source cannot be reopened", path=self.path)
        return self._source


def read_image(source: Source, /, *, lazy: bool = False) -> DicomImage:
    """Read one DICOM image: header, :class:`~medcodec.spec.PixelSpec` and stored pixels.

    Parameters
    ----------
    source
        A path, a :class:`ZipMember`, the file's bytes, or a binary file-like object (its
        ``name``, if any, is used in messages).
    lazy
        Decode pixels only when :attr:`DicomImage.pixels` is first used. Honoured for paths
        and ZIP members; bytes and file-like sources are always decoded at once.

    Returns
    -------
    DicomImage

    Raises
    ------
    InputNotFoundError
        The path does not exist.
    NotAnImageError
        The file is DICOM but has no pixel data (SR, presentation state, DICOMDIR...).
    UnsupportedImageError
        Colour, palette, float or otherwise unsupported pixel data.
    DicomError
        Not a DICOM file, unreadable header, or pixel data that cannot be decoded.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> image = read_image(get_testdata_file("CT_small.dcm"))
    >>> image.pixels.shape, image.pixels.dtype.name, image.spec.bits_stored
    ((1, 128, 128), 'int16', 16)
    """
    reopenable: Path | ZipMember | bytes | None
    if isinstance(source, ZipMember):
        reopenable = source
    elif isinstance(source, (str, os.PathLike)):
        reopenable = Path(source)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        reopenable, lazy = None, False
    elif hasattr(source, "read"):
        reopenable, lazy = None, False
    else:
        raise InvalidInputError(
            f"cannot read DICOM from {type(source).__name__}: expected a path, ZipMember, bytes or binary file"
        )
    name = _source_name(source)
    with _open_source(source, name) as fp:
        ds, pixel_tag, raw_header = _read_header(fp, name)
        spec = spec_from_header(ds, pixel_tag=pixel_tag, path=name)
        pixels = None if lazy else _decode(fp, spec, name)
    image = _make_image(ds, spec, name, reopenable if lazy else None, pixels)
    image.header_bytes = raw_header
    return image


def read_frame(source: Source, index: int, /) -> NDArray[np.integer]:
    """Stored values of frame ``index`` (0-based) of a DICOM image, ``(rows, cols)``, decoded alone
    and finished as :func:`read_image` finishes them (high bits masked, sign extended, storage
    dtype). For one frame of a long multi-frame object (an enhanced CT of hundreds of frames, a
    viewer's scroll): :func:`read_image` decodes every frame. Lossless codestreams give every
    decoder's values, so the frame equals ``read_image(source).pixels[index]``.

    Raises
    ------
    InvalidInputError
        ``index`` is not a frame of the image.
    DicomError
        As :func:`read_image`.
    """
    name = _source_name(source)
    with _open_source(source, name) as fp:
        ds, pixel_tag, _ = _read_header(fp, name)
        spec = spec_from_header(ds, pixel_tag=pixel_tag, path=name)
        frames = int(spec.extra["number_of_frames"])
        if not 0 <= int(index) < frames:
            raise InvalidInputError(f"{name}: frame index {index} is not one of the image's {frames} (0-based)")
        shape = (1, int(spec.extra["rows"]), int(spec.extra["columns"]))
        arr = _pixel_array(fp, spec, name, int(index))
    return _finish(arr, spec, name, shape)[0]


#: Bytes read to see a PS3.10 file's transfer syntax in its file meta (group 0002).
_DEFLATE_PROBE = 4096


def read_deflated(data: bytes, name: str, *, stop_before_pixels: bool) -> tuple[FileDataset, io.BytesIO] | None:
    """A Deflated Explicit VR Little Endian PS3.10 file (``data``, whole) read from one bounded
    inflate (:func:`~medcodec.dicom.limits.inflate_dataset`), or None for any other file.

    Returns the dataset (its file meta as stored, so it still names the deflated syntax; without the
    pixel data element when ``stop_before_pixels``) and the inflated dataset as a file positioned where
    the read stopped: positions, like :func:`peek_pixel_tag`'s, are in the inflated stream. pydicom's
    own reader inflates the whole dataset on every read, even for the header only.

    Raises
    ------
    ImageTooLargeError, DicomError
        As :func:`~medcodec.dicom.limits.inflate_dataset`.
    """
    inflated = inflate_dataset(data, path=name)
    if inflated is None:
        return None
    fp = io.BytesIO(data)
    preamble = read_preamble(fp, False)
    meta = _read_file_meta_info(fp)
    body = io.BytesIO(inflated)
    del inflated  # the file holds it
    found = read_dataset(body, False, True, stop_when=_at_pixel_data if stop_before_pixels else None)
    ds = FileDataset(body, found, preamble, meta, is_implicit_VR=False, is_little_endian=True)
    ds.set_original_encoding(False, True, found._character_set)
    ds.buffer = None
    ds.filename = name
    return ds, body


def _read_header(fp: BinaryIO, name: str) -> tuple[Dataset, int | None, bytes | None]:
    """Header without pixel data, the tag of the pixel data element that follows (if any), and
    the file's own bytes up to that element (``None`` when they cannot stand alone: deflated)."""
    start = fp.tell()
    deflated = deflated_dataset_offset(fp.read(_DEFLATE_PROBE)) is not None
    fp.seek(start)
    try:
        if deflated:  # one bounded inflate, the header parsed from it (pydicom would inflate it all)
            ds, body = cast(tuple[FileDataset, io.BytesIO], read_deflated(fp.read(), name, stop_before_pixels=True))
            pixel_tag = peek_pixel_tag(body, ds)
            if pixel_tag is not None:
                _check_pixel_element(body, ds, name)
            return _finish_header(ds, name), pixel_tag, None
        try:
            ds = dcmread(fp, stop_before_pixels=True)
        except InvalidDicomError:
            fp.seek(start)
            head = fp.read(_SNIFF_BYTES)
            if not _looks_like_dicom(head):
                raise DicomError("not a DICOM file (no 'DICM' prefix at byte 128, PS3.10 §7.1)", path=name) from None
            fp.seek(start)
            ds = dcmread(fp, force=True, stop_before_pixels=True)
        pixel_tag = peek_pixel_tag(fp, ds)
        raw_header: bytes | None = None
        if pixel_tag is not None:
            items: list[tuple[int, int]] = []
            _check_pixel_element(fp, ds, name, items=items)
            pixel_at = fp.tell()
            if len(items) > 1:  # encapsulated: what its lossiness and ratio need, the header lacking the pixels
                fp.seek(items[1][0])
                first = fp.read(min(items[1][1], SUMMARY_BYTES))
                setattr(ds, PIXEL_SUMMARY, (first, sum(length for _, length in items[1:])))
            fp.seek(start)
            raw_header = fp.read(pixel_at - start)
            fp.seek(pixel_at)
    except DicomError:
        raise
    except Exception as exc:  # pydicom raises many kinds on malformed input
        raise DicomError(f"cannot read DICOM header: {type(exc).__name__}: {exc}", path=name) from exc
    return _finish_header(ds, name), pixel_tag, raw_header


def _finish_header(ds: Dataset, name: str) -> Dataset:
    ds.buffer = None  # do not keep the source bytes alive through the header
    ds.filename = name
    if ds.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
        raise NotAnImageError("a DICOMDIR (Media Storage Directory): pass it to read_series to follow it", path=name)
    return ds


def peek_pixel_tag(fp: BinaryIO, ds: Dataset) -> int | None:
    """Tag of the element ``stop_before_pixels`` stopped at (the reader rewinds to it), or None at EOF.

    The file position is left at the start of that element.
    """
    raw = fp.read(4)
    fp.seek(-len(raw), os.SEEK_CUR)
    if len(raw) < 4:
        return None
    little = ds.original_encoding[1] is not False
    order: Literal["little", "big"] = "little" if little else "big"
    tag = (int.from_bytes(raw[:2], order) << 16) | int.from_bytes(raw[2:], order)
    return tag if tag in PIXEL_DATA_TAGS else None


_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"))


#: The pixel data elements, by tag (PS3.3 C.7.6.3, C.7.6.24).
PIXEL_ELEMENTS = {
    0x7FE00010: "(7FE0,0010) Pixel Data",
    0x7FE00008: "(7FE0,0008) Float Pixel Data",
    0x7FE00009: "(7FE0,0009) Double Float Pixel Data",
}


def _pixel_element_name(tag: int) -> str:
    return PIXEL_ELEMENTS.get(tag, f"({tag >> 16:04X},{tag & 0xFFFF:04X})")


def _check_pixel_element(
    fp: BinaryIO, ds: Dataset, name: str, tag: int = 0x7FE00010, *, items: list[tuple[int, int]] | None = None
) -> int | None:
    """Check the pixel data element at the file position is complete, without reading its value;
    return its defined length (``None``: encapsulated, undefined length).

    ``tag``: the element's, (7FE0,0010) Pixel Data or (7FE0,0008) / (7FE0,0009) Float / Double
    Float Pixel Data. Some decoders return garbage, not an error, for a truncated codestream
    (pylibjpeg-libjpeg on JPEG-LS does), so truncation is caught here: a defined length must fit in the file, and
    encapsulated data must be a chain of complete Items ending with a Sequence Delimitation
    Item (PS3.5 §7.5, §A.4). Only item headers are read; the position is restored. ``items``, when
    given, gets each Item's (value offset, length), the Basic Offset Table first.
    """
    what = _pixel_element_name(tag)
    start = fp.tell()
    end = fp.seek(0, os.SEEK_END)
    fp.seek(start)
    implicit, little = ds.original_encoding
    order: Literal["little", "big"] = "big" if little is False else "little"
    head = fp.read(8)
    if len(head) < 8:
        raise DicomError(f"truncated: the file ends inside the {what} element header", path=name)
    vr = head[4:6]
    if implicit or not (vr.isalpha() and vr.isupper()):
        # implicit VR, also where the file meta says otherwise: a JPEG syntax over an implicit data
        # set, an unknown syntax (read as explicit, written implicit), as pydicom finds when it reads
        length, pos = int.from_bytes(head[4:8], order), start + 8
    elif vr in _LONG_VRS:
        more = fp.read(4)
        if len(more) < 4:
            raise DicomError(f"truncated: the file ends inside the {what} element header", path=name)
        length, pos = int.from_bytes(more, order), start + 12
    else:
        length, pos = int.from_bytes(head[6:8], order), start + 8
    if length != 0xFFFFFFFF:
        if pos + length > end:
            raise DicomError(f"truncated: {what} declares {length} bytes, {end - pos} available", path=name)
        fp.seek(start)
        return length
    while True:
        fp.seek(pos)
        item = fp.read(8)
        if len(item) < 8:
            raise DicomError(
                f"truncated: encapsulated {what} ends without a Sequence Delimitation Item (PS3.5 §A.4)",
                path=name,
            )
        tag = (int.from_bytes(item[:2], "little") << 16) | int.from_bytes(item[2:4], "little")
        item_length = int.from_bytes(item[4:], "little")
        if tag == _SEQUENCE_DELIMITER:
            break
        if tag != _ITEM:
            raise DicomError(
                f"encapsulated {what}: expected an Item (FFFE,E000) at byte offset {pos}, "
                f"found ({tag >> 16:04X},{tag & 0xFFFF:04X}) (PS3.5 §A.4)",
                path=name,
            )
        if items is not None:
            items.append((pos + 8, item_length))
        pos += 8 + item_length
        if pos > end:
            raise DicomError(
                f"truncated: a Pixel Data fragment ends at byte offset {pos}, the file has {end} bytes", path=name
            )
    fp.seek(start)
    return None


def check_pixel_data(fp: BinaryIO, ds: Dataset, name: str, tag: int = 0x7FE00010) -> None:
    """Refuse a file whose pixel data element ``tag`` ((7FE0,0010) Pixel Data, (7FE0,0008) Float or
    (7FE0,0009) Double Float Pixel Data), at the file position, is not all there: cut short by
    the end of the file (an interrupted copy or transfer; :func:`_check_pixel_element`), or native
    data shorter than Rows x Columns x Samples per Pixel x Number of Frames x Bits Allocated need
    (PS3.5 §8.1.1, §8.2; 4:2:2 YBR: two samples a pixel). Only element and item headers are read;
    the position is restored. For ingest, which keeps files byte for byte: a damaged copy stored
    first would make the complete one a conflict.

    Raises
    ------
    DicomError
        What is missing, in bytes.
    """
    length = _check_pixel_element(fp, ds, name, tag)
    if length is not None:
        check_native_length(ds, length, name, tag)


def check_native_length(ds: Dataset, length: int, name: str, tag: int = 0x7FE00010) -> None:
    """Refuse native pixel data (element ``tag``, as :func:`check_pixel_data`) of ``length`` bytes
    shorter than Rows x Columns x Samples per Pixel x Number of Frames x Bits Allocated need (4:2:2
    YBR: two samples a pixel); nothing to say when the dimensions are not all there.

    Raises
    ------
    DicomError
        The bytes held and needed.
    """
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits = int(ds.BitsAllocated)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):  # no usable dimensions: nothing to compare with
        return
    if min(rows, cols, bits, samples, frames) <= 0:
        return
    if samples == 3 and str(ds.get("PhotometricInterpretation", "")).strip().endswith("_422"):
        samples = 2  # YBR_FULL_422: two luminance, one Cb and one Cr sample per pair of pixels (PS3.3 C.7.6.3.1.2)
    needed = (rows * cols * samples * frames * bits + 7) // 8
    if length < needed:
        raise DicomError(
            f"incomplete: {_pixel_element_name(tag)} holds {length} bytes, {frames} frame(s) of {rows} x {cols} x "
            f"{samples} sample(s) at {bits} bits allocated need {needed} (PS3.5 §8.1.1)",
            path=name,
        )


def _decode(fp: BinaryIO, spec: PixelSpec, name: str) -> NDArray[np.integer]:
    frames = int(spec.extra["number_of_frames"])
    shape = (frames, int(spec.extra["rows"]), int(spec.extra["columns"]))
    bits = max(int(spec.extra.get("bits_allocated") or 16), 8 * storage_dtype(spec.bits_stored, spec.signed).itemsize)
    check_decoded_size(decoded_size(*shape[1:], frames, 1, bits), path=name)
    if has_frame_decoder(str(spec.extra.get("transfer_syntax_uid", ""))):
        fp.seek(0)
        try:
            ds = dcmread(fp)
            arr = exact_frames(ds.PixelData, str(ds.file_meta.TransferSyntaxUID), shape)
        except Exception:
            arr = None
        if arr is not None:
            return _finish(arr, spec, name, shape)
    return _finish(_pixel_array(fp, spec, name), spec, name, shape)


def _pixel_array(fp: BinaryIO, spec: PixelSpec, name: str, index: int | None = None) -> NDArray[Any]:
    """pydicom's decode of the file ``fp`` (every frame, or frame ``index``), its errors ours."""
    fp.seek(0)
    try:
        if spec.extra.get("transfer_syntax_uid") == DeflatedExplicitVRLittleEndian:
            # pixel_array(fp) reads the raw file and finds no Pixel Data in the deflated stream
            # (pydicom 3.0): the dataset read whole, from one bounded inflate
            whole = read_deflated(fp.read(), name, stop_before_pixels=False)
            if whole is None:
                raise DicomError("the transfer syntax says deflated, the file meta does not", path=name)
            full = whole[0]
            del whole  # the inflated dataset: its pixel data is a copy in ``full`` now
            return np.asarray(pixel_array(full, index=index))
        if not spec.extra.get("syntax_in_file_meta", True):  # no file meta: the syntax its bytes are in
            with source_values_as_is():
                told = with_stored_syntax(dcmread(fp, force=True))
            return np.asarray(pixel_array(told, index=index))
        return np.asarray(pixel_array(fp, index=index))
    except DicomError:  # the inflate's own (too large, damaged)
        raise
    except Exception as exc:  # any decoder/plugin failure
        raise _decode_error(exc, spec, name) from exc


def _whole_dataset_needed(spec: PixelSpec) -> bool:
    """pydicom cannot iterate the frames of the file itself: deflated, or without file meta."""
    deflated = spec.extra.get("transfer_syntax_uid") == DeflatedExplicitVRLittleEndian
    return deflated or not spec.extra.get("syntax_in_file_meta", True)


def has_frame_decoder(uid: str) -> bool:
    """The registry names a decoder for one frame of ``uid`` (:func:`exact_frames` may apply)."""
    from ..registry import TRANSFER_SYNTAXES

    syntax = TRANSFER_SYNTAXES.get(uid)
    return syntax is not None and syntax.frame_decoder is not None


def exact_frames(pixel_data: bytes, uid: str, shape: tuple[int, int, int]) -> NDArray[np.integer] | None:
    """The frames of encapsulated grayscale ``pixel_data`` decoded one fragment set at a time by the
    registry's ``frame_decoder`` for ``uid`` (lossless JPEG by libjpeg-turbo, JPEG-LS by CharLS:
    the values every conforming decoder gives, several times faster than pydicom's plugins), as
    ``shape`` ``(frames, rows, columns)`` arrays as the codestreams hold them (no masking yet).

    ``None`` when the syntax has no such decoder, its library is missing, or anything does not
    fit (fragments, shape, dtype, a library error): the caller then asks pydicom, whose error
    messages are the ones to report."""
    from pydicom.encaps import generate_frames

    from ..registry import TRANSFER_SYNTAXES, backend

    syntax = TRANSFER_SYNTAXES.get(uid)
    if syntax is None or syntax.frame_decoder is None:
        return None
    codec = backend(syntax.frame_decoder)
    if not codec.is_available():
        return None
    frames, rows, cols = shape
    out: NDArray[np.integer] | None = None
    count = 0
    try:
        for count, fragment in enumerate(generate_frames(pixel_data, number_of_frames=frames), start=1):
            if count > frames:
                return None
            arr = np.asarray(codec.decode(fragment))
            if arr.shape != (rows, cols) or arr.dtype.kind not in "ui" or (out is not None and arr.dtype != out.dtype):
                return None
            if out is None:
                out = np.empty(shape, dtype=arr.dtype)
            out[count - 1] = arr
    except Exception:  # a library's or pydicom's own error: pydicom tries and reports
        return None
    return out if count == frames else None


def _decode_error(exc: Exception, spec: PixelSpec, name: str) -> DicomError:
    uid = str(spec.extra.get("transfer_syntax_uid", ""))
    syntax = UID_dictionary[uid][0] if uid in UID_dictionary else (uid or "unknown transfer syntax")
    return DicomError(f"cannot decode (7FE0,0010) Pixel Data ({syntax}): {type(exc).__name__}: {exc}", path=name)


def _finish(arr: np.ndarray, spec: PixelSpec, name: str, shape: tuple[int, int, int]) -> NDArray[np.integer]:
    """Shape ``(frames, rows, cols)``, native byte order, high bits masked, sign extended, storage dtype."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.shape != shape:
        raise DicomError(f"decoded pixel data has shape {arr.shape}, the header says {shape}", path=name)
    if arr.dtype.kind not in "ui":
        raise DicomError(f"decoded pixel data has dtype {arr.dtype}, expected integers", path=name)
    lo, hi = spec.min_value, spec.max_value
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        # PS3.5 §8.1.1: bits above Bits Stored are not part of the value.
        work = arr.astype(np.int32) & ((1 << spec.bits_stored) - 1)
        if spec.signed:
            sign = 1 << (spec.bits_stored - 1)
            work = (work ^ sign) - sign
        arr = work
    return arr.astype(storage_dtype(spec.bits_stored, spec.signed), copy=False)


def _make_image(
    ds: Dataset,
    spec: PixelSpec,
    name: str,
    source: Path | ZipMember | bytes | None,
    pixels: NDArray[np.integer] | None,
) -> DicomImage:
    with source_values_as_is():
        orientation, position = _geometry(ds)
    return DicomImage(
        path=name,
        dataset=ds,
        spec=spec,
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        instance_number=_instance_number(ds),
        position=position,
        modality=_text(ds, "Modality"),
        orientation=orientation,
        _source=source,
        _pixels=pixels,
    )


def _text(ds: Dataset, keyword: str) -> str:
    try:
        with source_values_as_is():  # identifiers are carried as they are (see ._lenient)
            value = ds.get(keyword)
    except Exception:  # malformed optional attribute: treat as absent
        return ""
    return "" if value is None else str(value).strip()


def _instance_number(ds: Dataset) -> int | None:
    try:
        with source_values_as_is():
            value = ds.get("InstanceNumber")
        return None if value is None or value == "" else int(value)
    except Exception:  # malformed IS: treat as absent, sorting falls back to the path
        return None


def _geometry(ds: Dataset) -> tuple[tuple[float, ...] | None, float | None]:
    """Direction cosines and position along the slice normal (PS3.3 C.7.6.2.1.1).

    Enhanced multi-frame objects use the first frame's Plane Position and the shared (else
    first per-frame) Plane Orientation functional groups. Malformed geometry gives ``None``.
    """
    try:
        iop = ds.get("ImageOrientationPatient")
        ipp = ds.get("ImagePositionPatient")
        groups = [
            seq[0]
            for kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
            if (seq := ds.get(kw))
        ]
        for group in groups:
            if iop is None and group.get("PlaneOrientationSequence"):
                iop = group.PlaneOrientationSequence[0].get("ImageOrientationPatient")
            if ipp is None and group.get("PlanePositionSequence"):
                ipp = group.PlanePositionSequence[0].get("ImagePositionPatient")
        if iop is None or len(iop) != 6:
            return None, None
        cosines = np.array([float(v) for v in iop])
        normal = np.cross(cosines[:3], cosines[3:])
        norm = float(np.linalg.norm(normal))
        if not np.isfinite(norm) or norm < 1e-6:
            return None, None
        orientation = tuple(float(v) for v in cosines)
        if ipp is None or len(ipp) != 3:
            return orientation, None
        position = float(np.dot([float(v) for v in ipp], normal / norm))
        return orientation, position if np.isfinite(position) else None
    except Exception:  # geometry is optional: fall back to Instance Number
        return None, None
