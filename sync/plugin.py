"""The sync layer's plugin: key revocation, the two transports, the sync route.

Registered like any other plugin (``xinfang.app.DEFAULT_PLUGINS`` and the
entry point of the same name), so the core knows neither bundles nor HTTP.
"""

from __future__ import annotations

from xinfang import hookimpl
from xinfang.core import i18n
from xinfang.core.i18n import N_
from xinfang.core.routes import Route
from xinfang.core.transports import Transport

from . import bundle, http, peers
from .revocation import xinfang_entity_types, xinfang_validate_event

__all__ = ["xinfang_entity_types", "xinfang_validate_event", "xinfang_transports",
           "xinfang_routes"]


def _sync_over_http(node, peer, url: str, progress=None):
    """Push and pull with the parent at ``url``; a failure is kept as the peer's last error,
    stored language-independent so ``sync status`` shows it in the reader's language."""
    client = http.Client(node, url)
    try:
        return client.sync(progress)
    except http.SyncError as exc:
        peers.record_error(node, client.parent.subject, i18n.stored(exc.message))
        raise


@hookimpl
def xinfang_transports():
    return [
        Transport("bundle", N_("sealed file on a USB stick"), send=bundle.export_bundle,
                  receive=bundle.import_bundle),
        Transport("http", N_("sync over the network (HTTP)"), send=_sync_over_http),
    ]


@hookimpl
def xinfang_routes():
    return [Route("sync", http.PATH, http.sync_route, methods=("POST",),
                  label=N_("sync for child nodes (signed, sealed requests)"))]
