"""Shared fixtures: real nodes in temporary directories, real CLI invocations."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from xinfang.cli.main import build_cli
from xinfang.core.keys import NodeKeys
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.cases import api
from xinfang.plugins.cases.idnumber import synthetic

# Messages in the default language whatever the machine's locale; a test that wants
# English says --lang en.
os.environ["XINFANG_LANG"] = "zh_CN"

VILLAGE = "431202101201"
TOWNSHIP = "431202101"
COUNTY = "431202"


synthetic_id = synthetic


@pytest.fixture
def make_node(tmp_path):
    """Create nodes: ``make_node(level="village", area=VILLAGE, plugins=[...])``."""
    counter = iter(range(1000))
    opened: list[Node] = []

    def make(level: str = "village", area: str = VILLAGE, name: str = "测试村信访站",
             plugins=(), root: bool = False, passphrase: str | None = None) -> Node:
        home = tmp_path / f"node{next(counter)}"
        node = Node.init(home, level=level, area=area, name=name, root=root,
                         passphrase=passphrase, pm=get_plugin_manager(plugins))
        node.operator = "测试员"
        opened.append(node)
        return node

    yield make
    for node in opened:
        node.close()  # closing twice is harmless; any other error is the test's to see


@pytest.fixture
def node(make_node) -> Node:
    return make_node()


def case_input(**overrides) -> api.CaseInput:
    values = dict(
        petitioners=[api.PetitionerInput("赵某甲", synthetic_id(1), "13800000001", "示例村一组")],
        channel="来访", category="劳动社保", kind="申诉求决", request="请求追讨拖欠工资",
        received="2026-01-05")
    values.update(overrides)
    return api.CaseInput(**values)


@pytest.fixture
def invoke(tmp_path):
    """Run the real CLI against a node directory: ``invoke("case", "list", plugins=[...])``."""
    home = tmp_path / "cli-node"

    def run(*args: str, plugins=(), home_dir: Path | None = None, input: str | None = None,
            env: dict | None = None):
        cli = build_cli(get_plugin_manager(plugins))
        return CliRunner().invoke(cli, ["--home", str(home_dir or home), "--operator", "测试员",
                                        *args], input=input, env=env)

    run.home = home
    return run


TODAY = dt.date(2026, 3, 1)


@contextlib.contextmanager
def seeded_keys(seed: str):
    """Nodes made inside get real keys derived from ``seed`` and a counter.

    Authors order things a node does: feeds are paged in author order, and
    events stamped alike sort by author. With keys drawn at random, a
    hypothesis run could not be replayed: the same draws would meet pages cut
    differently. The keys are ordinary Ed25519 and X25519 keys; only where
    their bytes come from changes.
    """
    made = [0]

    def generate(cls):
        made[0] += 1
        digest = hashlib.sha512(f"{seed}/{made[0]}".encode()).digest()
        return cls(Ed25519PrivateKey.from_private_bytes(digest[:32]),
                   X25519PrivateKey.from_private_bytes(digest[32:]))

    with mock.patch.object(NodeKeys, "generate", classmethod(generate)):
        yield


class SharedClock:
    """One wall clock for every node of a test, 1 ms later at each reading.

    Real nodes read their machines' clocks; nodes sharing a process could
    stamp the same millisecond and be ordered by their random keys. With a
    shared clock the total order (and so which of two concurrent steps wins)
    follows the order of the steps, and hypothesis replays a run exactly.
    """

    def __init__(self):
        self.now = int(dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)

    def __call__(self) -> int:
        self.now += 1
        return self.now

    def attach(self, node: Node) -> Node:
        node.clock.now_ms = self
        return node
