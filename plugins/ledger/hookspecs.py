"""The ledger plugin's own hooks, added with ``xinfang_addhooks``.

They belong to the 台账 workflow, so they live with it rather than in the
core's hook list: a node without the ledger plugin has no such hooks.
"""

import pluggy

hookspec = pluggy.HookspecMarker("xinfang")


@hookspec
def xinfang_ledger_headers():
    """Return ``{header: column}``: more ways an office's spreadsheet heads a
    column of the 矛盾纠纷排查化解台账, for ``xinfang ledger import``.

    ``column`` is the name of a dispute field (``date``, ``kind``, ``summary``,
    ``people``, ``risk``, ``measures``, ``mediation``, ``leader``, ``person``,
    ``due``, ``project``, ``mass``, ``note``) or one of the sheet's own columns
    ``serial`` (序号), ``area`` (所属乡镇/村), ``progress`` (进展), ``resolved``
    (是否化解) and ``case`` (关联信访事项). Headers are compared without spaces
    and with full-width brackets and slashes read as half-width ones; a header
    naming an unknown column is a start-up error of the import.
    """
