"""Named errors.

Every failure a user can cause has its own class, carrying a message that says
what was wrong and how to fix it. The CLI turns any ``XinfangError`` into a
one-line message and a non-zero exit; anything else is a bug.
"""

from .i18n import Message


class Explained(Exception):
    """An exception whose message is a catalogue message.

    Raised as ``InvalidInput(N_("... {name} ..."), name=value)``: the message
    stays a msgid with its values until it is shown, so the reader's
    language is used, and fold code that keeps the reason in a view keeps
    it language-independent (``exc.message.stored()``).
    """

    def __init__(self, message: "str | Message", **args):
        self.message = message if isinstance(message, Message) else Message(message, **args)
        super().__init__(self.message.msgid)

    def __str__(self) -> str:
        return str(self.message)


class XinfangError(Explained):
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


class Hold(Explained):
    """Raised by fold code that cannot fold an entity on this node, with why.

    The kernel then *holds* the entity: its events stay in the log and are
    relayed, but it has no view here until the plugins or policy code it
    needs are installed. Never raised for a step that does not fit the
    entity's state: that is a ``StepRefused`` and becomes a conflict.
    """
