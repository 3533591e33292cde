"""Status text both DIMSE (C-STORE, C-FIND / C-GET / C-MOVE) and STOW-RS answers carry."""

from __future__ import annotations

__all__ = ["error_comment", "CONFLICT_COMMENT"]

#: The Error Comment of a C-STORE or STOW-RS refused because its SOP Instance UID is stored with
#: other content (the full outcome, with the stored copy's sha256 and source, goes to the log).
CONFLICT_COMMENT = "SOP Instance UID stored already with other content"


def error_comment(why: str) -> str:
    """``why`` as an Error Comment (0000,0902), an LO: one line, no backslash, at most 64
    characters, cut at the end ("...") so that the reason, which comes first, is kept (the STOW
    answer kept the last 64 characters until 2026-12-03 and lost it: an outside audit).

    >>> error_comment("SOP Instance UID stored already with other content (sha256 aa83...); not overwritten")
    'SOP Instance UID stored already with other content (sha256 aa...'
    """
    text = " ".join(why.replace("\\", "/").split())
    return text if len(text) <= 64 else text[:61] + "..."
