"""Write ``ledger_template.xlsx``: a synthetic 矛盾纠纷排查化解台账 as a township office keeps it.

Two title rows, the header row (row 3), five disputes (rows 4-8) and a blank
row, with synthetic names and the test tree's area codes (431202101201 and
431202101202, the two villages of township 431202101 in tests/sync_helpers.py).
Run ``python tests/data/make_ledger_template.py`` to write it again;
``tests/test_ledger_excel.py`` checks the file still matches ``ROWS``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "ledger_template.xlsx"
TITLE = ("示例一镇矛盾纠纷排查化解台账", "填报单位：示例一镇综治中心　　2026年11月")
HEADER = ("序号", "排查日期", "所属乡镇/村", "矛盾类型", "基本情况", "涉及人数", "风险等级",
          "化解措施", "化解方式", "责任领导", "责任人", "化解时限", "进展", "是否化解",
          "关联信访事项", "备注")
ROWS = (
    (1, dt.date(2026, 11, 3), "431202101201", "征地补偿", "赵某甲等5户反映征地补偿款未足额发放",
     5, "高", "核对补偿清册", "行政调解", "钱某乙", "孙某丙", dt.date(2026, 12, 15),
     "已核对清册，正在协调", "否", None, None),
    (2, dt.date(2026, 11, 5), "431202101201", "邻里纠纷", "李某丁与周某戊宅基地界址争议",
     2, "低", "现场勘界", "人民调解", "钱某乙", "吴某己", dt.date(2026, 11, 30),
     "双方签订调解协议", "是", None, "村调委会调解"),
    (3, dt.date(2026, 11, 6), "431202101202", "后期扶持", "郑某庚反映后扶资金发放对象有误",
     1, "中", None, None, "王某辛", "冯某壬", dt.date(2026, 12, 31), None, "否", None, None),
    (4, dt.date(2026, 11, 10), "示例二村", "工程建设", "移民新村道路施工影响陈某癸出行",
     3, "中", "调整施工便道", "行政调解", "王某辛", "冯某壬", dt.date(2026, 12, 10),
     None, "否", None, "施工方已到场"),
    (5, dt.date(2026, 11, 12), "431202101202", "移民安置", "褚某子等12人反映安置房分配不公",
     12, "高", "召开户主会", "信访调解", "王某辛", "卫某丑", dt.date(2026, 12, 20),
     "已召开户主会一次", "否", None, None),
)


def write(path: Path = TEMPLATE) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "台账"
    for title in TITLE:
        sheet.append([title])
    sheet.append(list(HEADER))
    for row in ROWS:
        sheet.append(list(row))
        for column in (2, 12):
            sheet.cell(sheet.max_row, column).number_format = "yyyy-mm-dd"
    sheet.append([])
    book.save(path)
    return path


if __name__ == "__main__":
    print(write())
