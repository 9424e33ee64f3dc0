"""登记: registering a 信访事项 through the API, and what is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import COUNTY, TODAY, TOWNSHIP, VILLAGE, case_input, synthetic_id
from xinfang.core.errors import InvalidInput
from xinfang.plugins.cases import api


def events(node) -> int:
    return node.db.execute("select count(*) from events").fetchone()[0]


def person(name="赵某甲", serial=1, **kw) -> api.PetitionerInput:
    return api.PetitionerInput(name, synthetic_id(serial), **kw)


def test_registered_case_keeps_every_value_and_petitioners_clear_values(node):
    data = case_input(
        petitioners=[api.PetitionerInput("赵某甲", synthetic_id(1), "13800000001", "示例村一组",
                                         representative=True),
                     api.PetitionerInput("钱某乙", synthetic_id(2), "138 0000 0002")],
        channel="来信", category="国土资源", kind="检举控告", request="  征地补偿款未发放  ",
        received="2026-02-10")
    case_id = api.register_case(node, data, today=TODAY)

    case = api.get_case(node, case_id)
    assert case.status == "registered" and case.status_label == "已登记"
    assert (case.channel, case.category, case.kind) == ("来信", "国土资源", "检举控告")
    assert case.request == "征地补偿款未发放"
    assert case.received == "2026-02-10"
    assert case.area == VILLAGE
    assert case.headcount == 2
    assert [(p.name, p.id_number, p.phone, p.address, p.representative)
            for p in case.petitioners] == [
        ("赵某甲", synthetic_id(1), "13800000001", "示例村一组", True),
        ("钱某乙", synthetic_id(2), "138 0000 0002", None, False)]
    assert [h["step"] for h in case.history] == ["register"]
    assert case.history[0]["operator"] == "测试员"


def test_case_number_is_area_year_serial_and_counts_up_per_year(node):
    first = api.register_case(node, case_input(received="2026-01-05"), today=TODAY)
    second = api.register_case(node, case_input(received="2026-01-06"), today=TODAY)
    older = api.register_case(node, case_input(received="2025-12-30"), today=TODAY)
    assert first == f"{VILLAGE}-2026-00001"
    assert second == f"{VILLAGE}-2026-00002"
    assert older == f"{VILLAGE}-2025-00001"


def test_received_date_defaults_to_today(node):
    case_id = api.register_case(node, case_input(received=None), today=TODAY)
    assert api.get_case(node, case_id).received == TODAY.isoformat()


def test_channel_category_and_kind_accept_code_or_label(node):
    case_id = api.register_case(
        node, case_input(channel="online", category="environment", kind="suggestion"), today=TODAY)
    case = api.get_case(node, case_id)
    assert (case.channel, case.category, case.kind) == ("网上信访", "环境污染", "建议意见")


def test_id_number_with_lower_case_x_is_stored_upper_case(node):
    with_x = synthetic_id(8)
    assert with_x.endswith("X")
    case_id = api.register_case(
        node, case_input(petitioners=[api.PetitionerInput("孙某丙", with_x.lower())]), today=TODAY)
    assert api.get_case(node, case_id).petitioners[0].id_number == with_x


def test_petitioner_without_id_number_is_accepted(node):
    case_id = api.register_case(
        node, case_input(petitioners=[api.PetitionerInput("李某丁", phone="13800000004")]),
        today=TODAY)
    assert api.get_case(node, case_id).petitioners[0].id_number is None


def test_headcount_larger_than_petitioners_named_is_kept(node):
    case_id = api.register_case(node, case_input(headcount=12), today=TODAY)
    assert api.get_case(node, case_id).headcount == 12


def test_township_node_registers_a_case_in_a_village_below_it(make_node):
    township = make_node(level="township", area=TOWNSHIP, name="测试镇信访办")
    case_id = api.register_case(township, case_input(area=VILLAGE), today=TODAY)
    assert api.get_case(township, case_id).area == VILLAGE
    assert case_id.startswith(f"{TOWNSHIP}-2026-")


@pytest.mark.parametrize("bad_id, says", [
    ("99000019800101001", "共 18 位"),                     # 17 characters
    ("9900001980010100123", "共 18 位"),                   # 19 characters
    ("99000019800101001A", "共 18 位"),                    # a letter other than X
    ("9900001980O101001X", "共 18 位"),                    # letter O in the digits
    ("990000198013010018", "没有有效的出生日期"),          # month 13
])
def test_malformed_id_number_is_refused_and_nothing_written(node, bad_id, says):
    with pytest.raises(InvalidInput, match=says):
        api.register_case(node, case_input(
            petitioners=[api.PetitionerInput("赵某甲", bad_id)]), today=TODAY)
    assert events(node) == 0


def test_id_number_with_wrong_check_digit_is_refused_naming_the_right_one(node):
    good = synthetic_id(1)
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(InvalidInput, match=f"GB 11643.*最后一位应为 {good[17]}"):
        api.register_case(node, case_input(
            petitioners=[api.PetitionerInput("赵某甲", wrong)]), today=TODAY)
    assert events(node) == 0


def test_one_bad_id_among_several_petitioners_writes_nothing(node):
    wrong = synthetic_id(2)[:17] + ("0" if synthetic_id(2)[17] != "0" else "1")
    with pytest.raises(InvalidInput, match="GB 11643"):
        api.register_case(node, case_input(petitioners=[
            person("赵某甲", 1), api.PetitionerInput("钱某乙", wrong)]), today=TODAY)
    assert events(node) == 0
    assert node.db.execute("select count(*) from vault").fetchone()[0] == 0


def test_unknown_category_is_refused_listing_the_categories(node):
    with pytest.raises(InvalidInput, match=r"问题类别.*没有“水利工程”这一项.*劳动社保\(labour\)"):
        api.register_case(node, case_input(category="水利工程"), today=TODAY)
    assert events(node) == 0


@pytest.mark.parametrize("field, value", [("channel", "飞鸽传书"), ("kind", "求助")])
def test_unknown_channel_or_kind_is_refused(node, field, value):
    with pytest.raises(InvalidInput, match=f"没有“{value}”这一项"):
        api.register_case(node, case_input(**{field: value}), today=TODAY)
    assert events(node) == 0


@pytest.mark.parametrize("area", [
    "431202101202",   # the neighbouring village
    TOWNSHIP,         # the township above this village node
    "110101001001",   # another province
])
def test_area_outside_the_node_jurisdiction_is_refused(node, area):
    with pytest.raises(InvalidInput, match=f"问题属地 {area} 不在本节点辖区"):
        api.register_case(node, case_input(area=area), today=TODAY)
    assert events(node) == 0


@pytest.mark.parametrize("area", ["4312021012", "43120210120x", "abc"])
def test_malformed_area_code_is_refused(node, area):
    with pytest.raises(InvalidInput, match="区划代码"):
        api.register_case(node, case_input(area=area), today=TODAY)
    assert events(node) == 0


def test_received_date_in_the_future_is_refused(node):
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    with pytest.raises(InvalidInput, match=f"{tomorrow} 晚于今天"):
        api.register_case(node, case_input(received=tomorrow), today=TODAY)
    assert events(node) == 0


def test_received_date_that_is_not_a_date_is_refused(node):
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        api.register_case(node, case_input(received="2026-02-30"), today=TODAY)
    assert events(node) == 0


@pytest.mark.parametrize("request_text", ["", "   ", "\n\t"])
def test_empty_request_is_refused(node, request_text):
    with pytest.raises(InvalidInput, match="诉求"):
        api.register_case(node, case_input(request=request_text), today=TODAY)
    assert events(node) == 0


def test_case_without_petitioners_is_refused(node):
    with pytest.raises(InvalidInput, match="至少要有一名信访人"):
        api.register_case(node, case_input(petitioners=[]), today=TODAY)
    assert events(node) == 0


def test_petitioner_without_name_is_refused(node):
    with pytest.raises(InvalidInput, match="每名信访人都须填写姓名"):
        api.register_case(node, case_input(
            petitioners=[api.PetitionerInput("  ", synthetic_id(1))]), today=TODAY)
    assert events(node) == 0


def test_headcount_below_the_petitioners_named_is_refused(node):
    with pytest.raises(InvalidInput, match="人数"):
        api.register_case(node, case_input(
            petitioners=[person("赵某甲", 1), person("钱某乙", 2)], headcount=1), today=TODAY)
    assert events(node) == 0


def test_more_than_five_representatives_is_refused(node):
    people = [person(f"代表某{i}", i, representative=True) for i in range(1, 7)]
    with pytest.raises(InvalidInput, match="最多推选 5 名代表"):
        api.register_case(node, case_input(petitioners=people), today=TODAY)
    assert events(node) == 0
    five = [person(f"代表某{i}", i, representative=True) for i in range(1, 6)]
    case_id = api.register_case(node, case_input(petitioners=five), today=TODAY)
    assert sum(p.representative for p in api.get_case(node, case_id).petitioners) == 5


def test_phone_that_is_not_a_number_is_refused(node):
    with pytest.raises(InvalidInput, match="不是电话号码"):
        api.register_case(node, case_input(
            petitioners=[api.PetitionerInput("赵某甲", synthetic_id(1), "打不通")]), today=TODAY)
    assert events(node) == 0


def test_unknown_case_field_is_refused_without_a_plugin_that_adds_it(node):
    with pytest.raises(InvalidInput, match="扩展字段 没有这些项：major"):
        api.register_case(node, case_input(fields={"major": True}), today=TODAY)
    assert events(node) == 0


def test_county_node_refuses_a_case_of_another_county(make_node):
    county = make_node(level="county", area=COUNTY, name="测试县信访局")
    with pytest.raises(InvalidInput, match="不在本节点辖区"):
        api.register_case(county, case_input(area="431203101201"), today=TODAY)
    assert events(county) == 0


def test_a_restored_node_numbers_cases_in_a_new_range_after_a_new_epoch(node):
    """After a restore the node cannot know which numbers it gave out; it must not reuse them."""
    first = api.register_case(node, case_input(), today=dt.date(2026, 3, 1))
    assert first.endswith("-2026-00001")
    node.new_epoch()
    restored = api.register_case(node, case_input(), today=dt.date(2026, 3, 1))
    again = api.register_case(node, case_input(), today=dt.date(2026, 3, 1))
    assert (restored.rsplit("-", 1)[1], again.rsplit("-", 1)[1]) == ("100001", "100002")


def test_two_petitioners_with_one_id_number_are_refused_and_nothing_is_written(node):
    people = [api.PetitionerInput("赵某甲", synthetic_id(1)), api.PetitionerInput("钱某乙", synthetic_id(1))]
    with pytest.raises(InvalidInput, match="同一个身份证号"):
        api.register_case(node, case_input(petitioners=people), today=TODAY)
    twice = [api.PetitionerInput("赵某甲", synthetic_id(1)), api.PetitionerInput("赵某甲", synthetic_id(1))]
    with pytest.raises(InvalidInput, match="列了两次"):
        api.register_case(node, case_input(petitioners=twice), today=TODAY)
    assert node.db.execute("select count(*) from events").fetchone()[0] == 0


def test_a_registration_with_one_id_tag_twice_is_refused_on_arrival_too(node):
    from xinfang.core.errors import InvalidEvent
    from xinfang.core.node import Draft

    person = {"name": "a" * 64, "id_tag": "b" * 32, "representative": False}
    body = {"channel": "visit", "category": "labour", "kind": "appeal", "request": "请求",
            "received": "2026-01-05", "headcount": 2, "petitioners": [person, dict(person)],
            "fields": {}, "by": "测试员"}
    with pytest.raises(InvalidEvent, match="为两名信访人填了同一个身份证号"):
        node.append(Draft("case.register", "case", f"{VILLAGE}-2026-00001", VILLAGE, body))
