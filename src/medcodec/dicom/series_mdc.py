"""A DICOM series into one ``.mdc`` file and back into DICOM files: the library side of
``medcodec encode`` (default ``--to mdc``) and ``medcodec decode --to dicom``.

:func:`encode_series_to_mdc` streams the series (a few frames in memory whatever its length)
into the container with every source header carried verbatim (segment ``dcmh``,
:mod:`medcodec.dicom.embed`); :func:`decode_mdc_to_dicom` rebuilds one derived DICOM file per
source image from the ``.mdc`` alone (uncompressed, original metadata kept, lossy attributes
recorded, one new Series Instance UID). Files are written atomically and never over an input.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

from pydicom.uid import generate_uid

from ..codec import MdcHeader, decode, encode_to, read_header
from ..codec.container import pixel_data_bytes
from ..codec.mdc import StreamSummary
from ..codec.quantize import MDC_DEFAULT_TABLE, is_default_table
from ..errors import InvalidInputError, OutputError, RateTargetWarning
from ..fileio import check_output_path, staged_file, staging_folder
from ..metrics import compression_ratio
from ..progress import ProgressCallback, check_progress, tracked
from ..ratecontrol import (
    CALIBRATION_FRAMES,
    PSNR_MISS_DB,
    calibration_indices,
    check_psnr_reached,
    check_ratio_reached,
)
from .embed import SEGMENT, pack_headers, unpack_headers
from .mapping import padding_range
from .pixel_spec import PIXEL_DATA_TAGS, spec_from_header
from .series import Series
from .write import derive_dataset, warn_if_lossy_source, write_derived

__all__ = ["encode_series_to_mdc", "decode_mdc_to_dicom", "MDC_METHOD", "MDC_PRED_METHOD"]

#: Lossy Image Compression Method (0028,2114) written for ``.mdc`` renditions (medcodec's own term).
MDC_METHOD = "MEDCODEC_DCT"
#: The same for v2 predictive streams (``max_error`` > 0: near-lossless with a recorded bound).
MDC_PRED_METHOD = "MEDCODEC_PRED"


def encode_series_to_mdc(
    series: Series,
    path: str | os.PathLike[str],
    /,
    *,
    quality: float | None = None,
    ratio: float | None = None,
    psnr: float | None = None,
    table: str | None = None,
    jobs: int | None = None,
    effort: str | None = None,
    max_error: int | None = None,
    entropy: str | None = None,
    inputs: list[str] | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    intra: bool | None = None,
) -> StreamSummary:
    """Stream one series into a ``.mdc`` at ``path``: frames are read, encoded and written a few at a time.

    The rate search (``ratio`` / ``psnr``) and the quantizer's range come from up to
    :data:`~medcodec.ratecontrol.CALIBRATION_FRAMES` evenly spaced images, decoded once more for
    that; memory stays at a few frames.

    Parameters
    ----------
    series
        From :func:`medcodec.dicom.read_series`.
    path
        The ``.mdc`` to write (atomically).
    quality, ratio, psnr, table, jobs, effort, max_error, entropy
        As in :func:`medcodec.encode` (``max_error``: the v2 predictive mode, ``entropy="arith"``:
        range-coded DCT levels; both write format 2.0).
    inputs
        Files never to overwrite (the series' own sources always are protected).
    overwrite
        Replace an existing output.
    progress
        ``progress(frames_done, n_frames)`` (:mod:`medcodec.progress`).

    Returns
    -------
    StreamSummary
        Bytes written, quality used, frames.

    Raises
    ------
    InvalidInputError
        Bad options, or an output that exists or is an input.
    DicomError
        An image cannot be decoded.
    """
    progress = check_progress(progress)
    if not isinstance(series, Series):
        raise InvalidInputError(
            f"series must be a medcodec.dicom.Series (read_series gives them), not {type(series).__name__}"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"path must be a file path, not {type(path).__name__}")
    table = MDC_DEFAULT_TABLE if table is None else table  # None: the default table, as for medcodec.encode
    target = check_output_path(Path(path), inputs=[*(inputs or []), *series.source_files], overwrite=overwrite)
    n = series.n_frames
    count = len(series.images)
    picks = calibration_indices(count, CALIBRATION_FRAMES)  # images; multi-frame images give several frames
    sample = [frame for i in picks for frame in series.images[i].decode()][:CALIBRATION_FRAMES]
    headers = pack_headers([(img.shape[0], img.dataset, img.header_bytes) for img in series.images])
    if psnr is not None and sample:
        _note_psnr_peak(float(psnr), sample, series.spec.bits_stored)
    pixels = n * series.shape[1] * series.shape[2]
    with staged_file(target) as lossy:  # at `target` only when kept: Ctrl-C leaves nothing half chosen
        summary = encode_to(
            lossy.file, tracked(series.iter_frames(), progress, total=n), n_frames=n,
            bits_stored=series.spec.bits_stored, signed=series.spec.signed, sample=sample, quality=quality, ratio=ratio,
            psnr=psnr, spec=series.spec, table=table, jobs=jobs, effort=effort, ancillary={SEGMENT: headers},
            max_error=max_error, entropy=entropy, padding=padding_range(series), intra=intra, judge_ratio=False,
        )  # fmt: skip
        lossy.file.flush()
        reached_psnr = _whole_series_psnr(lossy.path, series, jobs) if psnr is not None else math.inf
        exact = None
        if (ratio is not None or psnr is not None) and (entropy, intra) == (None, None) and is_default_table(table):
            # as medcodec.encode does: the lossless stream when it meets the target in no more bytes
            # (psnr: the lossy stream's size, any size when no lossy stream reached it; ratio: the
            # target's size too). Until 2026-12-03 the series writer never tried it (noticed and left)
            limit = summary.nbytes if reached_psnr >= float(psnr or 0) - PSNR_MISS_DB else 1 << 62
            if ratio is not None:
                raw = pixels * (1 if series.spec.bits_stored <= 8 else 2)
                limit = max(limit, int(raw / float(ratio)) + summary.overhead_bytes)
            exact = _lossless_within(series, target, sample, limit, summary.overhead_bytes, headers, jobs, progress)
        if exact is None:
            lossy.commit()
    what = f"the {n}-frame series"
    if exact is not None:  # lossless reaches any PSNR; a ratio it may miss when the lossy stream missed it too
        check_ratio_reached(ratio, compression_ratio(exact.pixel_bytes, pixels, series.spec.bits_stored), what=what)
        return exact
    if max_error != 0:  # said once the stream is known: a bit-exact one adds no error (an outside audit, F11)
        warn_if_lossy_source((img.dataset for img in series.images), what=f"series {series.series_instance_uid or '?'}")
    check_ratio_reached(ratio, compression_ratio(summary.pixel_bytes, pixels, series.spec.bits_stored), what=what)
    check_psnr_reached(psnr, reached_psnr, what=what)
    return summary


def _lossless_within(series: Series, target: Path, sample: list[Any], limit: int, overhead: int, headers: bytes,
                     jobs: int | None, progress: ProgressCallback | None) -> StreamSummary | None:  # fmt: skip
    """Put the series' lossless stream (``max_error=0``) at ``target`` when it is at most ``limit``
    bytes and return its summary; else None (nothing written). Estimated on the sample first
    (:func:`~medcodec.codec.pipeline.lossless_may_fit`, pixel bytes against ``limit - overhead``:
    the embedded headers are the same in both streams); the whole encode goes to a file staged
    beside ``target`` (removed unless kept). Progress goes on from ``n`` to ``2n``: a second pass.
    A full disk during this optional pass keeps the lossy stream, with a warning."""
    import warnings

    import numpy as np

    from ..codec.pipeline import lossless_estimator, lossless_may_fit
    from ..errors import OutputError

    spec, n = series.spec, series.n_frames
    if not sample:
        return None
    stack = np.stack(sample)
    exact = lossless_estimator(spec.bits_stored, spec.signed, spec, jobs or 1)
    if not lossless_may_fit(stack[len(stack) // 2], stack if n > len(stack) else None, n, limit - overhead, exact):
        return None
    second = None if progress is None else (lambda done, total: progress(n + done, 2 * n))
    try:
        with staged_file(target) as staged:
            summary = encode_to(
                staged.file, tracked(series.iter_frames(), second, total=n), n_frames=n, bits_stored=spec.bits_stored,
                signed=spec.signed, spec=spec, jobs=jobs, ancillary={SEGMENT: headers}, max_error=0,
            )  # fmt: skip
            if summary.nbytes > limit:
                return None
            staged.commit()
            return summary
    except OutputError as exc:
        warnings.warn(
            f"the lossless stream, which may meet the target in fewer bytes, could not be written ({exc}); "
            "the lossy stream is kept",
            RateTargetWarning,
            stacklevel=3,
        )
        return None


def _note_psnr_peak(target: float, sample: list[Any], bits_stored: int) -> None:
    """Say when a PSNR target's peak (``2**bits_stored - 1``, as this project defines PSNR) is far
    above the values the images hold: 16-bit MR with values 0..6000 asked for 45 dB allows errors
    of a few hundred, 6 % of its range, which nobody reading "45 dB" expects (README walk-through,
    2026-12-01). A note, not a change: the definition stays the documented one."""
    import warnings

    lo, hi = min(int(f.min()) for f in sample), max(int(f.max()) for f in sample)
    peak, span = (1 << bits_stored) - 1, max(hi - lo, 1)
    if span * 8 > peak:
        return
    warnings.warn(
        f"psnr={target:g} dB is measured against the peak {peak} (2^{bits_stored} - 1, Bits Stored "
        f"{bits_stored}); these images hold {lo}..{hi}, {peak / span:.0f}x less, so it allows an RMS error "
        f"of about {peak / 10 ** (target / 20):.0f}; the same error relative to their range needs "
        f"{20 * math.log10(peak / span):.0f} dB more",
        RateTargetWarning,
        stacklevel=3,
    )


def _whole_series_psnr(path: Path, series: Series, jobs: int | None) -> float:
    """The written ``.mdc``'s PSNR over the whole series (one MSE over every frame, peak
    ``2**bits_stored - 1``), frames decoded a few at a time: the search measured a sample of the
    frames before the decoder's filters, and a target past what the content allows (an 8-bit image
    asked for 75 dB) was missed in silence; the caller warns (as :func:`medcodec.encode` does)."""
    import itertools

    from ..metrics import MetricsAccumulator

    data = path.read_bytes()
    measured = MetricsAccumulator(series.spec, with_ssim=False)
    frames, k = series.iter_frames(), 0
    while originals := list(itertools.islice(frames, 8)):
        for original, back in zip(originals, decode(data, frames=range(k, k + len(originals)), jobs=jobs), strict=True):
            measured.add(original, back)
        k += len(originals)
    return float(measured.result()["psnr_db"])


def decode_mdc_to_dicom(
    data: bytes,
    folder: str | os.PathLike[str],
    /,
    *,
    source: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    jobs: int | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[list[Path], str, float]:
    """One derived DICOM file per source image of a ``.mdc`` that carries its DICOM headers.

    All or nothing: the files are written into a staging folder inside ``folder`` and renamed into
    it once every one is written (an error, Ctrl-C or a full disk leaves none, and no folder the
    call made). Their names are the stream's and the image's position, ``<stem>_0000.dcm`` ...
    (``image_0000.dcm`` without ``source``), so that decoding again finds them: an error unless
    ``overwrite``, which replaces them. Until 2026-12-05 each file was named by its new SOP
    Instance UID, written in place one by one: an interrupted decode left part of a series, and a
    second decode into the same folder added a second series beside the first (an outside audit).

    Parameters
    ----------
    data
        The ``.mdc`` stream.
    folder
        Output folder (created).
    source
        Where ``data`` came from: quoted in errors, never overwritten, its stem names the files.
    overwrite, jobs
        Replace existing files; decoding threads.
    progress
        ``progress(files_done, n_files)`` (:mod:`medcodec.progress`).

    Returns
    -------
    (paths, series_uid, ratio)
        The files written, their new Series Instance UID, and the ``.mdc``'s compression ratio.

    Raises
    ------
    InvalidInputError
        The stream carries no DICOM headers (segment ``dcmh``), or an output exists / is an input.
    CorruptStreamError
        Damaged stream.
    OutputError
        ``folder`` cannot be written in, or the disk is full.
    """
    progress = check_progress(progress)
    header: MdcHeader = read_header(data)
    where = str(source) if source is not None else "<bytes>"
    if SEGMENT not in header.ancillary:
        raise InvalidInputError(f"{where}: carries no DICOM headers (segment 'dcmh'); decode to npy or png instead")
    entries = unpack_headers(header.ancillary[SEGMENT], header.frames)
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out}: exists and is not a folder")
    protected = [source] if source is not None else []
    stem = Path(source).stem if source is not None else "image"
    targets = [out / f"{stem}_{k:04d}.dcm" for k in range(len(entries))]
    for target in targets:  # all checked before the decoding: an output that exists stops it at once
        check_output_path(target, inputs=protected, overwrite=overwrite)
    pixels = decode(data, jobs=jobs)  # a damaged stream stops here, before any folder is made
    if pixels.ndim == 2:
        pixels = pixels[None]
    ratio = compression_ratio(pixel_data_bytes(header, len(data)), pixels.size, header.bits_stored)  # pixel data only
    series_uid = generate_uid()
    max_error = header.max_error  # v2 predictive streams record their bound (0: lossless)
    method = MDC_METHOD if max_error is None else MDC_PRED_METHOD
    description = (
        f"medcodec .mdc, quality {header.quality}, decoded to uncompressed" if max_error is None
        else f"medcodec .mdc, max error {max_error} stored units, decoded to uncompressed"
    )  # fmt: skip
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make the folder ({exc.strerror or exc})", path=out) from exc
    try:
        with staging_folder(out) as staging:
            for (first, n, ds), target in zip(tracked(entries, progress, total=len(entries)), targets):
                spec = spec_from_header(ds, pixel_tag=PIXEL_DATA_TAGS[0], path=where)  # header kept without pixels
                frames = pixels[first : first + n]
                out_ds = derive_dataset(
                    ds, frames if n > 1 or "NumberOfFrames" in ds else frames[0], spec, ratio=ratio, method=method,
                    description=description, lossy=max_error != 0, new_series_uid=series_uid,
                )  # fmt: skip
                write_derived(staging / target.name, out_ds, inputs=protected, overwrite=False)
            for target in targets:  # every file is in staging: put them in place (renames in one folder)
                try:
                    os.replace(staging / target.name, target)
                except OSError as exc:
                    raise OutputError(f"cannot put the series in place ({exc.strerror or exc})", path=target) from exc
    finally:
        if created:
            with contextlib.suppress(OSError):  # only when empty: nothing was put in place
                out.rmdir()
    return targets, series_uid, ratio
