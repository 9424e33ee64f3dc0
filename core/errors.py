"""Named errors.

Every failure a user can cause has its own class, carrying a message that says
what was wrong and how to fix it. The CLI turns any ``XinfangError`` into a
one-line message and a non-zero exit; anything else is a bug.
"""


class XinfangError(Exception):
    """Base of every error the CLI reports as a clear message."""


class EncodingError(XinfangError):
    """Bytes or values that are not in the canonical encoding."""


class InvalidEvent(XinfangError):
    """An event that is malformed, wrongly signed or breaks its author's chain."""


class InvalidInput(XinfangError):
    """A value typed by a user (or passed by a plugin) that cannot be accepted."""


class StepRefused(XinfangError):
    """A lifecycle step that the entity's current state does not allow."""


class NodeError(XinfangError):
    """A node directory that is missing, already exists or is damaged."""


class KeyError_(XinfangError):
    """A key file that cannot be read (wrong passphrase, damaged file)."""


class PluginError(XinfangError):
    """A plugin registered something inconsistent (duplicate name, bad hook)."""


class NotFound(XinfangError):
    """An entity asked for by id that the node does not hold."""


class ServeError(XinfangError):
    """``xinfang serve`` cannot listen where it was told to (port taken, bad host or port)."""


class Hold(Exception):
    """Raised by fold code that cannot fold an entity on this node, with why.

    The kernel then *holds* the entity: its events stay in the log and are
    relayed, but it has no view here until the plugins or policy code it
    needs are installed. Never raised for a step that does not fit the
    entity's state: that is a ``StepRefused`` and becomes a conflict.
    """
