"""DICOM UID validation (PS3.5 §9.1), done before a UID touches SQL, a path or a URL.

Grammar::

    uid       = component *( "." component )       at most 64 characters
    component = "0" / ( %x31-39 *DIGIT )             no leading zero, never empty

A UID that passes contains only digits and dots, so it can name a file or a folder and be
bound as an SQL parameter without escaping; ``..``, ``/``, ``%2e`` and the like can never pass.
"""

from __future__ import annotations

import re

from ..errors import InvalidUidError

__all__ = ["UID_MAX_LENGTH", "is_valid_uid", "validate_uid"]

#: PS3.5 §9.1: a UID is at most 64 characters.
UID_MAX_LENGTH = 64
_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


def is_valid_uid(value: object) -> bool:
    """Whether ``value`` is a ``str`` that follows the UID grammar of PS3.5 §9.1.

    >>> is_valid_uid("1.2.840.10008.1.2.4.51"), is_valid_uid("1.02.3"), is_valid_uid("../etc")
    (True, False, False)
    """
    return isinstance(value, str) and 0 < len(value) <= UID_MAX_LENGTH and _UID.fullmatch(value) is not None


def validate_uid(value: object, *, what: str = "UID") -> str:
    """Return ``value`` when it is a valid UID, else raise.

    Parameters
    ----------
    value
        The candidate (from a URL, a query, a file header).
    what
        Its name in the message (``"Study Instance UID"``).

    Raises
    ------
    InvalidUidError
        Not a ``str``, empty, longer than 64 characters, or not digits and dots with no
        leading zero in a component (PS3.5 §9.1).

    >>> validate_uid("1.2.3")
    '1.2.3'
    """
    if is_valid_uid(value):
        return value  # type: ignore[return-value]
    shown = repr(value) if not isinstance(value, str) or len(value) <= 80 else repr(value[:80] + "...")
    raise InvalidUidError(
        f"{what} {shown} is not a DICOM UID: expected digits in dot-separated components without "
        f"leading zeros, at most {UID_MAX_LENGTH} characters (PS3.5 §9.1)"
    )
