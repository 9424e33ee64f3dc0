"""The web view in a real browser: headless Chromium from the system packages, driven by
Selenium through the system's chromedriver, against the node served by waitress.

Nothing is downloaded at run time (``SE_OFFLINE``): without Chromium and its driver
these tests fail, naming the packages to install (Debian and Ubuntu: ``apt-get
install chromium chromium-driver``; ``.ci/run`` installs them). Screenshots of the
dashboard and a case page are written to ``XINFANG_SCREENSHOTS`` (default
``.screenshots/`` in the checkout, not committed) for a reviewer to look at.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from test_web import PASSWORD, VILLAGE_ONE, cheap_hashes, fresh_failures, site  # noqa: F401
from xinfang.core.node import Node
from xinfang.core.reports import run_report
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


def shoot(chrome, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chrome.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_logging_in_shows_the_dashboard_with_the_monthly_report_figures(chrome, site):
    url, home, _ids = site
    log_in(chrome, url)
    month = dt.date.today().strftime("%Y-%m")
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
