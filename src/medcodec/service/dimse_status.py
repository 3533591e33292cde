"""Status text both DIMSE (C-STORE, C-FIND / C-GET / C-MOVE) and STOW-RS answers carry."""

from __future__ import annotations

__all__ = [
    "error_comment",
    "refusal_comment",
    "failure_status",
    "RESOURCE_FAILURE",
    "CONFLICT_COMMENT",
    "CONFLICT",
    "PROCESSING_FAILURE",
]

#: The Error Comment of a C-STORE or STOW-RS refused because its SOP Instance UID is stored with
#: other content (the full outcome, with the stored copy's sha256 and source, goes to the log).
CONFLICT_COMMENT = "SOP Instance UID stored already with other content"

#: C-STORE status for a SOP Instance UID stored already with other content: an "Error: Cannot
#: understand" (Cxxx) of the Storage service (PS3.4 B.2.3), which every SCU knows; the low bits echo
#: PS3.7 Annex C's "Duplicate SOP Instance" (0x0111), a general status that is not among C-STORE's
#: (DCMTK reports it as unknown). The Error Comment says what happened.
CONFLICT = 0xC111


def error_comment(why: str) -> str:
    """``why`` as an Error Comment (0000,0902), an LO: one line, no backslash, at most 64
    characters, cut at the end ("...") so that the reason, which comes first, is kept (the STOW
    answer kept the last 64 characters until 2026-12-03 and lost it: an outside audit).

    >>> error_comment("SOP Instance UID stored already with other content (sha256 aa83...); not overwritten")
    'SOP Instance UID stored already with other content (sha256 aa...'
    """
    text = " ".join(why.replace("\\", "/").split())
    return text if len(text) <= 64 else text[:61] + "..."


#: PS3.4 C.4.2.1.4 / PS3.18 §10.5.3: Refused, Out of Resources.
RESOURCE_FAILURE = 0xA700


def refusal_comment(exc: BaseException, why: str | None = None) -> str:
    """What a sender is told of ``exc`` (Error Comment, :func:`error_comment`): the server's own
    trouble in words of its own (the store's message named the server's folders, and cut at 64
    characters lost what it meant: an outside audit, 2026-12-05), else ``why`` (default: the
    error's message)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "StoreFullError" in names:
        return error_comment("no space left in the store; try again later")
    if "OutOfResourcesError" in names:
        return error_comment("the server is out of resources; try again later")
    return error_comment(str(exc) if why is None else why)


def failure_status(exc: BaseException) -> int:
    """The status of a C-STORE, or a STOW-RS part (PS3.18 §10.5.3 takes PS3.4's codes), that ``exc``
    refused, by the first of ``exc``'s classes named here: the sender's data
    (0xC000 Cannot Understand, 0xA900), this server's resources (0xA700), a conflict, or a failure of
    the store or catalog, or anything else, which is ours, not the sender's (0x0110 Processing
    Failure; an outside audit, 2026-12-05, saw a read-only store answered 0xC001, shown by DCMTK as
    "Cannot understand", and STOW-RS answer it 0xC000)."""
    statuses = {
        "StoreFullError": RESOURCE_FAILURE,
        "OutOfResourcesError": RESOURCE_FAILURE,
        "ImageTooLargeError": RESOURCE_FAILURE,  # over the decoded / inflated size limits (was 0xC001)
        "MismatchedUidError": 0xA900,
        "NotDicomError": 0xC000,
        "InvalidUidError": 0xC000,
        "ConflictError": CONFLICT,
        "DeliveryError": PROCESSING_FAILURE,
        "CodecError": 0xC000,  # the data set: not DICOM, unreadable, unsupported
    }
    for cls in type(exc).__mro__:
        if cls.__name__ in statuses:
            return statuses[cls.__name__]
    return PROCESSING_FAILURE


#: PS3.7 C.4.2.1.4: Failure, Processing Failure (the SCP's own trouble).
PROCESSING_FAILURE = 0x0110
