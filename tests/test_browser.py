"""The web view in a real browser: headless Chromium from the system packages, driven by
Selenium through the system's chromedriver, against the node served by waitress.

Nothing is downloaded at run time (``SE_OFFLINE``): without Chromium and its driver
these tests fail, naming the packages to install (Debian and Ubuntu: ``apt-get
install chromium chromium-driver``; ``.ci/run`` installs them). Screenshots of the
dashboard and a case page are written to ``XINFANG_SCREENSHOTS`` (default
``.screenshots/`` in the checkout, not committed) for a reviewer to look at.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import openpyxl
import pytest

from test_web import PASSWORD, VILLAGE_ONE, cheap_hashes, fresh_failures, site  # noqa: F401
from xinfang.core import clock
from xinfang.core.i18n import _
from xinfang.core.node import Node
from xinfang.core.reports import run_report
from xinfang.plugins.cases import api
from xinfang.plugins.cases.idnumber import synthetic

SCREENSHOTS = Path(os.environ.get("XINFANG_SCREENSHOTS",
                                  Path(__file__).resolve().parent.parent / ".screenshots"))
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _found(names) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


@pytest.fixture(scope="module")
def chrome():
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _found(BROWSERS), _found(("chromedriver",))
    if binary is None or driver is None:
        pytest.fail("the browser tests need Chromium and chromedriver from the system "
                    "packages: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=zh-CN"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.implicitly_wait(5)
    yield browser
    browser.quit()


def Select(element):
    from selenium.webdriver.support.select import Select as Chooser

    return Chooser(element)


def submit(chrome, button) -> None:
    """Click a form's button and wait until the page it leads to has replaced this one:
    the old document carries a mark the new one lacks (asking whether the button went
    stale can itself fail while the browser swaps documents, so errors mean "not yet")."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    chrome.execute_script("window.xinfangLeaving = true")
    button.click()
    WebDriverWait(chrome, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script(
            "return !window.xinfangLeaving && document.readyState === 'complete'"))


def log_in(chrome, url: str, name: str = "web.handler01") -> None:
    chrome.delete_all_cookies()
    chrome.get(url + "/login")
    chrome.find_element("name", "name").send_keys(name)
    chrome.find_element("name", "password").send_keys(PASSWORD)
    submit(chrome, chrome.find_element("css selector", "form[action='/login'] button[type=submit]"))


def heading(chrome) -> str:
    return chrome.find_element("css selector", "main h1").text


def shoot(chrome, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chrome.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_logging_in_shows_the_dashboard_with_the_monthly_report_figures(chrome, site):
    url, home, _ids = site
    log_in(chrome, url)
    month = clock.today().strftime("%Y-%m")
    with Node.open(home) as node:
        total = run_report(node, "stats.monthly", {"period": month}).total
    for name in ("cases", "batches", "person_visits"):
        assert chrome.find_element("id", f"figure-{name}").text == str(total[name])
    shoot(chrome, "dashboard")


def test_a_case_registered_through_the_form_is_refused_with_a_bad_id_then_handled(
        chrome, site):
    url, _home, _ids = site
    log_in(chrome, url)
    chrome.get(url + "/cases/new")
    fields = {"p.name": "孙某六", "p.id_number": "123", "request": "请求支付拖欠工资"}
    for name, value in fields.items():
        chrome.find_element("name", name).send_keys(value)
    area = chrome.find_element("name", "area")
    area.clear()
    area.send_keys(VILLAGE_ONE)
    submit(chrome, chrome.find_element("css selector",
                                       "form[action='/cases/new'] button[type=submit]"))
    assert "身份证号" in chrome.find_element("id", "message").text
    number = chrome.find_element("name", "p.id_number")
    number.clear()
    number.send_keys(synthetic(61))
    submit(chrome, chrome.find_element("css selector",
                                       "form[action='/cases/new'] button[type=submit]"))
    assert chrome.find_element("id", "status").text == "已登记"
    for step, state in (("accept", "办理中"), ("answer", "已答复"), ("close", "已办结")):
        form = chrome.find_element("id", f"step-{step}")
        if step == "answer":
            Select(form.find_element("name", "f.outcome")).select_by_value("support")
        submit(chrome, form.find_element("css selector", "button[type=submit]"))
        assert chrome.find_element("id", "status").text == state
    shoot(chrome, "case")


def test_the_monthly_report_downloads_as_an_xlsx_that_opens_with_its_figures(
        chrome, site, tmp_path):
    url, home, _ids = site
    chrome.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(tmp_path)})
    log_in(chrome, url)
    month = clock.today().strftime("%Y-%m")
    chrome.get(f"{url}/reports/stats.monthly?run=1&period={month}")
    chrome.find_element("id", "download-xlsx").click()
    deadline = time.monotonic() + 20
    while not (done := list(tmp_path.glob("*.xlsx"))) and time.monotonic() < deadline:
        time.sleep(0.1)  # Chromium writes *.crdownload, then renames it
    assert done, f"no xlsx arrived in {tmp_path}: {list(tmp_path.iterdir())}"
    with Node.open(home) as node:
        result = run_report(node, "stats.monthly", {"period": month})
    sheet = openpyxl.load_workbook(done[0]).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    labels = [_(c.label) for c in result.columns]
    head = next(i for i, r in enumerate(rows) if r[:len(labels)] == labels)
    total = dict(zip((c.name for c in result.columns), rows[head + len(result.rows) + 1]))
    for name in ("cases", "batches", "person_visits"):
        assert total[name] == result.total[name], name


def test_a_clerk_sees_neither_another_areas_case_nor_another_roles_page(chrome, site):
    url, _home, ids = site
    log_in(chrome, url, "web.clerk02")         # 信息员 of village two
    chrome.get(f"{url}/cases/{ids[2]}")         # a case of village two: shown
    assert chrome.find_element("id", "status").text == "已登记"
    chrome.get(f"{url}/cases/{ids[0]}")         # village one's
    assert heading(chrome) == "无权访问"
    assert ids[0] not in chrome.page_source.replace(f"/cases/{ids[0]}", "")
    for path in ("/access-log", "/users", "/sync"):
        chrome.get(url + path)
        assert heading(chrome) == "无权访问", path
    menu = [a.get_attribute("href") for a in chrome.find_elements("css selector", "nav a")]
    assert not any(href.endswith(("/access-log", "/users", "/sync")) for href in menu)


def test_a_form_sent_without_its_security_token_is_refused_and_changes_nothing(
        chrome, site):
    url, home, ids = site
    log_in(chrome, url)
    chrome.get(f"{url}/cases/{ids[1]}")
    form = chrome.find_element("id", "step-accept")
    chrome.execute_script("arguments[0].querySelector('input[name=csrf]').remove()", form)
    submit(chrome, form.find_element("css selector", "button[type=submit]"))
    assert heading(chrome) == "无权访问"
    assert "安全令牌" in chrome.find_element("id", "message").text
    with Node.open(home) as node:
        assert api.get_case(node, ids[1], reveal=False).status == "registered"


def test_a_petitioner_shown_in_the_browser_is_in_the_access_log_under_the_user(
        chrome, site):
    url, _home, ids = site
    log_in(chrome, url)
    chrome.get(f"{url}/cases/{ids[1]}")
    submit(chrome, chrome.find_element("id", "reveal"))
    assert "钱某2" in chrome.find_element("id", "petitioners").text
    log_in(chrome, url, "web.admin04")
    chrome.get(f"{url}/access-log?case={ids[1]}")
    rows = chrome.find_elements("css selector", "#access-log tr")[1:]
    assert any(row.find_element("class name", "who").text == "web.handler01"
               and ids[1] in row.text for row in rows), [r.text for r in rows]
    shoot(chrome, "access-log")
