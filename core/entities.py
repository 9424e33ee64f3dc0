"""What a plugin registers: entity types, fields, lifecycle states and steps.

The core folds events into views and checks lifecycle steps, but knows no
workflow: every state, step, field and view table comes from a plugin through
the hooks in ``hookspecs``. These classes are the vocabulary of that contract.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Iterable

import attrs

from .areas import LEVELS
from .errors import InvalidInput, StepRefused
from .i18n import N_, Message

FIELD_KINDS = ("text", "date", "int", "choice", "bool")
#: in ``Step.sources``: every state registered with ``open=True``, by any plugin.
ANY_OPEN = "*open"
#: what a user may type for yes and no, whatever the language of the messages
YES = ("1", "true", "yes", "y", "是")  # i18n: identifier
NO = ("0", "false", "no", "n", "否")  # i18n: identifier


def listing(items: Iterable[Any], empty: "str | Message | None" = None) -> "str | Message":
    """``items`` written as a list the reader's language writes (a、b、c in Chinese).

    Kept as a ``Message`` rather than joined now, so a reason that names a
    list (the steps allowed now) stays language-independent where a view
    stores it. ``empty`` (default “none”) stands for no items.
    """
    items = list(items)
    if not items:
        return Message(N_("none")) if empty is None else empty
    found = items[0]
    for item in items[1:]:
        found = Message(N_("{items}, {item}"), items=found, item=item)
    return found


@attrs.frozen
class Choice:
    """One value of a controlled vocabulary: a stable code and the users' word."""

    code: str
    label: str


@attrs.frozen
class Field:
    """A value an entity or a step takes from the user.

    ``choices`` names a vocabulary (see the ``xinfang_vocabulary`` hook) so a
    plugin can extend the list without redefining the field.
    """

    name: str
    label: str
    kind: str = attrs.field(default="text", validator=attrs.validators.in_(FIELD_KINDS))
    required: bool = False
    choices: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    help: str = ""
    #: a date that may lie ahead when authoring (a due date); other dates may not
    future: bool = False


@attrs.frozen
class State:
    name: str
    label: str
    open: bool = True  # counts as pending work; withdrawal and deadlines apply


@attrs.frozen
class Author:
    """The office that signed an event, as its certificate says: key, area and level.

    What an ``authority`` rule judges. It comes from the certificate this
    node holds for the key (never from the area an event claims), so every
    node holding the event decides alike; a key without a certificate here
    (a node before its enrolment, or a trusted copy without trust data) has
    no certified office, and no authority rule is applied to it.
    """

    key: str
    area: str
    level: str


@attrs.frozen
class Step:
    """A lifecycle transition.

    ``guard`` sees the entity's current view and the step's values and returns
    a reason to refuse, or None. It must be a pure function of those two, so
    every node folding the same events decides alike. ``target`` None keeps
    the state; ``retarget`` may pick the target from the values.

    ``authority`` says who may take the step: ``authority(view, author)``
    returns a reason to refuse, or None, from the view (which holds, under
    ``taken_by``, the certified office that took each earlier step) and the
    ``Author`` taking it. It is checked when a node authors the step and
    again by every node folding it, where a refusal is kept as a conflict,
    so a stolen key cannot take a step its office may not.

    A step no state leads from (``sources`` empty) is a *note* on a record,
    such as the root's ``case.tag``: taken in any state (guard and authority
    still apply), it keeps the status, last date, facts and history; only the
    plugin's ``on_step`` folds it.
    """

    name: str
    label: str
    sources: frozenset[str] = attrs.field(converter=frozenset)
    target: str | None = None
    fields: tuple[Field, ...] = attrs.field(default=(), converter=tuple)
    guard: Callable[[dict[str, Any], dict[str, Any]], str | None] | None = attrs.field(
        default=None, eq=False)
    retarget: Callable[[dict[str, Any]], str | None] | None = attrs.field(default=None, eq=False)
    authority: Callable[[dict[str, Any], Author], Any] | None = attrs.field(default=None, eq=False)

    @property
    def note(self) -> bool:
        return not self.sources

    def target_for(self, current: str, values: dict[str, Any]) -> str:
        if self.retarget is not None:
            chosen = self.retarget(values)
            if chosen:
                return chosen
        return self.target or current


@attrs.frozen
class Lifecycle:
    """The states and steps registered for one entity type."""

    entity: str
    states: dict[str, State]
    steps: dict[str, Step]
    #: the entity type's label, as its messages name it (the name if none is given)
    entity_label: str = ""

    @classmethod
    def build(cls, entity: str, items: Iterable[State | Step],
              label: str | None = None) -> "Lifecycle":
        from .errors import PluginError

        states: dict[str, State] = {}
        steps: dict[str, Step] = {}
        for item in items:
            table = states if isinstance(item, State) else steps
            if item.name in table:
                kind = Message(N_("state")) if table is states else Message(N_("step"))
                raise PluginError(N_("{entity}: {kind} “{name}” is registered twice"),
                                  entity=entity, kind=kind, name=item.name)
            table[item.name] = item
        open_states = frozenset(s.name for s in states.values() if s.open)
        for name, step in list(steps.items()):
            if ANY_OPEN in step.sources:
                steps[name] = attrs.evolve(step, sources=(step.sources - {ANY_OPEN}) | open_states)
        for step in steps.values():
            for name in {*step.sources, *([step.target] if step.target else [])}:
                if name not in states:
                    raise PluginError(N_("{entity}: step “{step}” names an unknown state "
                                         "“{state}”"), entity=entity, step=step.name, state=name)
        return cls(entity, states, steps, label or entity)

    def allowed(self, state: str) -> list[Step]:
        return [step for step in self.steps.values() if state in step.sources]

    def label(self, state: str) -> str:
        found = self.states.get(state)
        return found.label if found else state

    def check(self, view: dict[str, Any], step_name: str, values: dict[str, Any],
              author: Author | None = None) -> Step:
        """Return the step if it may be taken now, else raise ``StepRefused``.

        The reason is a ``Message`` (a guard's reason, text or ``Message``,
        inside it): the fold stores it as a conflict reason. The step's
        ``authority`` is asked only with an ``author`` (a certified office).
        """
        state = view["status"]
        step = self.steps.get(step_name)
        allowed = listing((f"{s.label}({s.name})" for s in self.allowed(state)),
                          Message(N_("none (it is closed)")))
        if step is None:
            raise StepRefused(N_("unknown step “{step}”; steps allowed from {state} ({code}): "
                                 "{allowed}"), step=step_name, state=self.label(state),
                              code=state, allowed=allowed)
        if state not in step.sources and not step.note:
            raise StepRefused(N_("cannot {step} ({name}) a {entity} in state {state} ({code}); "
                                 "allowed now: {allowed}"), step=step.label, name=step.name,
                              entity=self.entity_label or self.entity, state=self.label(state),
                              code=state, allowed=allowed)
        if step.guard is not None:
            reason = step.guard(view, values)
            if reason:
                raise StepRefused(N_("cannot {step} ({name}): {reason}"), step=step.label,
                                  name=step.name, reason=reason)
        if author is not None and step.authority is not None:
            reason = step.authority(view, author)
            if reason:
                raise StepRefused(N_("{level} {area} may not {step} ({name}): {reason}"),
                                  level=level_label(author.level), area=author.area,
                                  step=step.label, name=step.name, reason=reason)
        return step


def level_label(name: str) -> str:
    """The users' word for a level (村, 乡镇, 县 …); the name itself if unknown."""
    found = LEVELS.get(name)
    return found.label if found else name


def convert_field(field: Field, raw: Any, choices: list[Choice] | None = None,
                  today: dt.date | None = None) -> Any:
    """Turn user input into the canonical value of ``field``, or say what is wrong.

    ``today`` is given only when authoring: a date in the future is refused
    then, never when an event arrives (validity may not depend on a clock).
    """
    where = Message(N_("{field} ({name})"), field=field.label, name=field.name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if field.required:
            raise InvalidInput(N_("{field} is required and was empty"), field=where)
        return None
    if field.kind == "text":
        if not isinstance(raw, str):
            raise InvalidInput(N_("{field} must be text"), field=where)
        return raw.strip()
    if field.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in YES:
            return True
        if text in NO:
            return False
        raise InvalidInput(N_("{field} must be yes or no, got {value}"), field=where,
                           value=str(raw))
    if field.kind == "int":
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise InvalidInput(N_("{field} must be a whole number, got {value}"), field=where,
                               value=str(raw)) from None
        if field.minimum is not None and value < field.minimum:
            raise InvalidInput(N_("{field} must be at least {minimum}, got {value}"),
                               field=where, minimum=field.minimum, value=value)
        if field.maximum is not None and value > field.maximum:
            raise InvalidInput(N_("{field} must be at most {maximum}, got {value}"),
                               field=where, maximum=field.maximum, value=value)
        return value
    if field.kind == "date":
        value = parse_date(raw, where)
        if today is not None and value > today and not field.future:
            raise InvalidInput(N_("{field} {date} is in the future (today is {today})"),
                               field=where, date=value.isoformat(), today=today.isoformat())
        return value.isoformat()
    # choice
    options = choices or []
    for choice in options:
        if raw in (choice.code, choice.label):
            return choice.code
    listed = listing(f"{c.label}({c.code})" for c in options)
    raise InvalidInput(N_("unknown {field} “{value}”; choose one of: {choices}"), field=where,
                       value=str(raw), choices=listed)


def parse_date(raw: Any, where: "str | Message | None" = None) -> dt.date:
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw).strip())
    except ValueError:
        # a msgid or a label given as text is shown in the reader's language
        shown = Message(where) if isinstance(where, str) else where
        raise InvalidInput(N_("{field} must be a date as YYYY-MM-DD, got {value}"),
                           field=Message(N_("the date")) if shown is None else shown,
                           value=str(raw)) from None


def require(condition: bool, reason: "str | Message") -> None:
    """Used by fold code: raise the conflict that a step cannot apply.

    Give the reason as a ``Message`` (a conflict reason is stored, so it must
    not be rendered in the folding node's language)."""
    if not condition:
        raise StepRefused(reason)


@attrs.frozen
class EntityType:
    """A kind of record a plugin owns, synced exactly like any other.

    Two ways to fold one:

    * **Lifecycle entities** give ``table``, ``create`` and (through
      ``states``/``steps`` or the ``xinfang_lifecycle`` hook) a lifecycle.
      The kernel (``core.kernel``) folds them: it creates the row, checks
      each step against the state and its guard, keeps ``facts`` (the last
      values of each step), the history and the conflicts, and fills every
      column of ``table`` named like a kernel column or a field. The
      ``on_*`` callbacks let a plugin add what only it knows (derived
      columns, side tables such as deadlines).
    * **Custom entities** give ``apply`` (and ``reset``): the kernel hands
      them each event in total order and keeps conflicts and heads.

    ``view_tables`` are every table the fold writes for this type (``table``
    included); ``xinfang rebuild`` empties and refills them. ``migrations``
    is a ``sqlite_utils.migrations.Migrations`` set creating them.
    ``policy`` names the policy keys the fold reads: when one changes, the
    entities of this type under the changed area are re-folded.
    ``command`` is the name of the generated CLI group, or None for none.
    """

    name: str
    label: str
    view_tables: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    migrations: Any = None
    apply: Callable[[Any, Any], None] | None = attrs.field(default=None, eq=False)
    reset: Callable[[Any, str], None] | None = attrs.field(default=None, eq=False)
    table: str | None = None
    create: Step | None = None
    states: tuple[State, ...] = attrs.field(default=(), converter=tuple)
    steps: tuple[Step, ...] = attrs.field(default=(), converter=tuple)
    policy: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    command: str | None = None
    #: creation body keys the plugin builds and checks itself (e.g. sealed petitioners)
    body_keys: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    #: ``(ctx, event, row)``: add derived columns to a new row, write side tables
    on_create: Callable[..., None] | None = attrs.field(default=None, eq=False)
    #: ``(ctx, event, view, step, values, changes)``: add columns a step changes
    on_step: Callable[..., None] | None = attrs.field(default=None, eq=False)
    #: ``(ctx, view)``: add what guards need to the view (e.g. deadlines)
    guard_view: Callable[..., None] | None = attrs.field(default=None, eq=False)
    #: ``(ctx, event, record)``: after every applied event, with the row as it now
    #: stands (facts and fields as values), e.g. to store deadlines
    after: Callable[..., None] | None = attrs.field(default=None, eq=False)
    #: ``(values, area) -> id``: a record identified by what it is rather than numbered
    #: (one 目标责任状 per township and year): its id is this function of the creation
    #: values and the area, checked on arrival; a second creation of it is a conflict
    identify: Callable[[dict[str, Any], str], str] | None = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        from .errors import PluginError

        if self.apply is None and (self.table is None or self.create is None):
            raise PluginError(N_("entity type “{name}” needs either apply= or both table= "
                                 "and create="), name=self.name)

    @property
    def lifecycle_entity(self) -> bool:
        return self.apply is None

    @property
    def tables(self) -> tuple[str, ...]:
        extra = (self.table,) if self.table and self.table not in self.view_tables else ()
        return (*extra, *self.view_tables)
