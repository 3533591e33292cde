"""UID grammar (PS3.5 §9.1): what may reach SQL and paths."""

from __future__ import annotations

import pytest

from medcodec.delivery import InvalidUidError, is_valid_uid, validate_uid
from medcodec.errors import CodecError, InvalidInputError


@pytest.mark.parametrize("uid", ["1.2.840.10008.1.2.4.51", "0.0", "1", "2.25.329800735698586629295641978511506172918",
                                 "1." + "2" * 62])
def test_valid_uids_pass(uid: str) -> None:
    assert is_valid_uid(uid)
    assert validate_uid(uid) == uid


@pytest.mark.parametrize(
    "uid",
    ["", "1.", ".1", "1..2", "1.02", "01.2", "1.2a", "../../etc/passwd", "1.2/3", "1.2%2e", "1.2' OR '1'='1",
     "1.2;DROP TABLE instances", "1.2\x00", " 1.2", "1.2 ", "1." + "2" * 63, "١.٢", None, 1.2, b"1.2"],
)  # fmt: skip
def test_invalid_uids_raise_one_error(uid: object) -> None:
    assert not is_valid_uid(uid)
    with pytest.raises(InvalidUidError) as info:
        validate_uid(uid, what="Study Instance UID")
    assert isinstance(info.value, InvalidInputError) and isinstance(info.value, CodecError)
    assert "Study Instance UID" in str(info.value) and "PS3.5" in str(info.value)
