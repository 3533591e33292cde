"""Finding DICOM inputs: files, folders (walked), ZIP archives (member by member), DICOMDIRs.

Folders are walked recursively in sorted order; hidden files and folders, ``__MACOSX``, and files
with an obviously non-DICOM extension are skipped. Other files, with or without an extension,
are kept when they carry the ``DICM`` prefix (PS3.10 §7.1) or, for preamble-less files, when
they start with a group 0002/0008 element. A folder walk skips files named ``DICOMDIR``; a
DICOMDIR given explicitly is followed (PS3.10 §8, Referenced File ID). ``.zip`` files are read
member by member, never extracted to disk. See :mod:`medcodec.dicom.io` for the whole reading flow.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.filereader import read_file_meta_info

from ..errors import DicomError, InputNotFoundError

__all__ = ["NON_DICOM_SUFFIXES", "ZipMember", "Source", "iter_sources"]


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
        elif path.name.upper() == "DICOMDIR" or is_media_directory(path):
            yield from _dicomdir_files(path)
        else:
            yield path


#: Media Storage Directory Storage (PS3.4 Annex F): a DICOMDIR, whatever its file is named.
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"


def is_media_directory(path: Path) -> bool:
    """Whether the PS3.10 file at ``path`` is a DICOMDIR by its file meta (Media Storage SOP Class
    Media Storage Directory), not by its name (``DICOMDIR-copy``, ``dir.dcm``); reads the meta only."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
        if len(head) < 132 or head[128:132] != b"DICM":
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = read_file_meta_info(path)
    except Exception:  # unreadable: the caller's reader says what is wrong with it
        return False
    return str(meta.get("MediaStorageSOPClassUID", "")).strip() == MEDIA_DIRECTORY


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
            elif path.suffix.lower() not in NON_DICOM_SUFFIXES:
                yield path  # not DICOM after all (empty, random bytes, text): read_image says so, listed


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


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
                yield ZipMember(archive, info.filename)  # a member that is not DICOM is listed as a failure
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
