"""居民身份证号码 (GB 11643-1999): 18 characters, the last a check character."""

from __future__ import annotations

import datetime as dt

from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def normalise(raw: str, today: dt.date | None = None) -> str:
    """Return the ID number in canonical form (upper-case X), or say what is wrong."""
    text = raw.strip().upper()
    if len(text) != 18 or not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        raise InvalidInput(N_("ID number “{number}” must be 17 digits and a digit or X "
                              "(18 characters)"), number=raw)
    try:
        born = dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise InvalidInput(N_("ID number “{number}” holds no valid birth date (characters 7-14 "
                              "read {digits})"), number=raw, digits=text[6:14]) from None
    if today is not None and born > today:
        raise InvalidInput(N_("ID number “{number}” gives a birth date {born} in the future"),
                           number=raw, born=born.isoformat())
    expected = check_character(text[:17])
    if text[17] != expected:
        raise InvalidInput(N_("ID number “{number}” fails the GB 11643 check: the last "
                              "character should be {expected}; check the number for a typing "
                              "error"), number=raw, expected=expected)
    return text


#: 990000 is assigned to no province, so a number in it is no one's.
SYNTHETIC_REGION = "990000"


def synthetic(serial: int, birth: str = "19800101") -> str:
    """A well-formed ID number that can never be a real person's, for demos and tests."""
    first17 = f"{SYNTHETIC_REGION}{birth}{serial % 1000:03d}"
    return first17 + check_character(first17)
