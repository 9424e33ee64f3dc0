"""``xinfang demo``: one village node's work, with synthetic cases only."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import click
from click.testing import CliRunner



def synthetic_id(serial: int, birth: str = "19800101") -> str:
    """An ID number with a valid check character in region 990000, which is
    assigned to no place, so it can never be a real person's."""
    from xinfang.plugins.cases.idnumber import check_character

    first17 = f"990000{birth}{serial:03d}"
    return first17 + check_character(first17)


SYNTHETIC_IDS = (synthetic_id(11), synthetic_id(12, "19751231"))


def run_demo(keep: Path | None, pm) -> None:
    """Drive the real CLI, command by command, and show what an operator sees."""
    from .main import build_cli

    cli = build_cli(pm)
    runner = CliRunner()
    with tempfile.TemporaryDirectory(prefix="xinfang-demo-") as tmp:
        home = Path(keep) if keep else Path(tmp) / "village"
        today = dt.date.today()
        earlier = (today - dt.timedelta(days=75)).isoformat()

        def run(*args: str) -> None:
            click.secho("$ xinfang " + " ".join(_quote(a) for a in args), fg="cyan")
            result = runner.invoke(cli, ["--home", str(home), "--operator", "演示员", *args],
                                   catch_exceptions=False)
            click.echo(result.output.rstrip())
            if result.exit_code != 0 and args[:2] != ("case", "close"):
                raise click.ClickException(f"demo step failed: {' '.join(args)}")
            click.echo()

        run("init", "--level", "village", "--area", "431202101201", "--name", "示例村信访站")
        run("case", "register", "-p", f"name=赵某甲,id={SYNTHETIC_IDS[0]},phone=13800000001,"
            "address=示例村一组", "--channel", "来访", "--category", "劳动社保",
            "--request", "请求协调追讨拖欠工资", "--received", earlier)
        run("case", "register", "-p", f"name=钱某乙,id={SYNTHETIC_IDS[1]},rep",
            "-p", "name=孙某丙", "-p", "name=李某丁", "-p", "name=周某戊", "-p", "name=吴某己",
            "--headcount", "6", "--channel", "来访", "--category", "库区移民",
            "--request", "反映移民安置房维修资金未落实")
        run("case", "register", "-p", f"name=赵某甲,id={SYNTHETIC_IDS[0]}",
            "--channel", "来信", "--category", "劳动社保", "--request", "再次反映工资拖欠问题")
        first = f"431202101201-{earlier[:4]}-00001"
        run("case", "accept", first, "--date", earlier, "--unit", "镇劳动保障所", "--leader", "王某")
        run("case", "list", "--overdue")
        run("case", "close", first)
        run("case", "extend", first, "--days", "30", "--reason", "需调取用工记录",
            "--date", (today - dt.timedelta(days=25)).isoformat())
        run("case", "answer", first, "--outcome", "予以支持", "--text", "已督促企业支付")
        run("case", "close", first)
        run("case", "rate", first, "--rating", "满意")
        group = f"431202101201-{today.year}-00002"
        run("case", "reject", group, "--reason", "属劳动仲裁受理范围", "--legal-channel", "仲裁")
        run("case", "list", "--repeat")
        run("case", "list")
        run("case", "show", first)
        run("log", "verify")
        run("rebuild")
        click.echo(f"节点目录 {home}" + ("（已保留）" if keep else "（演示结束后删除）"))


def _quote(text: str) -> str:
    return repr(text) if " " in text or not text else text
