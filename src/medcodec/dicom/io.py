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

from .image import DicomImage, _finish, read_image
from .series import Series, SeriesSet, read_series
from .sources import NON_DICOM_SUFFIXES, Source, ZipMember, iter_sources

__all__ = [
    "DicomImage",
    "Series",
    "SeriesSet",
    "Source",
    "ZipMember",
    "NON_DICOM_SUFFIXES",
    "iter_sources",
    "read_image",
    "read_series",
    "_finish",
]
