"""What a node trusts: its certificates, the revocations, the pinned root, and
for each certified descendant the point a revocation would name."""

from __future__ import annotations

from typing import Any

import attrs

from xinfang.core import keys, store
from xinfang.core.reports import text_table
from xinfang.core.certs import Authority


@attrs.frozen
class TrustList:
    root: dict[str, Any] | None
    certificates: tuple[dict[str, Any], ...]
    revocations: tuple[dict[str, Any], ...]
    #: certified descendants of this node, each with its feed head as held here:
    #: the epoch and seq ``xinfang trust revoke`` would name to keep all held events
    descendants: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def trust_list(node) -> TrustList:
    db = node.db
    names = dict(db.execute("select subject, name from certs").fetchall())

    def name(subject: str | None) -> str | None:
        return None if subject is None else names.get(subject) or keys.fingerprint(subject)

    revoked = {row["subject"]: row for row in db.query(
        "select subject, epoch, seq, kind, reason from revocations order by subject")}
    certificates = tuple(
        {"name": r["name"], "area": r["area"], "level": r["level"], "subject": r["subject"],
         "fingerprint": keys.fingerprint(r["subject"]), "issuer": name(r["issuer"]),
         "self_signed": r["issuer"] == r["subject"], "revoked": r["subject"] in revoked}
        for r in db.query("select subject, issuer, area, level, name from certs "
                          "order by area, name"))
    revocations = tuple(
        {**r, "name": name(r["subject"]), "fingerprint": keys.fingerprint(r["subject"])}
        for r in revoked.values())
    root_author = store.get_meta(db, "root_author")
    root = None if root_author is None else {
        "name": name(root_author), "subject": root_author,
        "fingerprint": keys.fingerprint(root_author)}
    own = node.info.author
    authority = Authority(db)
    descendants = []
    for cert in certificates:
        subject = cert["subject"]
        if subject == own or not authority.is_ancestor(own, subject):
            continue
        feeds = [{"epoch": e, "seq": s} for e, s in db.execute(
            "select epoch, seq from feeds where author = ? order by epoch", [subject])]
        head = feeds[-1] if feeds else {"epoch": 0, "seq": 0}
        descendants.append({"name": cert["name"], "area": cert["area"],
                            "fingerprint": cert["fingerprint"], "epoch": head["epoch"],
                            "seq": head["seq"], "feeds": feeds, "revoked": cert["revoked"]})
    return TrustList(root, certificates, revocations, tuple(descendants))


def text(d: dict[str, Any]) -> str:
    """The listing as a person reads it (``xinfang trust list``)."""
    root = d["root"]
    lines = [f"根节点 root：{root['name']}  {root['fingerprint']}" if root
             else "根节点 root：尚未固定（xinfang enroll import）",
             text_table([[c["name"], c["area"], c["level"], c["fingerprint"], c["issuer"],
                          "已吊销" if c["revoked"] else ""] for c in d["certificates"]],
                        ["节点", "区划", "层级", "指纹", "签发者", "状态"])]
    for r in d["revocations"]:
        word = "停用" if r["kind"] == "retire" else "吊销"
        lines.append(f"{word} {r['name']}：纪元 {r['epoch']} 序号 {r['seq']} 之后不予采用  {r['reason']}")
    for c in d["descendants"]:
        lines.append(f"下级 {c['name']}（{c['fingerprint']}）：本节点持有至纪元 {c['epoch']} 序号 "
                     f"{c['seq']}；吊销时用 --epoch {c['epoch']} --seq {c['seq']}")
    return "\n".join(lines)
