"""Long work reports its progress to the command line, which draws it on stderr
(only on a terminal, never with ``--json``)."""

from __future__ import annotations

from sync_helpers import build_tree, bundle_path, register
from xinfang.core import verify
from xinfang.core.node import Draft
from xinfang.sync import bundle


def test_bundle_export_and_import_report_events_done_out_of_the_total(tmp_path):
    tree = build_tree(tmp_path)
    for serial in range(1, 6):
        register(tree.village, serial)
    path = bundle_path(tmp_path, tree.village, tree.township)
    sent, got = [], []
    summary = bundle.export_bundle(tree.village, tree.township.info.name, path,
                                   progress=lambda done, total: sent.append((done, total)))
    assert sent[-1] == (summary.events, summary.events) == (5, 5)
    imported = bundle.import_bundle(tree.township, path,
                                    progress=lambda done, total: got.append((done, total)))
    assert got[-1] == (5, 5) and imported.applied == 5
    tree.close()


def test_rebuild_reports_every_thousand_events(make_node):
    node = make_node(level="county", area="431202", name="测试县", root=True)
    node.append_many(Draft("settlement.settle", "settlement", f"{n:064x}", "431202",
                           {"note": "测试", "by": "测试员"}) for n in range(2100))
    seen = []
    assert verify.rebuild(node, progress=seen.append).consistent
    assert seen == [1000, 2000]
