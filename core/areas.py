"""Levels of the administrative tree and their area codes.

统计用区划代码 are 12 digits: 2 province, 2 city, 2 county, 3 township,
3 village. A node's jurisdiction is the prefix its level gives; an area inside
it is any longer code that starts with that prefix.
"""

from __future__ import annotations

import attrs

from .errors import InvalidInput
from .i18n import N_, _


@attrs.frozen
class Level:
    name: str
    label: str
    digits: int


LEVELS: dict[str, Level] = {
    level.name: level
    for level in (
        Level("province", "省", 2),
        Level("city", "市", 4),
        Level("county", "县", 6),
        Level("township", "乡镇", 9),
        Level("village", "村", 12),
    )
}
LABELS = {level.label: level for level in LEVELS.values()}
VALID_LENGTHS = sorted(level.digits for level in LEVELS.values())


def level(name: str) -> Level:
    """Look up a level by English name or Chinese label."""
    found = LEVELS.get(name) or LABELS.get(name)
    if found is None:
        raise InvalidInput(N_("there is no level “{name}”: use one of {levels}"), name=name,
                           levels=_(", ").join(f"{lv.name} ({lv.label})"
                                               for lv in LEVELS.values()))
    return found


def level_for_code(code: str) -> Level:
    for lv in LEVELS.values():
        if lv.digits == len(code):
            return lv
    raise InvalidInput(N_("area code “{code}” has {digits} digits; a code has {lengths} digits"),
                       code=code, digits=len(code), lengths="/".join(map(str, VALID_LENGTHS)))


def check_code(code: str, for_level: Level | None = None) -> str:
    """Return ``code`` if it is a well-formed area code (of ``for_level``)."""
    if not isinstance(code, str) or not code.isascii() or not code.isdigit():
        raise InvalidInput(N_("area code “{code}” must be digits only (a statistical area "
                              "code, e.g. 431202101201)"), code=code)
    if for_level is not None and len(code) != for_level.digits:
        raise InvalidInput(N_("area code “{code}” has {digits} digits, but a code of a {level} "
                              "has {wanted}"), code=code, digits=len(code),
                           level=for_level.label, wanted=for_level.digits)
    level_for_code(code)
    return code


def contains(prefix: str, code: str) -> bool:
    """Whether the area ``code`` lies inside the jurisdiction ``prefix``."""
    return code.startswith(prefix)
