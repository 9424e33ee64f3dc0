"""The demo's supervision: the county's 督办单 to a township, its answer, and the 通报.

The county's overdue list as of today holds the demo month's cases no office
has decided on; it supervises one of them (an order to the township that
holds it), the township answers, and the county drafts its 通报 from the
lists, printed and written as xlsx into the demo directory.
"""

from __future__ import annotations

import datetime as dt

from xinfang.core import records, reports
from xinfang.core.i18n import _
from xinfang.plugins.supervision import api

from .synthetic import ORDER_REQUIRED, ORDER_RESULT


def supervision(world) -> bool:
    from .county import COUNTY, heading, say

    county = world.nodes[COUNTY[0]]
    heading(_("Supervision: an order to a township, its answer, and the circular"))
    overdue = [i for i in api.supervision_list(county, world.today) if i.kind == "case"]
    target = next((i for i in overdue if len(i.area) > 9), None)
    if target is None:
        say(_("Nothing is overdue at the county."), fg="red", bold=True)
        return False
    order = api.issue(county, [target.ref], (world.today + dt.timedelta(days=7)).isoformat(),
                      ORDER_REQUIRED, today=world.today)
    town = world.nodes[target.area[:9]]
    world.carry(county, town)
    api.step(town, order, "respond", {"result": ORDER_RESULT}, today=world.today)
    world.carry(town, county)
    status = records.get(county, "order", order)
    say(_("{count} overdue duties on the county's list; order {order} on {case} to {town}, "
          "which answers; the county now sees it as: {state}").format(
        count=len(overdue), order=order, case=target.ref, town=town.info.name,
        state=status.status_label))
    result = reports.run_report(county, "supervision.notice", {"as_of": world.today.isoformat()})
    say(result.heading)
    for paragraph in result.preamble:
        say(paragraph)
    sheet = world.base / f"{world.today.isoformat()}-notice.xlsx"
    sheet.write_bytes(reports.render(county.registry, result, "xlsx"))
    say(_("Written as xlsx: {path}").format(path=sheet))
    return status.status == "responded"
