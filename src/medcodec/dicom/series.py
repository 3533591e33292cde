"""Images grouped into sorted series: :func:`read_series`, :class:`Series`, :class:`SeriesSet`.

Images are grouped by Series Instance UID, then split when Rows, Columns, Bits Stored,
signedness or photometric interpretation differ (the codec needs one shape and one value range
per stack). Within a series, images are sorted by ascending position along the slice normal
(Image Position (Patient) · (row × column direction cosines), PS3.3 C.7.6.2.1.1) when every image
has one and all share an orientation, else by Instance Number, then by path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..errors import DicomError, InvalidInputError
from ..progress import ProgressCallback, check_progress, tracked
from ..spec import PixelSpec
from .image import DicomImage, _text, read_image
from .sources import Source, ZipMember, _as_inputs, _source_name, dicomdir_records_refused, iter_sources

__all__ = ["Series", "SeriesSet", "read_series"]


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
    exclude: Iterable[str | os.PathLike[str]] = (),
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
    exclude
        Folders or files a folder walk leaves out (:func:`iter_sources`): the caller's output
        folder when it lies inside an input folder, so that a rerun does not read it as input.

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
    exclude = list(exclude)
    for item in _as_inputs(inputs):
        found: list[Source] = []
        try:
            for source in iter_sources([item], exclude=exclude):
                found.append(source)
                key = _source_name(source)
                if isinstance(source, (Path, ZipMember)):
                    if key in seen:
                        continue
                    seen.add(key)
                sources.append(source)
        except DicomError as exc:
            fail(exc.path or _source_name(item), exc)
        if isinstance(item, (str, os.PathLike)):  # a DICOMDIR's records outside its file-set
            for where, why in dicomdir_records_refused(item, expanded=found):
                fail(where, DicomError(why))

    images: list[DicomImage] = []
    for source in tracked(sources, progress, total=len(sources)):
        try:
            images.append(read_image(source, lazy=lazy))
        except DicomError as exc:
            fail(exc.path or _source_name(source), exc)
    result.series = _group(_without_duplicates(images, fail))
    return result


def _without_duplicates(images: list[DicomImage], fail: Callable[[str, DicomError], None]) -> list[DicomImage]:
    """Images with a SOP Instance UID seen before (two copies of one radiograph) are reported, not
    merged into a two-frame series: the first copy (in input order) is kept."""
    first: dict[str, str] = {}
    kept: list[DicomImage] = []
    for image in images:
        uid = image.sop_instance_uid
        if uid and uid in first:
            fail(image.path, DicomError(
                f"duplicate SOP Instance UID {uid}: the same instance as {first[uid]} (kept once, not merged)",
                path=image.path,
            ))  # fmt: skip
            continue
        if uid:
            first[uid] = image.path
        kept.append(image)
    return kept


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
