"""DICOM in and out: read images and series (any transfer syntax), write derived lossy images.

Example (not run: needs a study folder)::

    from medcodec.dicom import read_series
    found = read_series("study/", progress=True)   # folders, ZIPs, DICOMDIRs, files
    for path, error in found.failures:             # bad files are reported, not fatal
        print(path, error)
    stack = found.series[0].pixels()               # (frames, rows, cols) stored values

See :mod:`medcodec.dicom.io` for how files are found, grouped, sorted and decoded (and the
memory policy), :mod:`medcodec.dicom.pixel_spec` for how a header becomes a
:class:`~medcodec.spec.PixelSpec`, and :mod:`medcodec.dicom.write` for what a derived file
changes, and :mod:`medcodec.dicom.lossy` for lossy DICOM series (JPEG, JPEG 2000, HTJ2K,
JPEG-LS) with one value mapping per series.
"""

from __future__ import annotations

from .io import DicomImage, Series, SeriesSet, Source, ZipMember, iter_sources, read_image, read_series
from .pixel_spec import PIXEL_DATA_TAGS, pixel_spec_from_dataset, spec_from_header
from .write import LOSSY_METHODS, derive_dataset, derive_encapsulated, new_uid_map, write_derived
from .compress import compress, dataset_frames
from .lossy import (
    SYNTAXES,
    FileResult,
    LossySyntax,
    SeriesMapping,
    SeriesStats,
    encode_series_to_dicom,
    get_syntax,
    plan_series_mapping,
    series_stats,
)

__all__ = [
    "compress",
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
