"""``xinfang demo --web``: the demo county's node served to a browser.

Once the demo has built and synced its county, the county node gets two
accounts, a 领导 and a 经办人 (synthetic names, one password made for this
run and printed), and is served by the same server as ``xinfang web``
(``sync.server.make_server``) until Ctrl-C (or SIGTERM). Then the demo ends as
usual: a temporary directory is deleted, a ``--keep`` one kept.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
from pathlib import Path

import click

from xinfang.core import clock
from xinfang.core.i18n import _
from xinfang.core.node import Node
from xinfang.sync.server import make_server
from xinfang.web import accounts, users

from . import month
from .synthetic import COUNTY

#: the demo's accounts: login name, role; both for the whole county
LOGINS = (("demo.leader", "leader"), ("demo.handler", "handler"))


def add_logins(home: Path, pm=None) -> str:
    """Add the demo accounts to the node at ``home``; the password made for them."""
    password = secrets.token_urlsafe(9)
    with Node.open(home, pm=pm) as node:
        for name, role in LOGINS:
            accounts.add_user(node, name, role, password, area=COUNTY[0])
    return password


def _stop_on_sigterm() -> None:
    """SIGTERM ends the serving as Ctrl-C does, so the demo still cleans up."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread: Ctrl-C only
        signal.signal(signal.SIGTERM, stop)


def serve(base: Path, host: str, port: int, pm=None) -> None:
    """Serve the county node of the demo built in ``base`` until interrupted."""
    home = base / COUNTY[0]
    password = add_logins(home, pm)
    server = make_server(home, host, port, pm=pm)
    url = f"http://{host}:{server.effective_port}/"
    demo_month = month.first_day(clock.today()).strftime("%Y-%m")
    click.secho("\n" + _("== The county's web view =="), bold=True)
    click.echo(_("Open {url} in a browser (the demo month: {month_url}); Ctrl-C stops "
                 "it").format(url=url, month_url=f"{url}?period={demo_month}"))
    for name, role in LOGINS:
        click.echo("  " + _("Log in as {name} ({role}), password {password}").format(
            name=name, role=users.role(role).label, password=password))
    _stop_on_sigterm()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    finally:
        server.close()
        server.xinfang_node.close()
    click.echo(_("The web view has stopped."))
