"""What this node holds but cannot fold: listed so a person can act on it.

An entity is held when no installed plugin handles its entity or event
type, or the policy code in force is not installed here (see ``fold``).
Its events are still stored, relayed and counted in frontiers; installing
the plugin and opening the node folds them.
"""

from __future__ import annotations

import attrs

from .i18n import show


@attrs.frozen
class HeldGroup:
    entity: str
    reason: str
    entities: int
    events: int
    authors: tuple[str, ...]


def held(node) -> list[HeldGroup]:
    """Held entities grouped by entity type and reason, with who wrote their events;
    the reason, stored language-independent, in the reader's language."""
    rows = node.db.execute(
        "select h.entity, h.reason, count(distinct h.entity_id), count(e.id), "
        "group_concat(distinct e.author) from held_entities h join events e "
        "on e.entity = h.entity and e.entity_id = h.entity_id "
        "group by h.entity, h.reason order by h.entity, h.reason").fetchall()
    return [HeldGroup(entity, show(reason), entities, events,
                      tuple(sorted({node.author_name(a) for a in (authors or "").split(",") if a})))
            for entity, reason, entities, events, authors in rows]
