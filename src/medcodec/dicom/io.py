"""Read DICOM images and series from files, folders, ZIP archives and DICOMDIRs.

Flow::

    inputs ──iter_sources──▶ sources (Path | ZipMember | bytes | file-like)
           ──read_image────▶ DicomImage (header + PixelSpec; pixels decoded now or on demand)
           ──read_series───▶ SeriesSet(series=[Series, ...], failures=[(path, error), ...])

Decisions
---------
* **Stored values only.** Pixels are what the file stores: no rescale, no VOI LUT, no
  lossy step. They come back as ``(frames, rows, cols)`` in
  :func:`medcodec.spec.storage_dtype` (``uint8``/``int8`` up to 8 bits, else
  ``uint16``/``int16``, native byte order, big-endian files included). Bits above Bits
  Stored are masked off and signed data is sign-extended from bit ``BitsStored - 1``
  (PS3.5 §8.1.1: unused high bits are to be ignored). pydicom 3 already does this for
  native data; :func:`_finish` repeats it for every decoder, so the range
  ``[spec.min_value, spec.max_value]`` is a guarantee, not a hope.
* **Decoding** goes through :func:`pydicom.pixels.pixel_array` / :func:`~pydicom.pixels.iter_pixels`
  on the open file, which pick an installed plugin (pylibjpeg-libjpeg, -openjpeg, -rle, or
  GDCM when present) for JPEG lossless/extended, JPEG-LS, JPEG 2000 and RLE.
* **Memory.** The header is read with ``stop_before_pixels=True``; whether a pixel data
  element follows is learned by peeking at the element the reader stopped at. The
  :class:`DicomImage` dataset therefore never holds Pixel Data. :func:`read_image` decodes
  at once by default; ``lazy=True`` (the default of :func:`read_series`) keeps only the
  header and decodes from the source on demand. :attr:`DicomImage.pixels` decodes and caches
  (like ``Dataset.pixel_array``); :meth:`DicomImage.decode` and
  :meth:`DicomImage.iter_frames` never cache, so :meth:`Series.iter_frames` holds one frame
  at a time and :meth:`Series.pixels` holds one stacked copy. Lazy decoding needs a source
  that can be reopened: paths and ZIP members. Bytes and file-like objects are decoded
  eagerly.
* **Warnings.** pydicom's value-validation warnings on identifiers and geometry (a hash as
  SOP Instance UID, an over-long SH) are silenced where medcodec reads them: those values
  are carried, not judged (:mod:`medcodec.dicom._lenient`). Pixel-module attributes are not
  silenced.
* **Errors.** Every failure is a :class:`~medcodec.errors.DicomError` subclass carrying
  the path (ZIP members are named ``"archive.zip::member"``); pydicom and plugin
  exceptions are wrapped, never leaked. :func:`read_series` collects failures and goes on
  (``on_error="collect"``), or raises the first (``on_error="raise"``). Non-image DICOM
  files found in a folder (SR, presentation states) are reported as
  :class:`~medcodec.errors.NotAnImageError` failures so nothing is dropped silently.
  Truncation is checked from the pixel element's lengths before decoding
  (:func:`_check_pixel_element`), because pylibjpeg-libjpeg returns garbage, not an
  error, for a truncated JPEG-LS stream.
* **Finding files.** Folders are walked recursively in sorted order; hidden files and
  folders, ``__MACOSX``, and files with an obviously non-DICOM extension (``.md``, ``.txt``,
  ``.json``, images, ...) are skipped. Other files, with or without an extension, are kept
  when they carry the ``DICM`` prefix (PS3.10 §7.1) or, for preamble-less files, when they
  start with a group 0002/0008 element and pydicom parses them with ``force=True``.
  A folder walk skips files named ``DICOMDIR`` (the walk finds their referenced files
  anyway); a DICOMDIR given explicitly is followed (PS3.10 §8, Referenced File ID).
  ``.zip`` files are read member by member, never extracted to disk.
* **Series.** Images are grouped by Series Instance UID, then split when Rows, Columns,
  Bits Stored, signedness or photometric interpretation differ (the codec needs one shape
  and one value range per stack). Within a series, images are sorted by ascending position
  along the slice normal (Image Position (Patient) · (row × column direction cosines), PS3.3
  C.7.6.2.1.1) when every image has one and all share an orientation, else by Instance
  Number, then by path.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
import zipfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import numpy as np
from numpy.typing import NDArray
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import iter_pixels, pixel_array
from pydicom.uid import DeflatedExplicitVRLittleEndian, MediaStorageDirectoryStorage, UID_dictionary

from ..errors import DicomError, InputNotFoundError, InvalidInputError, NotAnImageError
from ..progress import ProgressCallback, check_progress, tracked
from ..spec import PixelSpec, storage_dtype
from ._lenient import source_values_as_is
from .pixel_spec import PIXEL_DATA_TAGS, spec_from_header

__all__ = [
    "DicomImage",
    "Series",
    "SeriesSet",
    "ZipMember",
    "Source",
    "read_image",
    "read_series",
    "iter_sources",
]

#: File extensions a folder walk never tries as DICOM.
NON_DICOM_SUFFIXES = frozenset(
    ".md .txt .rst .json .csv .tsv .xml .html .htm .pdf .py .ini .cfg .yaml .yml .log .sh .bat "
    ".png .jpg .jpeg .gif .bmp .tif .tiff .svg .nii .nrrd .mha .mhd .raw .npy .npz .gz .bz2 .xz "
    ".7z .tar .exe .dll .so .ds_store".split()
)
_DICOM_PREFIX_OFFSET = 128
_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class ZipMember:
    """One member of a ZIP archive, read in memory when needed (never extracted to disk).

    Parameters
    ----------
    archive
        Path of the ``.zip`` file.
    member
        Name of the member inside the archive.
    """

    archive: Path
    member: str

    @property
    def name(self) -> str:
        """``"archive.zip::member"``, the path used in messages and :attr:`DicomImage.path`."""
        return f"{self.archive}::{self.member}"

    def read_bytes(self) -> bytes:
        """The member's content.

        Raises
        ------
        InputNotFoundError
            The archive or the member does not exist.
        DicomError
            The archive cannot be read.
        """
        try:
            with zipfile.ZipFile(self.archive) as zf:
                return zf.read(self.member)
        except FileNotFoundError as exc:
            raise InputNotFoundError("ZIP archive does not exist", path=self.archive) from exc
        except KeyError as exc:
            raise InputNotFoundError("no such member in the ZIP archive", path=self.name) from exc
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            raise DicomError(f"cannot read ZIP member: {exc}", path=self.name) from exc


#: Anything :func:`read_image` accepts.
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | ZipMember


# --------------------------------------------------------------------------- images


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


# --------------------------------------------------------------------------- series


@dataclass(eq=False)
class Series:
    """The images of one series with one shape and value range, sorted along the slice normal.

    Parameters
    ----------
    series_instance_uid
        Series Instance UID (``""`` when the files have none). Two :class:`Series` share it
        when one DICOM series had to be split because image sizes or bit depths differ.
    images
        Sorted images.
    """

    series_instance_uid: str
    images: list[DicomImage]

    def __len__(self) -> int:
        """Number of images (instances); :attr:`n_frames` counts frames."""
        return len(self.images)

    def __iter__(self) -> Iterator[DicomImage]:
        return iter(self.images)

    @property
    def modality(self) -> str:
        return self.images[0].modality

    @property
    def description(self) -> str:
        """Series Description (0008,103E), or ``""``."""
        return _text(self.images[0].dataset, "SeriesDescription")

    @property
    def study_instance_uid(self) -> str:
        return self.images[0].study_instance_uid

    @property
    def specs(self) -> list[PixelSpec]:
        """The per-image specs (they differ only in rescale and window)."""
        return [image.spec for image in self.images]

    @property
    def rescale_varies(self) -> bool:
        """True when images disagree on Rescale Slope/Intercept (per image or per frame)."""
        pairs = {(s.rescale_slope, s.rescale_intercept) for s in self.specs}
        return len(pairs) > 1 or any(s.extra.get("rescale_varies_per_frame") for s in self.specs)

    @property
    def spec(self) -> PixelSpec:
        """The common spec: bits, sign and photometric are equal for all images by construction.

        Rescale and window are the first image's. When :attr:`rescale_varies`, the returned
        spec has ``extra["rescale_varies"] = True`` and its rescale is right for the first
        image only: use :attr:`specs` for per-image output units.
        """
        first = self.images[0].spec
        if self.rescale_varies:
            return first.replace(extra={**first.extra, "rescale_varies": True})
        return first

    @property
    def n_frames(self) -> int:
        return sum(image.shape[0] for image in self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(frames, rows, cols)`` of :meth:`pixels`."""
        _, rows, cols = self.images[0].shape
        return (self.n_frames, rows, cols)

    @property
    def positions(self) -> list[float | None]:
        """Position of each image along the slice normal (mm), in series order."""
        return [image.position for image in self.images]

    @property
    def source_files(self) -> list[str]:
        """Paths of the files on disk the images came from (ZIP members left out): what no
        output may overwrite."""
        return [image.path for image in self.images if "::" not in image.path]

    def pixels(self) -> NDArray[np.integer]:
        """All frames stacked, ``(frames, rows, cols)``: one copy, filled frame by frame.

        Raises
        ------
        DicomError
            A source cannot be read or decoded.
        """
        out = np.empty(self.shape, dtype=self.images[0].dtype)
        index = 0
        for frame in self.iter_frames():
            out[index] = frame
            index += 1
        return out

    def iter_frames(self) -> Iterator[NDArray[np.integer]]:
        """Yield ``(rows, cols)`` frames in series order, decoding one at a time (bounded memory).

        Raises
        ------
        DicomError
            A source cannot be read or decoded.
        """
        for image in self.images:
            yield from image.iter_frames()


@dataclass
class SeriesSet:
    """What :func:`read_series` found: series, and the inputs that failed, with their errors."""

    series: list[Series] = field(default_factory=list)
    failures: list[tuple[str, Exception]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.series)

    def __iter__(self) -> Iterator[Series]:
        return iter(self.series)

    @property
    def source_files(self) -> list[str]:
        """:attr:`Series.source_files` of every series."""
        return [path for series in self.series for path in series.source_files]


def read_series(
    inputs: Source | Iterable[Source],
    *,
    on_error: Literal["collect", "raise"] = "collect",
    progress: ProgressCallback | None = None,
    lazy: bool = True,
) -> SeriesSet:
    """Read files, folders, ZIPs and DICOMDIRs, group the images into sorted series.

    Parameters
    ----------
    inputs
        One input or several (see :func:`iter_sources`).
    on_error
        ``"collect"``: record ``(path, error)`` in :attr:`SeriesSet.failures` and go on;
        ``"raise"``: raise the first error.
    progress
        ``progress(files_read, total_files)`` after each file (:mod:`medcodec.progress`).
    lazy
        Read headers only and decode pixels on demand (see the module docstring).

    Returns
    -------
    SeriesSet

    Raises
    ------
    DicomError
        With ``on_error="raise"``, the first input that cannot be read (including
        :class:`~medcodec.errors.InputNotFoundError`).
    InvalidInputError
        ``on_error`` is neither ``"collect"`` nor ``"raise"``.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> found = read_series([get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm")])
    >>> [len(s) for s in found.series], found.failures
    ([1, 1], [])
    """
    if on_error not in ("collect", "raise"):
        raise InvalidInputError(f"on_error={on_error!r} is invalid, expected 'collect' or 'raise'")
    progress = check_progress(progress)
    result = SeriesSet()

    def fail(where: str, exc: DicomError) -> None:
        if on_error == "raise":
            raise exc
        result.failures.append((where, exc))

    sources: list[Source] = []
    seen: set[str] = set()
    for item in _as_inputs(inputs):
        try:
            for source in iter_sources([item]):
                key = _source_name(source)
                if isinstance(source, (Path, ZipMember)):
                    if key in seen:
                        continue
                    seen.add(key)
                sources.append(source)
        except DicomError as exc:
            fail(exc.path or _source_name(item), exc)

    images: list[DicomImage] = []
    for source in tracked(sources, progress, total=len(sources)):
        try:
            images.append(read_image(source, lazy=lazy))
        except DicomError as exc:
            fail(exc.path or _source_name(source), exc)
    result.series = _group(images)
    return result


# --------------------------------------------------------------------------- finding sources


def iter_sources(inputs: Source | Iterable[Source]) -> Iterator[Source]:
    """Expand inputs into readable sources.

    Parameters
    ----------
    inputs
        A path or several: a DICOM file (always yielded, whatever its name), a folder
        (walked recursively, see the module docstring), a ``.zip`` (one :class:`ZipMember`
        per DICOM member), a DICOMDIR (its referenced files). :class:`ZipMember`, bytes and
        file-like objects pass through unchanged.

    Yields
    ------
    pathlib.Path or ZipMember or bytes or file-like

    Raises
    ------
    InputNotFoundError
        An input path does not exist.
    DicomError
        A ZIP archive or DICOMDIR cannot be read.
    """
    for item in _as_inputs(inputs):
        if isinstance(item, (ZipMember, bytes, bytearray, memoryview)) or hasattr(item, "read"):
            yield item
            continue
        path = Path(item)
        if not path.exists():
            raise InputNotFoundError("input does not exist", path=path)
        if path.is_dir():
            yield from _walk(path)
        elif path.suffix.lower() == ".zip":
            yield from _zip_members(path)
        elif path.name.upper() == "DICOMDIR":
            yield from _dicomdir_files(path)
        else:
            yield path


def _as_inputs(inputs: Source | Iterable[Source]) -> list[Source]:
    if isinstance(inputs, (str, os.PathLike, bytes, bytearray, memoryview, ZipMember)) or hasattr(inputs, "read"):
        return [inputs]  # type: ignore[list-item]
    return list(inputs)


def _walk(folder: Path) -> Iterator[Source]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        for name in sorted(files):
            path = Path(root, name)
            if _hidden(name) or name.upper() == "DICOMDIR":
                continue
            if path.suffix.lower() == ".zip":
                yield from _zip_members(path)
            elif path.suffix.lower() not in NON_DICOM_SUFFIXES and _sniff_file(path):
                yield path


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _sniff_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return _looks_like_dicom(fh.read(_SNIFF_BYTES))
    except OSError:
        return True  # let read_image report the problem with the path


def _looks_like_dicom(head: bytes) -> bool:
    """``DICM`` at offset 128 (PS3.10 §7.1), or a preamble-less dataset pydicom can parse."""
    if head[_DICOM_PREFIX_OFFSET : _DICOM_PREFIX_OFFSET + 4] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group_le = int.from_bytes(head[:2], "little")
    group_be = int.from_bytes(head[:2], "big")
    if group_le not in (0x0002, 0x0008) and group_be != 0x0008:
        return False
    try:
        with warnings.catch_warnings():  # probing arbitrary bytes: pydicom's complaints are expected
            warnings.simplefilter("ignore")
            ds = dcmread(io.BytesIO(head), force=True, stop_before_pixels=True)
        return len(ds) > 0
    except Exception:
        return False


def _zip_members(archive: Path) -> Iterator[ZipMember]:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = sorted(zf.infolist(), key=lambda info: info.filename)
            for info in infos:
                parts = info.filename.split("/")
                name = parts[-1]
                if info.is_dir() or any(_hidden(p) for p in parts) or name.upper() == "DICOMDIR":
                    continue
                suffix = Path(name).suffix.lower()
                if suffix in NON_DICOM_SUFFIXES or suffix == ".zip":
                    continue
                with zf.open(info) as fh:
                    head = fh.read(_SNIFF_BYTES)
                if _looks_like_dicom(head):
                    yield ZipMember(archive, info.filename)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        raise DicomError(f"cannot read ZIP archive: {exc}", path=archive) from exc


def _dicomdir_files(dicomdir: Path) -> Iterator[Path]:
    """Files referenced by a DICOMDIR's directory records (PS3.3 F.3.2.2, (0004,1500))."""
    try:
        ds = dcmread(dicomdir, stop_before_pixels=True)
        records = list(ds.get("DirectoryRecordSequence") or [])
        file_ids = [record.get("ReferencedFileID") for record in records]
    except Exception as exc:
        raise DicomError(f"cannot read DICOMDIR: {exc}", path=dicomdir) from exc
    if "DirectoryRecordSequence" not in ds:
        raise DicomError("(0004,1220) Directory Record Sequence is missing: not a DICOMDIR", path=dicomdir)
    seen: set[Path] = set()
    for file_id in file_ids:
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else [str(p) for p in file_id]
        path = _resolve_case(dicomdir.parent, parts)
        if path not in seen:
            seen.add(path)
            yield path


def _resolve_case(base: Path, parts: list[str]) -> Path:
    """Join File ID components, matching case-insensitively when the exact name is absent."""
    path = base
    for part in parts:
        candidate = path / part
        if not candidate.exists() and path.is_dir():
            matches = [p for p in path.iterdir() if p.name.upper() == part.upper()]
            if matches:
                candidate = matches[0]
        path = candidate
    return path


# --------------------------------------------------------------------------- reading


def _source_name(source: Any) -> str:
    if isinstance(source, ZipMember):
        return source.name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    return str(getattr(source, "name", None) or "<stream>")


@contextlib.contextmanager
def _open_source(source: Any, name: str) -> Iterator[BinaryIO]:
    """A seekable binary file for any source, with I/O errors as DicomError subclasses."""
    if isinstance(source, ZipMember):
        yield io.BytesIO(source.read_bytes())
    elif isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            fh = open(path, "rb")
        except FileNotFoundError as exc:
            raise InputNotFoundError("input does not exist", path=name) from exc
        except IsADirectoryError as exc:
            raise DicomError("is a folder, not a file: use read_series or iter_sources", path=name) from exc
        except OSError as exc:
            raise DicomError(f"cannot open: {exc}", path=name) from exc
        with fh:
            yield fh
    else:
        try:
            seekable = source.seekable()
        except Exception:
            seekable = False
        yield source if seekable else io.BytesIO(source.read())


def _read_header(fp: BinaryIO, name: str) -> tuple[Dataset, int | None, bytes | None]:
    """Header without pixel data, the tag of the pixel data element that follows (if any), and
    the file's own bytes up to that element (``None`` when they cannot stand alone: deflated)."""
    start = fp.tell()
    try:
        try:
            ds = dcmread(fp, stop_before_pixels=True)
        except InvalidDicomError:
            fp.seek(start)
            head = fp.read(_SNIFF_BYTES)
            if not _looks_like_dicom(head):
                raise DicomError("not a DICOM file (no 'DICM' prefix at byte 128, PS3.10 §7.1)", path=name) from None
            fp.seek(start)
            ds = dcmread(fp, force=True, stop_before_pixels=True)
        pixel_tag = _peek_pixel_tag(fp, ds)
        raw_header: bytes | None = None
        if pixel_tag is not None:
            _check_pixel_element(fp, ds, name)
            pixel_at = fp.tell()
            fp.seek(start)
            raw_header = fp.read(pixel_at - start)
            fp.seek(pixel_at)
        if pixel_tag is None and ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
            fp.seek(start)  # deflated: the reader decompressed into its own buffer, so read it all
            full = dcmread(fp)
            present = [t for t in PIXEL_DATA_TAGS if t in full]
            pixel_tag = present[0] if present else None
            ds = full
            raw_header = None
            for tag in PIXEL_DATA_TAGS:
                if tag in ds:
                    del ds[tag]
    except DicomError:
        raise
    except Exception as exc:  # pydicom raises many kinds on malformed input
        raise DicomError(f"cannot read DICOM header: {type(exc).__name__}: {exc}", path=name) from exc
    ds.buffer = None  # do not keep the source bytes alive through the header
    ds.filename = name
    if ds.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
        raise NotAnImageError("a DICOMDIR (Media Storage Directory): pass it to read_series to follow it", path=name)
    return ds, pixel_tag, raw_header


def _peek_pixel_tag(fp: BinaryIO, ds: Dataset) -> int | None:
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
_ITEM, _SEQUENCE_DELIMITER = 0xFFFEE000, 0xFFFEE0DD


def _check_pixel_element(fp: BinaryIO, ds: Dataset, name: str) -> None:
    """Check the pixel data element at the file position is complete, without reading its value.

    Some decoders return garbage, not an error, for a truncated codestream (pylibjpeg-libjpeg
    on JPEG-LS does), so truncation is caught here: a defined length must fit in the file, and
    encapsulated data must be a chain of complete Items ending with a Sequence Delimitation
    Item (PS3.5 §7.5, §A.4). Only item headers are read; the position is restored.
    """
    start = fp.tell()
    end = fp.seek(0, os.SEEK_END)
    fp.seek(start)
    implicit, little = ds.original_encoding
    order: Literal["little", "big"] = "big" if little is False else "little"
    head = fp.read(8)
    if len(head) < 8:
        raise DicomError("truncated: the file ends inside the (7FE0,0010) Pixel Data element header", path=name)
    if implicit:
        length, pos = int.from_bytes(head[4:8], order), start + 8
    elif head[4:6] in _LONG_VRS:
        more = fp.read(4)
        if len(more) < 4:
            raise DicomError("truncated: the file ends inside the (7FE0,0010) Pixel Data element header", path=name)
        length, pos = int.from_bytes(more, order), start + 12
    else:
        length, pos = int.from_bytes(head[6:8], order), start + 8
    if length != 0xFFFFFFFF:
        if pos + length > end:
            raise DicomError(
                f"truncated: (7FE0,0010) Pixel Data declares {length} bytes, {end - pos} available", path=name
            )
        fp.seek(start)
        return
    while True:
        fp.seek(pos)
        item = fp.read(8)
        if len(item) < 8:
            raise DicomError(
                "truncated: encapsulated (7FE0,0010) Pixel Data ends without a Sequence Delimitation Item (PS3.5 §A.4)",
                path=name,
            )
        tag = (int.from_bytes(item[:2], "little") << 16) | int.from_bytes(item[2:4], "little")
        item_length = int.from_bytes(item[4:], "little")
        if tag == _SEQUENCE_DELIMITER:
            break
        if tag != _ITEM:
            raise DicomError(
                f"encapsulated (7FE0,0010) Pixel Data: expected an Item (FFFE,E000) at byte offset {pos}, "
                f"found ({tag >> 16:04X},{tag & 0xFFFF:04X}) (PS3.5 §A.4)",
                path=name,
            )
        pos += 8 + item_length
        if pos > end:
            raise DicomError(
                f"truncated: a Pixel Data fragment ends at byte offset {pos}, the file has {end} bytes", path=name
            )
    fp.seek(start)


def _decode(fp: BinaryIO, spec: PixelSpec, name: str) -> NDArray[np.integer]:
    fp.seek(0)
    try:
        arr = pixel_array(fp)
    except Exception as exc:  # any decoder/plugin failure
        raise _decode_error(exc, spec, name) from exc
    frames = int(spec.extra["number_of_frames"])
    return _finish(arr, spec, name, (frames, int(spec.extra["rows"]), int(spec.extra["columns"])))


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


def _group(images: list[DicomImage]) -> list[Series]:
    groups: dict[tuple[Any, ...], list[DicomImage]] = {}
    for image in images:
        spec = image.spec
        uid = image.series_instance_uid or f"<no Series Instance UID>:{image.path}"
        key = (uid, image.shape[1:], spec.bits_stored, spec.signed, spec.photometric_interpretation)
        groups.setdefault(key, []).append(image)
    return [
        Series(key[0] if images_[0].series_instance_uid else "", _sorted(images_)) for key, images_ in groups.items()
    ]


def _sorted(images: list[DicomImage]) -> list[DicomImage]:
    first = images[0].orientation
    geometric = first is not None and all(
        image.position is not None
        and image.orientation is not None
        and np.allclose(image.orientation, first, atol=1e-4)
        for image in images
    )
    if geometric:
        return sorted(images, key=lambda im: (im.position, _number_key(im), im.path))
    return sorted(images, key=lambda im: (_number_key(im), im.path))


def _number_key(image: DicomImage) -> tuple[bool, int]:
    return (image.instance_number is None, image.instance_number or 0)
