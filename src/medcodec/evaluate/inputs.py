"""Reading the images to evaluate: the one place the evaluation touches DICOM.

:func:`load_series` takes a file, a folder, a ZIP or a DICOMDIR (anything
:func:`medcodec.dicom.read_series` takes), picks one series, and returns evenly spaced frames
of it with its :class:`~medcodec.spec.PixelSpec`. Only the frames asked for are decoded. A
source that was already lossy-compressed (:func:`medcodec.dicom.write.is_lossy_source`, the test
``medcodec encode`` warns with) is flagged and warned about: every figure then measures a codec
against decoded pixels, not the acquired image.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidInputError, LossySourceWarning, failure_message
from ..progress import ProgressCallback
from ..spec import PixelSpec
from .ratecontrol import calibration_indices

__all__ = ["LoadedSeries", "load_series"]


@dataclass
class LoadedSeries:
    """Frames to evaluate and where they came from."""

    pixels: NDArray[Any]  #: (frames, rows, cols), stored values
    spec: PixelSpec
    modality: str = ""
    series_instance_uid: str = ""
    description: str = ""
    source: str = ""
    frame_indices: list[int] = field(default_factory=list)  #: positions in the full series
    frame_sources: list[str] = field(default_factory=list)  #: file of each frame ("path#k" in multi-frame)
    total_frames: int = 0
    skipped_inputs: list[str] = field(default_factory=list)  #: "path: error" for unreadable files
    lossy_source: bool = False  #: an image of the series was already lossy-compressed
    #: the series of the inputs not evaluated: "MODALITY UID (N frames)" (``--series`` picks one)
    other_series: list[str] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        s = self.spec
        return {
            "source": self.source,
            "modality": self.modality,
            "series_instance_uid": self.series_instance_uid,
            "series_description": self.description,
            "frames_evaluated": int(self.pixels.shape[0]),
            "frames_in_series": self.total_frames,
            "frame_indices": self.frame_indices,
            "frame_sources": self.frame_sources,
            "rows": int(self.pixels.shape[1]),
            "cols": int(self.pixels.shape[2]),
            "bits_stored": s.bits_stored,
            "signed": s.signed,
            "photometric_interpretation": s.photometric_interpretation,
            "rescale_slope": s.rescale_slope,
            "rescale_intercept": s.rescale_intercept,
            "rescale_type": s.rescale_type,
            "stored_min": int(self.pixels.min()),
            "stored_max": int(self.pixels.max()),
            "unreadable_inputs": self.skipped_inputs,
            "lossy_source": self.lossy_source,
            "other_series": self.other_series,
        }


def load_series(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    series_uid: str | None = None,
    max_frames: int | None = None,
    progress: ProgressCallback | None = None,
) -> LoadedSeries:
    """Read one series of ``inputs``, optionally ``max_frames`` evenly spaced frames of it.

    Parameters
    ----------
    inputs
        File(s), folder(s), ZIP or DICOMDIR.
    series_uid
        Series Instance UID to take when the inputs hold several; default: the series with the
        most frames.
    max_frames
        Evaluate at most this many frames, evenly spaced through the series (``None`` or 0: all).
    progress
        Progress bar while reading headers.

    Raises
    ------
    InvalidInputError
        No readable image, or no series with ``series_uid``.

    Warns
    -----
    LossySourceWarning
        The series was already lossy-compressed (Lossy Image Compression (0028,2110) "01" or a
        lossy transfer syntax); :attr:`LoadedSeries.lossy_source` says so too.
    """
    from ..dicom import read_series
    from ..dicom.write import is_lossy_source

    src = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    found = read_series(src, on_error="collect", progress=progress)
    failures = [failure_message(where, exc) for where, exc in found.failures]
    series = list(found.series)
    if not series:
        detail = f"; first failure: {failures[0]}" if failures else ""
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise InvalidInputError(f"no readable DICOM image in {', '.join(map(str, src))}{detail}{more}")
    if series_uid is not None:
        series = [s for s in series if s.series_instance_uid == series_uid]
        if not series:
            uids = ", ".join(sorted({s.series_instance_uid for s in found.series}))
            raise InvalidInputError(f"no series {series_uid!r} in the input; found: {uids}")
    chosen = max(series, key=lambda s: s.n_frames)
    others = [
        f"{s.modality or 'image'} {s.series_instance_uid or '?'} ({s.n_frames} frame(s))"
        for s in found.series
        if s is not chosen
    ]
    total = chosen.n_frames
    wanted = calibration_indices(total, max_frames or 0)
    # decode only the images holding wanted frames
    want = set(wanted)
    frames: list[NDArray[Any]] = []
    sources: list[str] = []
    index = 0
    for image in chosen.images:
        n = image.shape[0]
        if any(index + k in want for k in range(n)):
            for k, frame in enumerate(image.iter_frames()):
                if index + k in want:
                    frames.append(np.asarray(frame))
                    sources.append(str(image.path) if n == 1 else f"{image.path}#{k}")
        index += n
    pixels = np.stack(frames)
    lossy = any(is_lossy_source(image.dataset) for image in chosen.images)
    if lossy:
        warnings.warn(
            f"series {chosen.series_instance_uid or '?'}: the source is already lossy-compressed (Lossy Image "
            "Compression 01 or a lossy transfer syntax): every codec is measured against its decoded pixels, not "
            "the acquired image, and a codec that repeats the source's compression (e.g. 12-bit JPEG of a JPEG "
            "source) looks better than it is",
            LossySourceWarning,
            stacklevel=2,
        )
    return LoadedSeries(
        pixels=pixels,
        spec=chosen.spec,
        modality=chosen.modality,
        series_instance_uid=chosen.series_instance_uid,
        description=chosen.description,
        source=", ".join(str(s) for s in src),
        frame_indices=wanted,
        frame_sources=sources,
        total_frames=total,
        skipped_inputs=failures,
        lossy_source=lossy,
        other_series=others,
    )
