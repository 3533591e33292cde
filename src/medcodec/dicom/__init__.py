"""DICOM in and out: read images and series (any transfer syntax), write derived lossy images.

Example (not run: needs a study folder)::

    from medcodec.dicom import read_series
    found = read_series("study/")                  # folders, ZIPs, DICOMDIRs, files
    for path, error in found.failures:             # bad files are reported, not fatal
        print(path, error)
    stack = found.series[0].pixels()               # (frames, rows, cols) stored values

Modules, in the order data flows through them:

* reading: :mod:`~medcodec.dicom.sources` (files, folders, ZIPs, DICOMDIRs),
  :mod:`~medcodec.dicom.image` (one image, decoded now or on demand), :mod:`~medcodec.dicom.series`
  (grouped and sorted); :mod:`~medcodec.dicom.io` states the decisions and re-exports them;
  :mod:`~medcodec.dicom.pixel_spec` turns a header into a :class:`~medcodec.spec.PixelSpec`;
  :mod:`~medcodec.dicom.codestream` reads whether a JPEG 2000 / JPEG-LS frame is lossy from its
  marker segments (for headers that omit Lossy Image Compression);
* one value mapping per series: :mod:`~medcodec.dicom.mapping` (statistics, plan, attributes);
* coding: :mod:`~medcodec.dicom.coding` (the lossy families, a view of :mod:`medcodec.registry`);
* writing: :mod:`~medcodec.dicom.write` (what a derived file changes), :mod:`~medcodec.dicom.lossy`
  (a lossy DICOM series), :mod:`~medcodec.dicom.compress` (one dataset in place, pydicom's
  ``Dataset.compress`` counterpart), :mod:`~medcodec.dicom.series_mdc` (series <-> ``.mdc``),
  :mod:`~medcodec.dicom.embed` (DICOM headers inside ``.mdc``);
* :mod:`~medcodec.dicom.pydicom_plugin`: medcodec's JPEG decoder as a pydicom plugin.
"""

from __future__ import annotations

from .coding import SYNTAXES, LossySyntax, get_syntax
from .compress import compress, dataset_frames
from .image import DicomImage, read_image
from .lossy import FileResult, encode_series_to_dicom
from .mapping import SeriesMapping, SeriesStats, plan_series_mapping, series_stats
from .pixel_spec import PIXEL_DATA_TAGS, pixel_spec_from_dataset, spec_from_header
from .pydicom_plugin import register_pydicom_plugin
from .series import Series, SeriesSet, read_series
from .series_mdc import decode_mdc_to_dicom, encode_series_to_mdc
from .sources import Source, ZipMember, iter_sources
from .write import LOSSY_METHODS, derive_dataset, derive_encapsulated, new_uid_map, write_derived

__all__ = [
    "compress",
    "register_pydicom_plugin",
    "encode_series_to_mdc",
    "decode_mdc_to_dicom",
    "dataset_frames",
    "DicomImage",
    "Series",
    "SeriesSet",
    "Source",
    "ZipMember",
    "iter_sources",
    "read_image",
    "read_series",
    "pixel_spec_from_dataset",
    "spec_from_header",
    "PIXEL_DATA_TAGS",
    "derive_dataset",
    "derive_encapsulated",
    "write_derived",
    "new_uid_map",
    "LOSSY_METHODS",
    "encode_series_to_dicom",
    "plan_series_mapping",
    "series_stats",
    "get_syntax",
    "SeriesMapping",
    "SeriesStats",
    "FileResult",
    "LossySyntax",
    "SYNTAXES",
]
