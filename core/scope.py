"""What may go to whom.

A node's scope is its certificate's area prefix. An event belongs to the
scope that contains its area: a village receives only its own area's events,
a township its subtree, a county everything below it. Control events (key
revocations and policy) also travel down to every node below their area,
since those nodes must refuse the revoked key's later events and fold under
the same policy. The rule reads only the event's entity name and area, so a
relay decides alike whatever plugins it has installed.
"""

from __future__ import annotations

from .plugins import CONTROL_ENTITIES

TRUST_ENTITY = "trust"


def in_scope(entity: str, area: str, scope: str) -> bool:
    return area.startswith(scope) or (entity in CONTROL_ENTITIES and scope.startswith(area))


#: the same rule in SQL, for the ``events`` table; binds ``:scope``.
SQL = ("(area like :scope || '%' or (entity in ("
       + ", ".join(f"'{name}'" for name in CONTROL_ENTITIES)
       + ") and :scope like area || '%'))")
