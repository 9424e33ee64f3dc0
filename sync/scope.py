"""What may go to whom.

A node's scope is its certificate's area prefix. An event belongs to the
scope that contains its area: a village receives only its own area's events,
a township its subtree, a county everything below it. Trust events (key
revocations) also travel down to every node under the revoked key's area,
since those nodes must refuse the revoked key's later events too.
"""

from __future__ import annotations

TRUST_ENTITY = "trust"


def in_scope(entity: str, area: str, scope: str) -> bool:
    return area.startswith(scope) or (entity == TRUST_ENTITY and scope.startswith(area))


#: the same rule in SQL, for the ``events`` table; binds ``:scope``.
SQL = "(area like :scope || '%' or (entity = 'trust' and :scope like area || '%'))"
