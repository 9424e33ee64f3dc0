"""Who may use a node's web view: roles, users, and the node's own tables for them.

Accounts are local to one node, never events: they are not signed, not
folded and never synced (a bundle or a sync page carries events only), and
``xinfang rebuild`` leaves them alone, since they are not views. Their
tables come from a migration set of their own, ``xinfang.web``, applied the
first time the accounts layer touches a node (``ready``): the web layer owns
no entity type, so the kernel's per-entity-type migrations are not the place,
and a node that never has accounts never gets the tables. A backup copies
the whole database and so keeps them.
"""

from __future__ import annotations

import datetime as dt
import weakref

import attrs
import sqlite_utils
from sqlite_utils.migrations import Migrations

from xinfang.core import areas
from xinfang.core.entities import Choice
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, _

MIGRATIONS = Migrations("xinfang.web")


@MIGRATIONS(name="0001_accounts")
def _accounts(db: sqlite_utils.Database) -> None:
    db.executescript("""
    create table web_users (
        name text primary key,
        role text not null,
        area text not null,
        password_hash text not null,      -- argon2id, in its PHC string form
        disabled integer not null default 0,
        created text not null
    );
    create table web_sessions (
        token_hash text primary key,      -- sha256 of the cookie's token; never the token
        user text not null references web_users (name) on delete cascade,
        csrf text not null,
        address text not null,
        created text not null,
        last_seen text not null
    );
    create index web_sessions_user on web_sessions (user);
    create table web_login_failures (
        pos integer primary key,
        name text not null,
        address text not null,
        at text not null
    );
    create index web_login_failures_name on web_login_failures (name, at);
    create index web_login_failures_address on web_login_failures (address, at);
    """)


_READY: "weakref.WeakSet[sqlite_utils.Database]" = weakref.WeakSet()


def ready(db: sqlite_utils.Database) -> sqlite_utils.Database:
    """Make sure this node has the accounts tables: migrated once per open database."""
    if db not in _READY:
        MIGRATIONS.apply(db)
        _READY.add(db)
    return db


# -- roles ------------------------------------------------------------------

#: what a page or command may ask a role
REGISTER = "register"          # 登记 a case
VIEW_AREA = "view_area"        # see the cases of the user's own area
TAKE_STEPS = "take_steps"      # 受理, 交办, 答复, 办结 …
VIEW_ALL = "view_all"          # see every case in the node's jurisdiction
APPROVE = "approve"            # approve reports
SUPERVISE = "supervise"        # 督办
MANAGE_USERS = "manage_users"  # add, disable, enable users
SET_POLICY = "set_policy"      # policy and its settings
VIEW_ACCESS_LOG = "view_access_log"
ACTIONS = (REGISTER, VIEW_AREA, TAKE_STEPS, VIEW_ALL, APPROVE, SUPERVISE, MANAGE_USERS,
           SET_POLICY, VIEW_ACCESS_LOG)


@attrs.frozen
class Role:
    """A role: its stable code, the users' word for it, and what it may do."""

    choice: Choice
    actions: frozenset[str] = attrs.field(converter=frozenset)

    @property
    def name(self) -> str:
        return self.choice.code

    @property
    def label(self) -> str:
        return self.choice.label

    def may(self, action: str) -> bool:
        if action not in ACTIONS:
            raise ValueError(action)  # a typo in the calling code, not a user's input
        return action in self.actions


ROLES: dict[str, Role] = {role.name: role for role in (
    Role(Choice("clerk", "信息员"), {REGISTER, VIEW_AREA}),
    Role(Choice("handler", "经办人"), {REGISTER, VIEW_AREA, TAKE_STEPS}),
    Role(Choice("leader", "领导"), {VIEW_AREA, VIEW_ALL, APPROVE, SUPERVISE}),
    Role(Choice("admin", "管理员"), {MANAGE_USERS, SET_POLICY, VIEW_ACCESS_LOG}),
)}


#: the action creating a record ("") or taking one of its steps needs, where it is not
#: the default (REGISTER to create a case, TAKE_STEPS for everything else): 督办 is the
#: leaders' (issuing an order, closing it or sending it back, naming a 包案 leader)
STEP_ACTIONS = {("order", ""): SUPERVISE, ("order", "close"): SUPERVISE,
                ("order", "redo"): SUPERVISE, ("case", "baoan"): SUPERVISE}


def step_action(entity: str, step: str = "") -> str:
    """The action a role needs to create a record of ``entity`` (``step`` "") or to take
    its step ``step``."""
    default = REGISTER if (entity, step) == ("case", "") else TAKE_STEPS
    return STEP_ACTIONS.get((entity, step), default)


def role_names() -> str:
    """The roles as ``label|name``, the two spellings ``role`` takes."""
    return _(", ").join(f"{r.label}|{r.name}" for r in ROLES.values())


def role(text: str) -> Role:
    """A role by its code (``handler``) or its label (经办人)."""
    for found in ROLES.values():
        if text in (found.name, found.label):
            return found
    raise InvalidInput(N_("there is no role “{role}”: use one of {roles}"), role=text,
                       roles=role_names())


# -- users ------------------------------------------------------------------

@attrs.frozen
class User:
    name: str
    role: Role
    area: str
    disabled: bool
    created: str

    def may(self, action: str) -> bool:
        return self.role.may(action)

    def may_take(self, entity: str, step: str = "") -> bool:
        """Whether this user's role may create a record of ``entity`` (``step`` "") or
        take its step ``step`` (``step_action``)."""
        return self.role.may(step_action(entity, step))

    def may_see(self, area: str) -> bool:
        """Whether this user may see a record of ``area`` (the node already holds it,
        so it lies in the node's jurisdiction)."""
        if self.role.may(VIEW_ALL):
            return True
        return self.role.may(VIEW_AREA) and areas.contains(self.area, area)

    def to_json(self) -> dict:
        return {"name": self.name, "role": self.role.name, "role_label": self.role.label,
                "area": self.area, "disabled": self.disabled, "created": self.created}


USER_COLUMNS = "name, role, area, disabled, created"


def user_from_row(row) -> User:
    name, role_code, area, disabled, created = row
    return User(name, ROLES[role_code], area, bool(disabled), created)


def find_user(db: sqlite_utils.Database, name: str) -> User | None:
    row = ready(db).execute(f"select {USER_COLUMNS} from web_users where name = ?",
                            [name]).fetchone()
    return user_from_row(row) if row else None


def utc(now: dt.datetime | None) -> dt.datetime:
    """``now`` as an aware UTC time (a naive one is taken as local time)."""
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    return now.astimezone(dt.timezone.utc)


def stamp(now: dt.datetime) -> str:
    """A time as stored: UTC, microseconds, so stored stamps compare as text."""
    return utc(now).isoformat(timespec="microseconds")
