"""The case plugin's own hooks, added with ``xinfang_addhooks``.

They belong to the 信访事项 workflow, so they live with it rather than in the
core's hook list: a node without the case plugin has no such hooks.
"""

import pluggy

hookspec = pluggy.HookspecMarker("xinfang")


@hookspec
def xinfang_deadline_policies():
    """Return deadline policies this plugin implements, each with a ``code``
    (``name@version``) and ``deadlines(case)``, ``max_extension`` like
    ``StatutoryPolicy``.

    Which one governs a case is synced policy (``case.deadline_policy``, set
    with ``xinfang policy set``), never a local choice: a node that lacks the
    code in force holds the cases it governs rather than folding them
    differently.
    """
