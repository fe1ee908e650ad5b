"""The review page and the Power-Up in a real browser: Debian's headless Chromium driven by
Selenium through chromedriver.

Outside CI these tests skip when Chromium or chromedriver is missing; in CI (``CI=true``,
``.ci/run`` installs both) they fail instead. Screenshots go to ``$TASKSYNC_ARTIFACTS`` when set
(``TASKSYNC_ARTIFACTS=docs`` refreshes the README's), else to pytest's tmp path.

Trello's client library cannot be loaded here: the Power-Up pages get
``tests/powerup_stub/power-up-stub.js`` instead (``[web] powerup_script``), which records the
capabilities the connector registers so the tests can call them as Trello would.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tasksync.examples import generate
from test_web import KEY, MEMBER_TOKEN, Site, start_site, trello_demo, wait_job

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = "Chromium and chromedriver are needed (apt-get install -y chromium chromium-driver)"
IN_CI = os.environ.get("CI") == "true"
pytestmark = [
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER) and not IN_CI, reason=MISSING),
]
STUB = Path(__file__).parent / "powerup_stub"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail(MISSING + "; CI must install them (.ci/run)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, "--window-size=1400,1000"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    d.set_script_timeout(60)
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TASKSYNC_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait(driver: Any, check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    """``check`` true within ``timeout`` s (a hang guard); else fail with what the page says (its
    status line and the browser's console errors)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: check())
    except TimeoutException:
        status = driver.find_elements("id", "status")
        said = status[0].get_attribute("textContent") if status else "(no status line)"
        pytest.fail(f"gave up waiting for {what}; the page says {said!r}; console: {console_errors(driver)}")


def console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def text(driver: Any, element_id: str) -> str:
    return str(driver.find_element("id", element_id).get_attribute("textContent")).strip()


def fetch(
    driver: Any, method: str, path: str, headers: dict[str, str] | None = None, creds: str = "same-origin"
) -> int:
    """Status of a fetch made by the page itself (its cookies, its origin)."""
    script = """
        const [method, path, headers, creds, done] = arguments;
        const init = {method, headers, credentials: creds};
        if (method !== "GET") init.body = "{}";
        fetch(path, init).then(r => done(r.status), e => done(String(e)));
    """
    status: int = driver.execute_async_script(script, method, path, headers or {}, creds)
    return status


def login(driver: Any, site: Site) -> None:
    driver.delete_all_cookies()
    driver.get(f"{site.url}/review")
    wait(driver, lambda: driver.current_url.endswith("/login"), "the review page sends a stranger to /login")
    # The URL changes when the navigation starts; the form is there only once the page has loaded.
    wait(driver, lambda: driver.find_elements("id", "token"), "the login form")
    driver.find_element("id", "token").send_keys(site.token)
    driver.find_element("css selector", "#login button").click()
    wait(driver, lambda: driver.current_url.endswith("/review"), "logged in")
    driver.get_log("browser")  # the 401 that sent us to /login is expected; start counting now
    driver.refresh()
    wait(driver, lambda: text(driver, "summary").startswith("Plan "), "the plan is shown")


def reject_buttons(driver: Any) -> list[Any]:
    return list(driver.find_elements("css selector", "button.reject"))


def review_flow(driver: Any, site: Site, shots: Path, name: str) -> None:
    before = site.owners()
    login(driver, site)
    assert console_errors(driver) == []
    rows = driver.find_elements("css selector", "#changes tbody tr")
    shown = text(driver, "shown")
    assert rows and shown == f"{len(rows)} of {len(rows)} shown"
    assert driver.find_elements("css selector", "#shift tbody tr")
    wait(driver, lambda: driver.find_elements("css selector", "#reps tbody tr"), "the reps table")
    wait(driver, lambda: driver.find_elements("css selector", "#history tbody tr"), "the history")
    driver.save_screenshot(str(shots / f"{name}.png"))

    # filters narrow the list
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "f-field")).select_by_value("priority")
    fields = [
        r.find_elements("tag name", "td")[1].get_attribute("textContent")
        for r in driver.find_elements("css selector", "#changes tbody tr")
    ]
    assert fields and set(fields) == {"priority"} and len(fields) < len(rows)
    Select(driver.find_element("id", "f-field")).select_by_value("")

    # CSRF and login refusals, from the page itself
    assert fetch(driver, "POST", "/api/plan", {"Content-Type": "application/json"}) == 403
    assert fetch(driver, "POST", "/api/plan", {"Content-Type": "application/json", "X-CSRF-Token": "x"}) == 403
    assert fetch(driver, "GET", "/api/plan", creds="omit") == 401
    driver.get_log("browser")  # those refusals log network errors on purpose

    # reject one owner change: a new plan without it
    plan_before = text(driver, "summary").split()[1]
    button = next(b for b in reject_buttons(driver) if b.get_attribute("data-field") == "assignees")
    rejected = button.get_attribute("data-task")
    button.click()
    wait(driver, lambda: text(driver, "summary").split()[1] != plan_before, "a new plan after the rejection")
    wait(driver, lambda: not driver.find_element("id", "apply").get_attribute("disabled"), "ready again")
    left = [(b.get_attribute("data-task"), b.get_attribute("data-field")) for b in reject_buttons(driver)]
    assert (rejected, "assignees") not in left
    moves = {t for t, f in left if f == "assignees"}
    plan_id = text(driver, "summary").split()[1]

    # approve and apply: progress, then the board changed
    driver.find_element("id", "apply").click()
    wait(driver, lambda: "done" in driver.find_element("id", "status").get_attribute("class"), "apply finished")
    assert text(driver, "status").startswith(f"Applied {plan_id}:")
    bar = driver.find_element("id", "progress")
    assert bar.is_displayed() and bar.get_attribute("value") == bar.get_attribute("max") != "0"
    after = site.owners()
    assert moves and all(after[t] != before[t] for t in moves)
    assert after[rejected] == before[rejected]  # the pin held
    assert console_errors(driver) == []

    # history and undo
    row = next(
        r
        for r in driver.find_elements("css selector", "#history tbody tr")
        if r.get_attribute("textContent").startswith(plan_id)
    )
    assert "applied" in row.get_attribute("textContent")
    row.find_element("css selector", "button.undo").click()
    wait(driver, lambda: text(driver, "status").startswith("Undid "), "undo finished")
    assert "done" in driver.find_element("id", "status").get_attribute("class")
    restored = site.owners()
    assert all(restored[t] == before[t] for t in moves)
    assert console_errors(driver) == []


def test_review_page_on_the_local_board(driver: Any, tmp_path: Path, shots: Path) -> None:
    generate(tmp_path / "demo", cards=120)
    site = start_site(tmp_path / "demo")
    try:
        review_flow(driver, site, shots, "review-page")
    finally:
        site.server.stop()


def test_review_page_on_the_fake_trello(
    driver: Any, tmp_path: Path, shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trello_demo(tmp_path, monkeypatch) as site:
        review_flow(driver, site, shots, "review-page-trello")


ROWS = "return [...document.querySelectorAll(arguments[0])].map(tr => [...tr.cells].map(td => td.textContent))"


def rows(driver: Any, selector: str) -> list[list[str]]:
    found: list[list[str]] = driver.execute_script(ROWS, selector)
    return found


def rep_control(driver: Any, rep_id: str, selector: str) -> Any:
    return driver.find_element("css selector", f'#reps tr[data-rep="{rep_id}"] {selector}')


def replanned(driver: Any, before: str) -> None:
    wait(driver, lambda: "follows it" in text(driver, "status") and text(driver, "summary").split()[1] != before,
         "the plan made again after the override")  # fmt: skip


def test_reps_table_away_and_back_replan_on_the_local_board(driver: Any, tmp_path: Path, shots: Path) -> None:
    generate(tmp_path / "demo", cards=80)
    site = start_site(tmp_path / "demo")
    try:
        login(driver, site)
        wait(driver, lambda: driver.find_elements("css selector", "#reps tbody tr"), "the reps table")
        first = {(c[0], c[1], c[3]) for c in rows(driver, "#changes tbody tr")}
        plan = text(driver, "summary").split()[1]

        # away until a date: the new plan hands Ana's cards on, saying why and who set it
        driver.execute_script("arguments[0].value = '2026-12-14'", rep_control(driver, "R001", "input.until"))
        rep_control(driver, "R001", "button.rep-away").click()
        replanned(driver, plan)
        reason = "Ana Alvarez is away until 2026-12-14, set by admin"
        moved = [c for c in rows(driver, "#changes tbody tr") if reason in c[4]]
        assert moved and all("Ana Alvarez" in c[2] and "Ana Alvarez" not in c[3] for c in moved)
        ana = next(r for r in rows(driver, "#reps tbody tr") if r[0] == "Ana Alvarez")
        assert ana[2] == "away until 2026-12-14, set by admin"
        assert text(driver, "status").startswith("Ana Alvarez: away until 2026-12-14, set by admin")
        driver.execute_script("document.getElementById('reps').scrollIntoView()")
        driver.save_screenshot(str(shots / "review-page-reps.png"))
        assert console_errors(driver) == []

        # a bad value: the error beside the control, nothing changed, the controls usable again
        plan = text(driver, "summary").split()[1]
        from selenium.webdriver.common.keys import Keys

        rep_control(driver, "R002", "input.tasks").send_keys("-3", Keys.ENTER)  # Enter presses its Set
        wait(driver, lambda: rep_control(driver, "R002", ".rep-error").text, "the error beside the control")
        assert rep_control(driver, "R002", ".rep-error").text == "a capacity cannot be negative"
        assert rep_control(driver, "R002", "button.rep-capacity").is_enabled()
        assert text(driver, "summary").split()[1] == plan
        driver.get_log("browser")  # the refused request (400) is logged by the browser on purpose

        # back: the next plan is the one before the override
        rep_control(driver, "R001", "button.rep-back").click()
        replanned(driver, plan)
        assert {(c[0], c[1], c[3]) for c in rows(driver, "#changes tbody tr")} == first
        assert not [c for c in rows(driver, "#changes tbody tr") if "is away until" in c[4]]
        assert console_errors(driver) == []
    finally:
        site.server.stop()


EVIL = '<img src=x onerror="window.xss=1"></td><script>window.xss=2</script>'


def test_hostile_card_titles_stay_text(driver: Any, tmp_path: Path) -> None:
    generate(tmp_path / "demo", cards=40)
    board_file = tmp_path / "demo" / "board.json"
    board = json.loads(board_file.read_text(encoding="utf-8"))
    for i, card in enumerate(board["cards"]):
        card["name"] = f"{EVIL} {i}"
    board_file.write_text(json.dumps(board), encoding="utf-8")
    site = start_site(tmp_path / "demo")
    try:
        login(driver, site)
        titles = [
            td.get_attribute("textContent")
            for td in driver.find_elements("css selector", "#changes tbody td:first-child")
        ]
        assert len([t for t in titles if t.startswith(EVIL)]) > 5  # shown as typed (cards to create have CRM names)
        assert driver.execute_script("return window.xss") is None
        assert not driver.find_elements("css selector", "#changes img, #changes script")
        assert console_errors(driver) == []
    finally:
        site.server.stop()


# --------------------------------------------------------------------------- the Power-Up
@pytest.fixture
def stub_url() -> Iterator[str]:
    handler = functools.partial(QuietFiles, directory=str(STUB))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/power-up-stub.js"
    finally:
        server.shutdown()
        server.server_close()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


CALL_CAPABILITIES = """
const done = arguments[arguments.length - 1];
const stub = window.powerupStub, caps = stub.capabilities, t = stub.t;
(async () => {
  const out = {names: Object.keys(caps).sort(), options: stub.options};
  const buttons = await caps["board-buttons"](t, {});
  out.buttons = buttons.map(b => ({text: b.text, icon: b.icon, condition: b.condition, callback: typeof b.callback}));
  await buttons[0].callback(t);
  out.badges = await caps["card-badges"](t, {attachments: []});
  out.back = await caps["card-back-section"](t, {});
  await caps["show-settings"](t, {});
  out.auth = await caps["authorization-status"](t, {});
  await caps["show-authorization"](t, {});
  out.calls = stub.calls;
  done(out);
})().catch(e => done({error: String(e)}));
"""


def stub_config(driver: Any, site: Site, token: str | None, card: str | None) -> None:
    driver.get(f"{site.url}/powerup/config.json")
    driver.execute_script(
        "localStorage.setItem('powerupStub', arguments[0])", json.dumps({"token": token, "card": card})
    )


def test_powerup_capabilities_and_pages(
    driver: Any, tmp_path: Path, shots: Path, monkeypatch: pytest.MonkeyPatch, stub_url: str
) -> None:
    with trello_demo(tmp_path, monkeypatch, f'powerup_script = "{stub_url}"\n') as site:
        s = site.login()
        data = s.post(f"{site.url}/api/plan", json={}).json()["data"]
        by_card: dict[str, dict[str, Any]] = {}
        for c in data["changes"]:
            by_card.setdefault(c["task_id"], {})[c["field"]] = c
        card, fields = next((k, v) for k, v in by_card.items() if {"assignees", "priority"} <= set(v))
        # the review page in Trello's modal
        driver.set_window_size(1100, 760)
        stub_config(driver, site, MEMBER_TOKEN, card)
        driver.get_log("browser")
        driver.get(f"{site.url}/powerup/review.html")
        wait(driver, lambda: text(driver, "summary").startswith("Plan "), "the modal shows the plan")
        assert text(driver, "who").startswith("trello:") and text(driver, "summary").split()[1] == data["plan"]["id"]
        wait(driver, lambda: driver.find_elements("css selector", "#reps tbody tr"), "the reps table")
        assert not driver.find_element("id", "logout").is_displayed()
        driver.save_screenshot(str(shots / "powerup-modal.png"))
        assert console_errors(driver) == []
        driver.set_window_size(1400, 1000)

        job, _ = wait_job(
            s, site.url, s.post(f"{site.url}/api/apply", json={"plan_id": data["plan"]["id"]}).json()["job"]
        )
        assert job["state"] == "done"

        # the connector, as Trello would call it
        stub_config(driver, site, MEMBER_TOKEN, card)
        driver.get_log("browser")
        driver.get(f"{site.url}/powerup/")
        wait(
            driver,
            lambda: driver.execute_script("return !!(window.powerupStub && window.powerupStub.capabilities)"),
            "initialised",
        )
        out = driver.execute_async_script(CALL_CAPABILITIES)
        assert "error" not in out, out
        assert out["names"] == sorted(
            [
                "board-buttons",
                "card-badges",
                "card-back-section",
                "show-settings",
                "authorization-status",
                "show-authorization",
            ]
        )
        assert out["options"] == {"appKey": KEY, "appName": "tasksync"}
        assert out["buttons"][0]["text"] == "Divide & prioritise" and out["buttons"][0]["callback"] == "function"
        assert out["buttons"][0]["icon"]["light"].endswith("/static/icon.svg")
        modal = out["calls"][0]
        assert modal[0] == "modal" and modal[1]["url"] == "./review.html" and modal[1]["fullscreen"] is True
        tier = fields["priority"]["after"]
        assert {"text": tier, "color": out["badges"][0]["color"]} == out["badges"][0]
        assert out["badges"][0]["color"] in ("red", "orange", "yellow", "green", "light-gray")
        reason = fields["assignees"]["reason"]
        assert out["badges"][1]["text"] == (reason if len(reason) <= 40 else reason[:39] + "…")
        assert out["back"]["content"] == {"type": "iframe", "url": "./card-back.html", "height": 180}
        assert out["auth"] == {"authorized": True}
        assert [c[0] for c in out["calls"][1:]] == ["popup", "popup"]
        assert out["calls"][1][1]["url"] == "./settings.html" and out["calls"][2][1]["url"] == "./authorize.html"
        assert console_errors(driver) == []

        # the back of the card: its reason history
        driver.get(f"{site.url}/powerup/card-back.html")
        wait(driver, lambda: driver.find_elements("css selector", "#history li"), "the card's history")
        history = text(driver, "history")
        assert reason in history and data["plan"]["id"] in history
        assert tier in text(driver, "now")

        # settings popup
        driver.get(f"{site.url}/powerup/settings.html")
        wait(driver, lambda: "configured" in text(driver, "status"), "settings")
        newest = s.get(f"{site.url}/api/history").json()["plans"][0]
        assert text(driver, "latest").startswith(f"Latest plan {newest['id']}: {newest['status']}")

        # a member who has not authorized the Power-Up: no badges, and Trello is told so
        stub_config(driver, site, None, card)
        driver.get(f"{site.url}/powerup/")
        wait(
            driver,
            lambda: driver.execute_script("return !!(window.powerupStub && window.powerupStub.capabilities)"),
            "initialised",
        )
        out = driver.execute_async_script(CALL_CAPABILITIES)
        assert out["badges"] == [] and out["auth"] == {"authorized": False}
        assert (
            requests.get(f"{site.url}/powerup/").headers["content-security-policy"].count(stub_url.rsplit("/", 1)[0])
            == 1
        )
