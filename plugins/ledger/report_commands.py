"""``xinfang ledger target report``: the yearly 考核, a thin shell over ``run_report``.

The same as ``xinfang report run ledger.targets --param year=2026``, under the
ledger's own group; added by ``add_to`` from the plugin's
``xinfang_register_commands``.
"""

from __future__ import annotations

from pathlib import Path

import click

from xinfang.cli import option, pass_app
from xinfang.cli.base import command
from xinfang.cli.kernel_commands import write_report
from xinfang.core.i18n import N_


@command("report", help=N_("The yearly assessment of the townships' targets (目标责任状考核), "
                           "as text, JSON, CSV or xlsx."))
@option("--year", required=True, help=N_("The year, e.g. 2026."))
@option("--area", help=N_("The area [default: this node's area]."))
@option("--format", "fmt", default="text", help=N_("Output format [text|json|csv|xlsx]."))
@option("--out", type=click.Path(dir_okay=False, path_type=Path),
        help=N_("Write to this file [default: the screen]."))
@pass_app
def target_report(app, year, area, fmt, out):
    write_report(app, "ledger.targets", {"year": year, **({"area": area} if area else {})},
                 fmt, out)


def add_to(ledger) -> None:
    """Add ``report`` to ``xinfang ledger target``."""
    ledger.commands["target"].add_command(target_report)
