"""Derived flags: 集体访 (5 or more people), 重复访 (同人同事, linked) and 初信初访."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from conftest import case_input, synthetic_id
from plugins import hearing
from xinfang import hookimpl
from xinfang.core import policy, verify
from xinfang.core.fold import views_digest
from xinfang.plugins.cases import api

TODAY = dt.date(2026, 11, 22)


class RepeatWindow:
    """A plugin that would like a 30-day 重复访 window by itself: it cannot have one."""

    @hookimpl
    def xinfang_policy_keys(self):
        return []


def people(*serials: int, rep: bool = False) -> list[api.PetitionerInput]:
    return [api.PetitionerInput(f"信访人{s}号", synthetic_id(s), representative=rep)
            for s in serials]


def register(node, *serials, received="2026-02-01", category="劳动社保", **kw) -> str:
    return api.register_case(node, case_input(petitioners=people(*serials), received=received,
                                              category=category, **kw), today=TODAY)


def flags(node, case_id):
    case = api.get_case(node, case_id, reveal=False)
    return case.collective, case.repeat_of, case.first_petition


# -- 集体访 ---------------------------------------------------------------

@pytest.mark.parametrize("headcount, collective", [(1, False), (4, False), (5, True), (30, True)])
def test_collective_visit_from_five_people(node, headcount, collective):
    case_id = register(node, 1, headcount=headcount)
    assert api.get_case(node, case_id).collective is collective


@pytest.mark.parametrize("channel", ["来信", "网上信访", "电话"])
def test_a_letter_signed_by_many_is_not_a_collective_visit(node, channel):
    """集体访 counts people who came in one visit; 联名信 is not a visit."""
    case_id = register(node, 1, 2, 3, 4, 5, 6, channel=channel)
    assert api.get_case(node, case_id).collective is False


def test_headcount_defaults_to_the_petitioners_named_for_the_collective_flag(node):
    four = register(node, 1, 2, 3, 4)
    five = register(node, 11, 12, 13, 14, 15)
    assert api.get_case(node, four).headcount == 4 and not api.get_case(node, four).collective
    assert api.get_case(node, five).headcount == 5 and api.get_case(node, five).collective


def test_collective_threshold_is_policy_the_root_lowers_to_three(make_node):
    node = make_node(plugins=[hearing], root=True)
    policy.set_policy(node, "case.collective_threshold", "3")
    assert not api.get_case(node, register(node, 1, headcount=2)).collective
    assert api.get_case(node, register(node, 2, headcount=3)).collective


def test_lowering_the_collective_threshold_refolds_cases_already_registered(make_node):
    node = make_node(root=True)
    three = register(node, 1, headcount=3)
    assert not api.get_case(node, three).collective
    policy.set_policy(node, "case.collective_threshold", "3")
    assert api.get_case(node, three).collective
    assert verify.rebuild(node, check_only=True).consistent


# -- 重复访 / 初信初访 --------------------------------------------------------

def test_first_case_of_a_petitioner_is_a_first_petition(node):
    assert flags(node, register(node, 1)) == (False, None, True)


def test_same_id_number_and_category_is_a_repeat_linked_to_the_earlier_case(node):
    first = register(node, 1, received="2026-01-05")
    again = register(node, 1, received="2026-03-01")
    assert flags(node, again) == (False, first, False)
    assert flags(node, first) == (False, None, True)


def test_repeat_links_to_the_latest_earlier_case(node):
    january = register(node, 1, received="2026-01-05")
    february = register(node, 1, received="2026-02-05")
    march = register(node, 1, received="2026-03-05")
    assert api.get_case(node, march).repeat_of == february
    assert api.get_case(node, february).repeat_of == january


def test_same_person_on_another_category_is_not_a_repeat(node):
    register(node, 1, received="2026-01-05", category="劳动社保")
    other = register(node, 1, received="2026-03-01", category="邻里纠纷")
    assert flags(node, other) == (False, None, True)


def test_another_person_on_the_same_category_is_not_a_repeat(node):
    register(node, 1, received="2026-01-05")
    other = register(node, 2, received="2026-03-01")
    assert flags(node, other) == (False, None, True)


def test_a_co_signer_of_the_earlier_case_makes_a_repeat(node):
    group = register(node, 1, 2, 3, received="2026-01-05")
    alone = register(node, 3, received="2026-03-01")
    assert api.get_case(node, alone).repeat_of == group


def test_petitioners_without_id_numbers_are_never_linked(node):
    data = case_input(petitioners=[api.PetitionerInput("赵某甲")], received="2026-01-05")
    api.register_case(node, data, today=TODAY)
    again = api.register_case(node, attrs.evolve(data, received="2026-03-01"), today=TODAY)
    assert flags(node, again) == (False, None, True)


def test_same_id_number_typed_with_lower_case_x_still_links(node):
    with_x = synthetic_id(8)
    first = api.register_case(node, case_input(
        petitioners=[api.PetitionerInput("孙某丙", with_x)], received="2026-01-05"), today=TODAY)
    again = api.register_case(node, case_input(
        petitioners=[api.PetitionerInput("孙某丙", with_x.lower())], received="2026-02-05"),
        today=TODAY)
    assert api.get_case(node, again).repeat_of == first


def test_repeat_only_within_the_default_window_of_365_days(node):
    register(node, 1, received="2025-01-10")
    second_person = register(node, 2, received="2025-01-10")
    assert flags(node, register(node, 1, received="2026-02-01")) == (False, None, True)  # 387 d
    on_the_last_day = register(node, 2, received="2026-01-10")                           # 365 d
    assert api.get_case(node, on_the_last_day).repeat_of == second_person


def test_repeat_window_is_policy_not_a_plugin_setting(make_node):
    node = make_node(plugins=[RepeatWindow()], root=True)
    policy.set_policy(node, "case.repeat_window_days", 30)
    register(node, 1, received="2026-01-05")
    outside = register(node, 1, received="2026-02-05")      # 31 days later
    assert flags(node, outside) == (False, None, True)
    inside = register(node, 1, received="2026-03-07")       # 30 days after the February case
    assert api.get_case(node, inside).repeat_of == outside


def test_earlier_case_registered_later_relinks_the_later_case(node):
    later = register(node, 1, received="2026-03-01")
    assert flags(node, later) == (False, None, True)
    earlier = register(node, 1, received="2026-02-01")
    assert flags(node, earlier) == (False, None, True)
    assert flags(node, later) == (False, earlier, False)


def test_earlier_case_registered_later_slots_into_the_chain(node):
    january = register(node, 1, received="2026-01-05")
    march = register(node, 1, received="2026-03-05")
    february = register(node, 1, received="2026-02-05")
    assert api.get_case(node, february).repeat_of == january
    assert api.get_case(node, march).repeat_of == february


def test_repeat_and_collective_flags_are_rebuilt_identically_from_the_log(node):
    register(node, 1, received="2026-03-01")
    register(node, 1, 2, 3, 4, 5, received="2026-02-01")
    register(node, 5, received="2026-04-01", category="邻里纠纷")
    before = views_digest(node.db, node.registry)
    report = verify.rebuild(node)
    assert report.consistent, report.differences
    assert views_digest(node.db, node.registry) == before
