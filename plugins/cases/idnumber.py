"""居民身份证号码 (GB 11643-1999): 18 characters, the last a check character."""

from __future__ import annotations

import datetime as dt

from xinfang.core.errors import InvalidInput

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def normalise(raw: str, today: dt.date | None = None) -> str:
    """Return the ID number in canonical form (upper-case X), or say what is wrong."""
    text = raw.strip().upper()
    if len(text) != 18 or not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        raise InvalidInput(f"身份证号 {raw!r} must be 17 digits and a digit or X (18 characters)")
    try:
        born = dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise InvalidInput(f"身份证号 {raw!r} holds no valid birth date "
                           f"(characters 7-14 read {text[6:14]})") from None
    if today is not None and born > today:
        raise InvalidInput(f"身份证号 {raw!r} gives a birth date {born.isoformat()} in the future")
    expected = check_character(text[:17])
    if text[17] != expected:
        raise InvalidInput(f"身份证号 {raw!r} fails the GB 11643 check: the last character "
                           f"should be {expected}; check the number for a typing error")
    return text


#: 990000 is assigned to no province, so a number in it is no one's.
SYNTHETIC_REGION = "990000"


def synthetic(serial: int, birth: str = "19800101") -> str:
    """A well-formed ID number that can never be a real person's, for demos and tests."""
    first17 = f"{SYNTHETIC_REGION}{birth}{serial % 1000:03d}"
    return first17 + check_character(first17)
