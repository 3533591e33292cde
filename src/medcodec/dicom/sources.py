"""Finding DICOM inputs: files, folders (walked), ZIP archives (member by member), DICOMDIRs.

Folders are walked recursively in sorted order; hidden files and folders, ``__MACOSX``, and files
with an obviously non-DICOM extension or name (``LICENSE``, ``README``...) and no ``DICM`` prefix
are skipped. Other files, with or without an extension, are kept when they carry the ``DICM`` prefix
(PS3.10 §7.1) or, for preamble-less files, when they start with a group 0002/0008 element. A folder
walk skips files named ``DICOMDIR``; a DICOMDIR given explicitly is followed (PS3.10 §8, Referenced
File ID), as is a file whose meta says Media Storage Directory, whatever its name. A walk passes
over medcodec stores (:func:`is_store_folder`) and the folders a caller excludes (its own output
folder, so that a rerun does not read what the first run wrote), files that are not regular files (a
FIFO would block the reader) and reads an unreadable ``.zip`` as the file it is (its reader reports
it; the walk goes on). ``.zip`` files are read member by member, never extracted to disk, and so are
ZIPs inside them (a ZIP of series ZIPs; :data:`MAX_ZIP_NESTING` deep); a name the archive holds
twice is read by its position (each member once); :func:`zip_members_left_out` names the members not
read, for callers that report them. See :mod:`medcodec.dicom.io` for the whole reading flow.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import itertools
import lzma
import os
import shutil
import stat
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.filereader import read_file_meta_info

from ..errors import DicomError, InputNotFoundError, InvalidInputError
from ..warnfilter import filtered
from .limits import check_file_size

__all__ = [
    "NON_DICOM_SUFFIXES",
    "NON_DICOM_NAMES",
    "non_dicom_by_name",
    "ZipMember",
    "Source",
    "iter_sources",
    "is_store_folder",
    "walk_dirs",
    "zip_members_left_out",
    "looks_like_dicom",
    "SNIFF_BYTES",
]


#: File extensions a folder walk never tries as DICOM (``.mdc``: medcodec's own container, e.g. the
#: output of ``medcodec encode DIR -o DIR/series.mdc``, which a second run read as a failed input).
NON_DICOM_SUFFIXES = frozenset(
    ".mdc .md .txt .rst .json .csv .tsv .xml .html .htm .pdf .py .ini .cfg .yaml .yml .log .sh .bat "
    ".png .jpg .jpeg .gif .bmp .tif .tiff .svg .nii .nrrd .mha .mhd .raw .npy .npz .gz .bz2 .xz "
    ".7z .tar .exe .dll .so .ds_store .par .rec".split()
)
#: File names (without their extension, any case) a folder walk never tries as DICOM: the documents
#: published beside a series (a TCIA download's LICENSE was "rejected", and ingest exited 1).
NON_DICOM_NAMES = frozenset("license licence copying notice readme authors changelog changes".split())


def non_dicom_by_name(name: str) -> str:
    """Why a file named ``name`` is not tried as DICOM (its extension, :data:`NON_DICOM_SUFFIXES`,
    or its name, :data:`NON_DICOM_NAMES`), or ``""``."""
    p = Path(name)
    if p.suffix.lower() in NON_DICOM_SUFFIXES:
        return f"not DICOM by its name ({p.suffix.lower()})"
    if p.stem.lower() in NON_DICOM_NAMES and p.suffix.lower() in ("", ".txt", ".md", ".rst"):
        return f"not DICOM by its name ({p.name})"
    return ""


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
    #: Position in the archive's central directory, for a name the archive holds more than once
    #: (ZIP allows it; reading by name would give the last such member every time).
    index: int | None = None
    #: The ZIP members of ``archive`` this member is inside, outermost first, each ``(name, index)``:
    #: ``(("series1.zip", None),)`` for ``study.zip::series1.zip::IM1`` (a ZIP of series ZIPs).
    within: tuple[tuple[str, int | None], ...] = ()

    @property
    def name(self) -> str:
        """``"archive.zip::member"`` (``"... [entry N]"`` for a repeated name; ``archive.zip::inner.zip::member``
        inside a nested ZIP), the path used in messages and :attr:`DicomImage.path`."""
        chain = "".join(f"{name}{_entry(index)}::" for name, index in self.within)
        return f"{self.archive}::{chain}{self.member}{_entry(self.index)}"

    def read_head(self, n: int) -> bytes:
        """The member's first ``n`` bytes (only those are inflated). Raises as :meth:`read_bytes`."""
        return self._read(n)

    def read_bytes(self) -> bytes:
        """The member's content.

        Raises
        ------
        InputNotFoundError
            The archive or the member does not exist.
        DicomError
            The archive cannot be read.
        """
        return self._read(None)

    def _read(self, n: int | None) -> bytes:
        try:
            with _open_chain(self.archive, self.within) as zf:
                info = zf.infolist()[self.index] if self.index is not None else zf.getinfo(self.member)
                if info.filename == self.member:  # (else the archive changed since it was listed: not found)
                    if n is None:  # read whole: by the size the archive declares (zipfile holds it to that)
                        check_file_size(info.file_size, path=self.name, what="ZIP member")
                    with zf.open(info) as fh:
                        return fh.read() if n is None else fh.read(n)
        except DicomError:  # over the size limit (an ImageTooLargeError is a NotImplementedError too)
            raise
        except FileNotFoundError as exc:
            raise InputNotFoundError("ZIP archive does not exist", path=self.archive) from exc
        except (KeyError, IndexError) as exc:
            raise InputNotFoundError("no such member in the ZIP archive", path=self.name) from exc
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, zlib.error,
                lzma.LZMAError) as exc:  # fmt: skip
            # damaged data: zipfile lets the decompressors' own errors through (a cut deflate stream
            # is an EOFError, corrupt LZMA an LZMAError): until 2026-12-03 they stopped a whole ingest
            raise DicomError(f"cannot read ZIP member: {type(exc).__name__}: {exc}", path=self.name) from exc
        raise InputNotFoundError("no such member in the ZIP archive", path=self.name)


def _entry(index: int | None) -> str:
    return "" if index is None else f" [entry {index + 1}]"


#: How deep ZIPs inside ZIPs are opened: a ZIP of series ZIPs (an export per study, one ZIP per
#: series) is depth 1. Deeper ones are listed as left out, not read.
MAX_ZIP_NESTING = 3
#: A ZIP inside a ZIP that is deflated (not stored) is inflated once into a temporary file (deleted
#: again) and kept for the members read after it, one per nesting depth: memory stays bounded
#: whatever its size, and each member is a seek away (inflating the whole inner ZIP again for each
#: member took ~14 s a member on a 600 MB one; holding each level in memory took a 0.6 MB bomb to
#: 2.1 GB: an outside audit, 2026-12-03). A stored inner ZIP is read in place.
_spooled: dict[tuple[Any, ...], str] = {}
_spool_lock = threading.Lock()


def _unspool_all() -> None:
    with _spool_lock:
        for path in _spooled.values():
            with contextlib.suppress(OSError):
                os.unlink(path)
        _spooled.clear()


atexit.register(_unspool_all)


def _checked_zip(fileobj: Any, where: object) -> zipfile.ZipFile:
    """A ZIP whose members do not overlap: members that share their bytes multiply what a small
    file lists (a 45 kB ZIP of four nested layers listed 810,000 members; Python checks this itself
    only from 3.11.8)."""
    zf = zipfile.ZipFile(fileobj)
    try:
        spans = sorted((info.header_offset, info.compress_size) for info in zf.infolist())
        for (start, size), (after, _) in itertools.pairwise(spans):
            if after < start + 30 + size:  # a local header is 30 bytes before its name, extra and data
                raise DicomError("ZIP members overlap (one file listed as many: a ZIP bomb): not read", path=where)
    except BaseException:
        zf.close()
        raise
    return zf


def _open_member_zip(stack: contextlib.ExitStack, zf: zipfile.ZipFile, archive: Path,
                     chain: tuple[tuple[str, int | None], ...]) -> zipfile.ZipFile:  # fmt: skip
    """The ZIP that is the member ``chain[-1]`` of ``zf`` (``chain``: its names from ``archive`` down)."""
    name, index = chain[-1]
    where = f"{archive}::" + "::".join(n for n, _ in chain)
    try:
        info = zf.infolist()[index] if index is not None else zf.getinfo(name)
    except (KeyError, IndexError):
        info = None
    if info is None or info.filename != name:  # (the archive changed since it was listed)
        raise InputNotFoundError("no such ZIP inside the ZIP archive", path=where)
    check_file_size(info.file_size, path=where, what="ZIP inside a ZIP")
    if info.compress_type == zipfile.ZIP_STORED:
        inner: Any = stack.enter_context(zf.open(info))  # seekable: the central directory at its end
    else:
        inner = stack.enter_context(_spool(archive, chain, zf, info))
    return stack.enter_context(_checked_zip(inner, where))


def _spool(archive: Path, chain: tuple[tuple[str, int | None], ...], zf: zipfile.ZipFile, info: Any) -> BinaryIO:
    """A temporary file holding a deflated nested ZIP, made once and kept while its members are read;
    opened under the lock, so that another thread evicting it cannot remove it before it is open (an
    open file stays readable after its name goes)."""
    st = archive.stat()
    key = (str(archive), st.st_mtime_ns, st.st_size, chain)
    with _spool_lock:
        path = _spooled.get(key)
        if path is None:
            for old in [k for k in _spooled if len(k[3]) == len(chain)]:  # one kept per nesting depth
                with contextlib.suppress(OSError):
                    os.unlink(_spooled.pop(old))
            fd, path = tempfile.mkstemp(prefix="medcodec-zip-", suffix=".zip")
            try:
                with os.fdopen(fd, "wb") as out, zf.open(info) as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                raise
            _spooled[key] = path
        return open(path, "rb")


@contextlib.contextmanager
def _open_chain(archive: Path, within: tuple[tuple[str, int | None], ...]) -> Iterator[zipfile.ZipFile]:
    """The ZIP ``archive`` or, through the members ``within`` it names, the ZIP nested in it. A nested
    ZIP's size is checked like a member's before it is opened (:func:`.limits.check_file_size`)."""
    with contextlib.ExitStack() as stack:
        zf = stack.enter_context(_checked_zip(archive, archive))
        for depth in range(len(within)):
            zf = _open_member_zip(stack, zf, archive, within[: depth + 1])
        yield zf


#: Anything :func:`read_image` accepts.
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | ZipMember


def iter_sources(
    inputs: Source | Iterable[Source], *, exclude: Iterable[str | os.PathLike[str]] = ()
) -> Iterator[Source]:
    """Expand inputs into readable sources.

    Parameters
    ----------
    inputs
        A path or several: a DICOM file (always yielded, whatever its name), a folder
        (walked recursively, see the module docstring), a ``.zip`` (one :class:`ZipMember`
        per DICOM member), a DICOMDIR (its referenced files). :class:`ZipMember`, bytes and
        file-like objects pass through unchanged.
    exclude
        Folders or files a folder walk leaves out (compared by resolved path): a caller's output
        folder inside an input folder. An input named explicitly is read all the same.

    Yields
    ------
    pathlib.Path or ZipMember or bytes or file-like

    Raises
    ------
    InputNotFoundError
        An input path does not exist.
    DicomError
        A ZIP archive or DICOMDIR cannot be read, or a path given is neither a file nor a folder
        (a FIFO; inside a folder such files are passed over).
    """
    excluded = frozenset(os.path.realpath(p) for p in exclude)
    for item in _as_inputs(inputs):
        if isinstance(item, (ZipMember, bytes, bytearray, memoryview)) or hasattr(item, "read"):
            yield item
            continue
        path = Path(item)
        if not path.exists():
            raise InputNotFoundError("input does not exist", path=path)
        if path.is_dir():
            yield from _walk(path, excluded)
        elif not path.is_file():  # a FIFO, socket or device (whatever its name): reading could block for ever
            raise DicomError("not a regular file (a FIFO, socket or device): not read", path=path)
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
        with filtered():
            meta = read_file_meta_info(path)
    except Exception:  # unreadable: the caller's reader says what is wrong with it
        return False
    return str(meta.get("MediaStorageSOPClassUID", "")).strip() == MEDIA_DIRECTORY


def _as_inputs(inputs: Source | Iterable[Source]) -> list[Source]:
    if isinstance(inputs, (str, os.PathLike, bytes, bytearray, memoryview, ZipMember)) or hasattr(inputs, "read"):
        return [inputs]  # type: ignore[list-item]
    try:
        return list(inputs)
    except TypeError as exc:  # None, a number: was a raw TypeError (an outside audit, 2026-12-03)
        raise InvalidInputError(
            f"inputs must be a path, a file object, bytes or a list of them, not {type(inputs).__name__}"
        ) from exc


def is_store_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a medcodec delivery store (``objects/`` beside its ``catalog.sqlite``,
    or ``objects/sha256`` beside ``tmp/`` for a store whose catalog lives elsewhere): a folder
    walk leaves it out, its originals are stored already and the rest is derived from them (a
    store kept inside the folder it was ingested from doubled the study)."""
    root = Path(path)
    objects, tmp = (root / "objects").is_dir(), (root / "tmp").is_dir()  # objects/ comes with the first file
    return ((root / "catalog.sqlite").is_file() and (objects or tmp)) or (
        (root / "objects" / "sha256").is_dir() and tmp
    )


def walk_dirs(dirs: list[str], root: str) -> list[str]:
    """The subfolders of ``root`` a folder walk enters (``os.walk``'s ``dirs``, sorted): not hidden,
    not ``__MACOSX``, not a medcodec store (:func:`is_store_folder`)."""
    return sorted(d for d in dirs if not _hidden(d) and not is_store_folder(Path(root, d)))


def walk(top: str | os.PathLike[str]) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(top)`` (top-down, ``dirs`` pruned in place by the caller, links to folders listed
    but not entered, unreadable folders passed over) without recursion: Python 3.11's recurses
    once per level, and a tree ~1000 folders deep stopped an ingest with a RecursionError before
    its first file (an outside audit, 2026-12-03)."""
    stack = [os.fspath(top)]
    while stack:
        root = stack.pop()
        try:
            with os.scandir(root) as it:
                entries = list(it)
        except OSError:
            continue
        dirs: list[str] = []
        files: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
        yield root, dirs, files
        for name in reversed(dirs):
            path = os.path.join(root, name)
            if not os.path.islink(path):
                stack.append(path)


def _walk(folder: Path, excluded: frozenset[str] = frozenset()) -> Iterator[Source]:
    for root, dirs, files in walk(folder):
        dirs[:] = walk_dirs(dirs, root)
        if excluded:
            dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(root, d)) not in excluded]
        for name in sorted(files):
            path = Path(root, name)
            if _hidden(name) or name.upper() == "DICOMDIR" or not path.is_file():  # a FIFO would block
                continue
            if excluded and os.path.realpath(path) in excluded:
                continue
            if path.suffix.lower() == ".zip":
                try:
                    members = list(_zip_members(path))
                except DicomError:  # the walk goes on; reading the file itself reports it
                    members = [path]  # type: ignore[list-item]
                yield from members
            elif not non_dicom_by_name(name) or _has_dicm_prefix(partial(open, path, "rb")):
                yield path  # not DICOM after all (empty, random bytes, text): read_image says so, listed


def _has_dicm_prefix(opener: Callable[[], Any]) -> bool:
    """Whether the file or ZIP member ``opener`` opens carries the ``DICM`` prefix (PS3.10 §7.1; its
    first 132 bytes read, nothing more): a DICOM file named like a document (``readme``, ``NOTICE``,
    ``x.rec``) is read, not skipped by its name (an outside re-check, 2026-12-04)."""
    try:
        with opener() as fh:
            return fh.read(132)[_DICOM_PREFIX_OFFSET : _DICOM_PREFIX_OFFSET + 4] == b"DICM"
    except (*_ZIP_ERRORS, OSError, RuntimeError):
        return False


def _hidden(name: str) -> bool:
    return (name.startswith(".") and name not in (".", "..")) or name == "__MACOSX"


def looks_like_dicom(head: bytes) -> bool:
    """Whether a file's first bytes (:data:`SNIFF_BYTES` of them) can start a DICOM file: ``DICM``
    at offset 128, or a preamble-less dataset starting with a group 0002 / 0008 element. Readers
    check this before reading a whole file or ZIP member (a 150 MB member of zeros took 73 s)."""
    return _looks_like_dicom(head)


#: How many leading bytes :func:`looks_like_dicom` needs.
SNIFF_BYTES = _SNIFF_BYTES


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
        with filtered():  # probing arbitrary bytes: pydicom's complaints are expected
            ds = dcmread(io.BytesIO(head), force=True, stop_before_pixels=True)
        return len(ds) > 0
    except Exception:
        return False


def _zip_members(archive: Path) -> Iterator[ZipMember]:
    for member, _reason in _zip_plan(archive):
        if member is not None:
            yield member  # a member that is not DICOM is listed as a failure


def zip_members_left_out(archive: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(name, why)`` of the members of ``archive`` that :func:`iter_sources` does not yield
    (folders aside): hidden files, DICOMDIRs, obviously non-DICOM names, ZIPs inside the ZIP,
    so that a caller can report them instead of dropping them in silence."""
    return [(name, why) for member, (name, why) in _zip_plan(Path(archive)) if member is None and why]


_ZIP_ERRORS = (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, KeyError, EOFError, zlib.error,
               lzma.LZMAError)  # fmt: skip


def _zip_plan(
    archive: Path, within: tuple[tuple[str, int | None], ...] = ()
) -> list[tuple[ZipMember | None, tuple[str, str]]]:
    """Every member of ``archive`` (or of the ZIP ``within`` it) in name order: ``(ZipMember, ("", ""))``
    to read, or ``(None, (name, why))`` left out (``why`` empty for a folder entry); the members of a
    ZIP inside it in its place, named ``inner.zip::member`` (until 2026-12-03 a nested ZIP was left
    out, and a ZIP holding only ZIPs was dropped without a word: an outside audit)."""
    try:
        with _open_chain(archive, within) as zf:
            return _plan_of(zf, archive, within)
    except DicomError:
        raise
    except _ZIP_ERRORS as exc:
        prefix = "::".join(name for name, _ in within)
        raise DicomError(f"cannot read ZIP archive: {exc}", path=f"{archive}::{prefix}" if within else archive) from exc


def _plan_of(
    zf: zipfile.ZipFile, archive: Path, within: tuple[tuple[str, int | None], ...]
) -> list[tuple[ZipMember | None, tuple[str, str]]]:
    """:func:`_zip_plan` of the open ZIP ``zf``; a nested ZIP is listed through ``zf`` itself (opening
    each from the outer archive again made listing 3,000 nested ZIPs quadratic: 35 s)."""
    prefix = "".join(f"{name}{_entry(index)}::" for name, index in within)
    listed = list(enumerate(zf.infolist()))
    counts: dict[str, int] = {}
    for _, info in listed:
        counts[info.filename] = counts.get(info.filename, 0) + 1
    out: list[tuple[ZipMember | None, tuple[str, str]]] = []
    for index, info in sorted(listed, key=lambda item: (item[1].filename, item[0])):
        parts = info.filename.replace("\\", "/").split("/")  # some Windows tools write backslashes
        name = parts[-1]
        suffix = Path(name).suffix.lower()
        position = index if counts[info.filename] > 1 else None  # a name given twice: read by its position
        shown = prefix + info.filename
        if info.is_dir():
            out.append((None, (shown, "")))
        elif any(_hidden(p) for p in parts):
            out.append((None, (shown, "a hidden file")))
        elif name.upper() == "DICOMDIR":
            out.append((None, (shown, "a DICOMDIR (the members it lists are read as members)")))
        elif suffix == ".zip":
            if len(within) >= MAX_ZIP_NESTING:
                out.append((None, (shown, f"a ZIP nested deeper than {MAX_ZIP_NESTING} ZIPs: extract it first")))
                continue
            chain = (*within, (info.filename, position))
            try:
                with contextlib.ExitStack() as inner_stack:
                    inner = _plan_of(_open_member_zip(inner_stack, zf, archive, chain), archive, chain)
            except (DicomError, *_ZIP_ERRORS):
                # not a ZIP that can be read (damaged, a bomb, a DICOM file named .zip): read as the file it
                # is, so that the reader stores it or rejects it with its reason, as at the top level (it
                # was "skipped", exit 0, and a DICOM file named image.zip never stored: an outside audit)
                out.append((ZipMember(archive, info.filename, position, within), ("", "")))
                continue
            out.extend(inner)
            if not any(member is not None for member, _ in inner):
                out.append((None, (shown, "a ZIP inside the ZIP with no DICOM member")))
        elif (why := non_dicom_by_name(name)) and not _has_dicm_prefix(partial(zf.open, info)):
            out.append((None, (shown, why)))
        else:
            out.append((ZipMember(archive, info.filename, position, within), ("", "")))
    return out


def _dicomdir_files(dicomdir: Path) -> Iterator[Path]:
    """Files referenced by a DICOMDIR's directory records (PS3.3 F.3.2.2, (0004,1500)), inside
    its file-set (:func:`dicomdir_records_refused` lists the others)."""
    for path, _refused in _dicomdir_plan(dicomdir):
        if path is not None:
            yield path


def dicomdir_records_refused(
    path: str | os.PathLike[str], *, expanded: Iterable[Any] | None = None
) -> list[tuple[str, str]]:
    """``(where, why)`` of the records of the DICOMDIR ``path`` that :func:`iter_sources` does not
    follow: a Referenced File ID outside the DICOMDIR's file-set (``..``, an absolute path, a
    separator inside a component, a link leading out) or one that is no usable path (a NUL byte,
    a name too long). PS3.10 §8.2: File IDs are relative to the file-set's root. Until 2026-12-03
    they were followed: a hostile medium's DICOMDIR made an import read and store any DICOM file
    of the host (an outside audit). Empty for anything that is not a readable DICOMDIR.
    ``expanded``: what :func:`iter_sources` gave for ``path``; a file it gave as itself, a folder or
    a ZIP is no DICOMDIR, known without reading it again."""
    p = Path(path)
    if p.suffix.lower() == ".zip" or p.is_dir():
        return []
    if expanded is not None and any(isinstance(s, (str, os.PathLike)) and Path(s) == p for s in expanded):
        return []
    try:
        if not (p.is_file() and (p.name.upper() == "DICOMDIR" or is_media_directory(p))):
            return []
        return [refused for target, refused in _dicomdir_plan(p) if target is None]
    except (DicomError, OSError, ValueError):
        return []


def _dicomdir_plan(dicomdir: Path) -> list[tuple[Path | None, tuple[str, str]]]:
    """Every record's file, in record order (each once): ``(path, ("", ""))`` to read, or
    ``(None, (where, why))`` refused."""
    try:
        ds = dcmread(dicomdir, stop_before_pixels=True)
        records = list(ds.get("DirectoryRecordSequence") or [])
        file_ids = [record.get("ReferencedFileID") for record in records]
    except Exception as exc:
        raise DicomError(f"cannot read DICOMDIR: {exc}", path=dicomdir) from exc
    if "DirectoryRecordSequence" not in ds:
        raise DicomError("(0004,1220) Directory Record Sequence is missing: not a DICOMDIR", path=dicomdir)
    root = dicomdir.parent
    try:
        real_root = root.resolve()
    except (OSError, RuntimeError) as exc:
        raise DicomError(f"cannot resolve the DICOMDIR's folder: {exc}", path=dicomdir) from exc
    out: list[tuple[Path | None, tuple[str, str]]] = []
    seen: set[Path] = set()
    for file_id in file_ids:
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else [str(p) for p in file_id]
        # as PS3.10 writes a File ID's components; what cannot be printed (a NUL) escaped
        joined = "\\".join(part.encode("unicode_escape").decode("ascii") for part in parts)
        where = f"{dicomdir} (Referenced File ID {joined})"
        if any(not part or part in (".", "..") or any(c in part for c in "/\\\x00:") for part in parts):
            why = "outside the DICOMDIR's file-set or not a File ID (PS3.10 §8.2: components relative to its folder)"
            out.append((None, (where, f"{where}: {why}: not read")))
            continue
        try:
            path = _resolve_case(root, parts)
            inside = path.resolve().is_relative_to(real_root)
        except (OSError, ValueError, RuntimeError) as exc:  # a name too long, a link loop
            out.append((None, (where, f"{where}: cannot be a path here ({type(exc).__name__}: {exc}): not read")))
            continue
        if not inside:
            out.append((None, (where, f"{where}: leads outside the DICOMDIR's folder (a link): not read")))
        elif path not in seen:
            seen.add(path)
            out.append((path, ("", "")))
    return out


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


def open_regular_file(path: str | os.PathLike[str], name: str | None = None) -> BinaryIO:
    """``open(path, "rb")`` for a regular file; a FIFO, socket or device is refused before it is
    opened (opening a FIFO blocks until a writer comes: a DICOMDIR record naming one hung an
    ingest for ever, an outside audit of 2026-12-03).

    Raises
    ------
    InputNotFoundError
        No such file.
    DicomError
        A folder, not a regular file, or it cannot be opened.
    """
    where = str(path) if name is None else name
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise InputNotFoundError("input does not exist", path=where) from exc
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise DicomError(f"cannot open: {exc}", path=where) from exc
    if stat.S_ISDIR(mode):
        raise DicomError("is a folder, not a file: use read_series or iter_sources", path=where)
    if not stat.S_ISREG(mode):
        raise DicomError("not a regular file (a FIFO, socket or device): not read", path=where)
    try:
        return open(path, "rb")
    except FileNotFoundError as exc:
        raise InputNotFoundError("input does not exist", path=where) from exc
    except OSError as exc:
        raise DicomError(f"cannot open: {exc}", path=where) from exc


@contextlib.contextmanager
def _open_source(source: Any, name: str) -> Iterator[BinaryIO]:
    """A seekable binary file for any source, with I/O errors as DicomError subclasses."""
    if isinstance(source, ZipMember):
        yield io.BytesIO(source.read_bytes())
    elif isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        with open_regular_file(source, name) as fh:
            yield fh
    else:
        try:
            seekable = source.seekable()
        except Exception:
            seekable = False
        yield source if seekable else io.BytesIO(source.read())
