"""What a node trusts: its certificates, the revocations, the pinned root, and
for each certified descendant the point a revocation would name.

A certificate a revocation voids (signed by a revoked key and not logged
before its point, ``certs.void_reason``) is listed as void: the sign that a
stolen key has been used to certify someone.
"""

from __future__ import annotations

from typing import Any

import attrs

from xinfang.core import keys, store
from xinfang.core.reports import text_table
from xinfang.core.authority import Authority
from xinfang.core.certs import ROOT_FINGERPRINT
from xinfang.core.i18n import N_, _

from .trust import ROTATION_REASON

#: the columns of the certificate table
HEADERS = (N_("node"), N_("area"), N_("level"), N_("fingerprint"), N_("issuer"), N_("status"))


@attrs.frozen
class TrustList:
    root: dict[str, Any] | None
    #: the fingerprint typed at ``init --root-fingerprint``, which the first
    #: ``enroll import`` must match; None if none was given
    expected_root: str | None
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
    authority = Authority(db)
    certificates = tuple(
        {"name": r["name"], "area": r["area"], "level": r["level"], "subject": r["subject"],
         "fingerprint": keys.fingerprint(r["subject"]), "issuer": name(r["issuer"]),
         "self_signed": r["issuer"] == r["subject"], "revoked": r["subject"] in revoked,
         "void": authority.refusal(r["subject"]) is not None}
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
    return TrustList(root, store.get_meta(db, ROOT_FINGERPRINT), certificates, revocations,
                     tuple(descendants))


def text(d: dict[str, Any]) -> str:
    """The listing as a person reads it (``xinfang trust list``)."""
    lines = [_root_line(d["root"], d["expected_root"]),
             text_table([[c["name"], c["area"], c["level"], c["fingerprint"], c["issuer"],
                          _status(c)] for c in d["certificates"]],
                        [_(h) for h in HEADERS])]
    for r in d["revocations"]:
        line = (_("retired {name}: nothing after epoch {epoch} seq {seq} is accepted  {reason}")
                if r["kind"] == "retire" else
                _("revoked {name}: nothing after epoch {epoch} seq {seq} is accepted  {reason}"))
        reason = _(r["reason"]) if r["reason"] == ROTATION_REASON else r["reason"]
        lines.append(line.format(name=r["name"], epoch=r["epoch"], seq=r["seq"], reason=reason))
    for c in d["descendants"]:
        lines.append(_("child {name} ({fingerprint}): this node holds it up to epoch {epoch} "
                       "seq {seq}; to revoke, use --epoch {epoch} --seq {seq}").format(
                           name=c["name"], fingerprint=c["fingerprint"], epoch=c["epoch"],
                           seq=c["seq"]))
    return "\n".join(lines)


def _root_line(root: dict[str, Any] | None, expected: str | None) -> str:
    if root:
        return _("root: {name}  {fingerprint}").format(name=root["name"],
                                                       fingerprint=root["fingerprint"])
    if expected:
        return _("root: not pinned yet; the first `xinfang enroll import` must end at "
                 "{fingerprint}").format(fingerprint=expected)
    return _("root: not pinned yet (xinfang enroll import)")


def _status(cert: dict[str, Any]) -> str:
    if cert["revoked"]:
        return _("revoked")
    return _("void: issued by a revoked key after its point") if cert["void"] else ""
