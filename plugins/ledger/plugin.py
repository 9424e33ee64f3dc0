"""The ledger plugin's hooks: its records, vocabularies, reports and commands."""

from __future__ import annotations

from xinfang import hookimpl

from . import entities


@hookimpl
def xinfang_entity_types():
    return entities.ENTITY_TYPES


@hookimpl
def xinfang_reports():
    from .reports import REPORTS

    return REPORTS


@hookimpl
def xinfang_vocabulary(name):
    return entities.VOCABULARIES.get(name)


@hookimpl
def xinfang_validate_event(event, node):
    if event.entity in (entities.DISPUTE, entities.PROJECT, entities.TARGET):
        entities.check_arrival(event, node)


@hookimpl
def xinfang_addhooks(pluginmanager):
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def xinfang_routes():
    """The ledger's page in the web view (``/ledger``); its records have the web's
    generic record pages."""
    from .web import routes

    return routes()


@hookimpl
def xinfang_register_commands(cli, registry):
    from . import excel_commands, report_commands
    from .commands import add_commands

    ledger = add_commands(cli, registry)
    excel_commands.add_to(ledger)
    report_commands.add_to(ledger)
