"""The dashboard at / on the admin listener, in a real headless browser (Debian's chromium and
chromedriver through Selenium): it asks for a key, then shows what the broker does. The test
makes known traffic (clients, a rule's matches, a webhook bridge's deliveries, dead letters from
a rule and from a bridge) and reads the figures off the page, then watches one change live.

DASHBOARD_SCREENSHOT=path saves a screenshot of the page as the test left it (docs/dashboard.png
is one)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import Broker, free_port, wait_until
from test_bridges import Receiver

pytestmark = [pytest.mark.turnpike_only, pytest.mark.single_node("the dashboard of one node's admin listener")]

KEY, SECRET = "ops", "dash-secret"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

RULES = {
    "fast": """CREATE RULE fast AS
SELECT clientid, payload.speed AS speed FROM "dash/+/speed" WHERE payload.speed > 100
INTO republish (topic = 'dash/alerts/${clientid}', qos = 0);
""",
    "crm": """CREATE RULE crm AS
SELECT clientid AS vin, payload AS p FROM "dash/+/crm"
INTO webhook.crm (path = '/cars/${vin}', body = '${p}');
""",
    "refused": """CREATE RULE refused AS
SELECT clientid AS vin, payload AS p FROM "dash/+/refused"
INTO webhook.refusing (path = '/cars/${vin}', body = '${p}');
""",
    "strict": """CREATE RULE strict AS
SELECT abs(payload.x) AS x FROM "dash/+/strict"
INTO republish (topic = 'dash/strict/out');
""",
}


def toml(admin_port: int, crm_port: int, refusing_port: int) -> str:
    return (f'\n[admin]\nport = {admin_port}\napi_key = "{KEY}"\napi_secret = "{SECRET}"\n'
            f'\n[bridges.webhook.crm]\nurl = "http://127.0.0.1:{crm_port}"\nretry_backoff = 50\n'
            f'\n[bridges.webhook.refusing]\nurl = "http://127.0.0.1:{refusing_port}"\nretry_backoff = 50\nmax_retries = 0\n')


@pytest.fixture
def dash_broker(tmp_path):
    crm = Receiver().start()
    refusing = Receiver(default=400).start()
    d = tmp_path / "rules"
    d.mkdir()
    for name, text in RULES.items():
        (d / f"{name}.sql").write_text(text)
    port = free_port()
    b = Broker(rules={"dir": str(d), "dead_letter": True}, extra_toml=toml(port, crm.port, refusing.port))
    b.admin_port = port
    b.crm = crm
    b.start()
    assert wait_until(lambda: _status(port) == 200, 10), b.log_tail()
    yield b
    b.stop()
    b.cleanup()
    crm.stop()
    refusing.stop()


def _status(port) -> int:
    try:
        return requests.get(f"http://127.0.0.1:{port}/api/v5/status", timeout=1).status_code
    except requests.RequestException:
        return 0


@pytest.fixture
def browser(tmp_path):
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), \
        "the dashboard test needs Debian's chromium and chromium-driver (scripts/install-deps.sh test)"
    o = Options()
    o.binary_location = CHROMIUM
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,1180",
              "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-extensions", "--password-store=basic", f"--user-data-dir={tmp_path / 'chromium'}"]:
        o.add_argument(a)
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=o)
    drv.set_page_load_timeout(10)
    yield drv
    drv.quit()


def api(b: Broker, path: str):
    r = requests.get(f"http://127.0.0.1:{b.admin_port}{path}", auth=(KEY, SECRET), timeout=5)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


# The page rebuilds its tables every 2 s, so an element found by one WebDriver call may be gone
# by the next: what the page shows is read in one script call each time.
def text(drv, css: str) -> str | None:
    """The text the first element matching `css` shows (None when there is none)."""
    return drv.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;", css)


def texts(drv, css: str) -> list[str]:
    return drv.execute_script("return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText.trim());", css)


def attrs(drv, css: str, name: str) -> list[str]:
    return drv.execute_script("return Array.from(document.querySelectorAll(arguments[0]), e => e.getAttribute(arguments[1]));",
                              css, name)


def wait_text(drv, css: str, expected: str, timeout: float = 8.0):
    """Until the element shows `expected` (the page refreshes every 2 s)."""
    try:
        WebDriverWait(drv, timeout, poll_frequency=0.1).until(lambda d: text(d, css) == expected)
    except TimeoutException:
        raise AssertionError(f"{css}: expected {expected!r}, the page shows {texts(drv, css)} "
                             f"(error line: {text(drv, '#error')!r})")


def sign_in(drv, b: Broker, secret: str = SECRET):
    drv.get(f"http://127.0.0.1:{b.admin_port}/")
    WebDriverWait(drv, 5).until(lambda d: d.find_element(By.ID, "login").is_displayed())
    drv.find_element(By.ID, "key").send_keys(KEY)
    drv.find_element(By.ID, "secret").send_keys(secret)
    drv.find_element(By.ID, "signin").click()


def test_dashboard_shows_known_traffic(dash_broker, browser, clients, uid):
    b = dash_broker
    ids = [f"car-{i}-{uid}" for i in range(3)]
    pub = clients(b, ids[0])
    for i in ids[1:]:
        clients(b, i)
    car = ids[0]
    for i in range(7):
        pub.publish(f"dash/{car}/speed", json.dumps({"speed": 150 + i}), qos=1)
    for i in range(2):
        pub.publish(f"dash/{car}/speed", json.dumps({"speed": 50}), qos=1)
    for i in range(2):
        pub.publish(f"dash/{car}/crm", json.dumps({"n": i}), qos=1)
    pub.publish(f"dash/{car}/refused", b"{}", qos=1)           # the webhook answers 400: dead letter
    for i in range(2):
        pub.publish(f"dash/{car}/strict", b"not json", qos=1)  # abs(undefined): dead letter
    assert len(b.crm.wait_delivered(2, timeout=10)) == 2
    # The API has the figures before the page is looked at.
    assert wait_until(lambda: api(b, "/api/v5/dead_letters")["total"] == 3, 10), api(b, "/api/v5/dead_letters")
    assert wait_until(lambda: api(b, "/api/v5/bridges/webhook:crm")["status"] == "connected", 10)
    assert "bridge webhook.refusing: rule refused: record refused for good: HTTP 400; sent to $dlq/bridges/webhook.refusing" \
        in b.log_text(), b.log_tail(20)

    sign_in(browser, b)
    wait_text(browser, "#live-connections", "3")
    wait_text(browser, 'tr[data-rule="fast"] td.matched', "9")
    assert text(browser, 'tr[data-rule="fast"] td.passed') == "7"
    assert text(browser, 'tr[data-rule="fast"] td.enabled') == "on"
    assert text(browser, 'tr[data-rule="strict"] td.failed') == "2"
    assert text(browser, 'tr[data-bridge="webhook:crm"] td.status') == "connected"
    # The bridges deliver on their own threads: their counters may trail the rule's by a refresh.
    wait_text(browser, 'tr[data-bridge="webhook:crm"] td.success', "2")
    wait_text(browser, 'tr[data-bridge="webhook:refusing"] td.failed', "1")
    assert text(browser, "#dead-total") == "3"
    assert text(browser, 'tr[data-topic="$dlq/rules/strict"] td.count') == "2"
    assert text(browser, 'tr[data-topic="$dlq/bridges/webhook.refusing"] td.count') == "1"
    recent = texts(browser, "#dlq-recent tbody tr")
    assert len(recent) == 3 and sum("abs: expected a number" in r for r in recent) == 2, recent
    # Top clients by messages: the publisher first, with what it sent.
    rows = attrs(browser, "#clients tbody tr", "data-client")
    assert rows[0] == car and len(rows) == 3, rows
    # Not in a cluster: no node list.
    assert not browser.find_element(By.ID, "cluster").is_displayed()
    assert text(browser, "#node").startswith("turnpike@")

    # Live: one more car, and messages; the tile and the charts follow.
    clients(b, f"car-3-{uid}")
    wait_text(browser, "#live-connections", "4")
    for i in range(20):
        pub.publish(f"dash/{car}/speed", json.dumps({"speed": 200}), qos=0)
    wait_text(browser, 'tr[data-rule="fast"] td.matched', "29")
    WebDriverWait(browser, 8).until(lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-refreshes") or 0) >= 3)
    blue = browser.execute_script("""
        const c = document.getElementById('chart-connections'), g = c.getContext('2d');
        const px = g.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i] < 90 && px[i + 1] > 80 && px[i + 1] < 150 && px[i + 2] > 150) n++;
        return n;""")
    assert blue > 10, f"the connections chart has no line ({blue} blue pixels)"
    shot = os.environ.get("DASHBOARD_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)


def test_wrong_secret_stays_on_the_login_form(dash_broker, browser):
    sign_in(browser, dash_broker, secret="not-the-secret")
    wait_text(browser, "#login-error", "wrong key, secret or token")
    assert not browser.find_element(By.ID, "dash").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('turnpike.authorization')") is None
    # The right one then works, and survives a reload of the page (sessionStorage).
    browser.find_element(By.ID, "key").clear()
    sign_in(browser, dash_broker)
    wait_text(browser, "#live-connections", "0")
    browser.refresh()
    wait_text(browser, "#live-connections", "0")
    assert not browser.find_element(By.ID, "login").is_displayed()
    browser.find_element(By.ID, "logout").click()
    assert browser.find_element(By.ID, "login").is_displayed()


def test_the_page_is_served_without_credentials_and_the_api_is_not(dash_broker):
    r = requests.get(f"http://127.0.0.1:{dash_broker.admin_port}/", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert "<canvas" in r.text and "http://" not in r.text and "https://" not in r.text
    assert requests.get(f"http://127.0.0.1:{dash_broker.admin_port}/api/v5/dead_letters", timeout=5).status_code == 401
