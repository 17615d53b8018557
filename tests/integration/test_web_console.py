"""The web console in a real browser: headless Debian Chromium (Playwright's sync API) on
``m2bridge web`` with a console token, watching a real stack (Mongrel2, the relay and two
hello-world workers under ``m2bridge up``).

The page lists every process ``ctl stats`` reports, its incr button runs one more worker, its
requests/s chart follows a burst of requests, and a browser without the token is refused.
``M2BRIDGE_SCREENSHOT=1`` also saves the page under load to docs/console.png.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.component.web import Console, running_console
from tests.helpers.stack import RunningStack, mongrel2_stack, running_stack, wait_serving
from tests.helpers.worker import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TOKEN = "browser-test-console-token-0123456789abcdef"
SCREENSHOT = REPO_ROOT / "docs" / "console.png"
#: Milliseconds the page gets to show a change (the console polls every 0.5 s).
SHOWN_MS = 5000


class Site:
    """The stack, its HTTP port and the console watching it."""

    def __init__(self, stack: RunningStack, port: int, console: Console) -> None:
        self.stack = stack
        self.port = port
        self.console = console

    def ctl_json(self, *argv: str) -> dict[str, Any]:
        done = self.stack.ctl("--json", *argv)
        assert done.returncode in (0, 4), done.stderr  # 4: a watcher still starting
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def pids(self, watcher: str | None = None) -> list[int]:
        """Every process ``ctl stats`` reports (of ``watcher``, or of all)."""
        watchers = self.ctl_json("stats")["watchers"]
        return [p["pid"] for w in watchers if watcher in (None, w["name"]) for p in w["processes"]]


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """Mongrel2 + relay + 2 hello workers, and ``m2bridge web`` on them with a token."""
    base = Path(tempfile.mkdtemp(prefix="m2b-", dir="/tmp"))  # ipc:// paths stay short
    try:
        text, port = mongrel2_stack(base)
        with running_stack(base, text) as stack:
            try:
                wait_serving(stack, port, workers=2)
                args = ("-s", str(stack.stack_file))
                with running_console(base, *args, token=TOKEN, interval=0.5) as console:
                    yield Site(stack, port, console)
            finally:
                quit_stack(stack)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def quit_stack(stack: RunningStack) -> None:
    """``ctl quit`` (running_stack then kills whatever is left, by PID)."""
    stack.ctl("quit")
    with contextlib.suppress(Exception):
        stack.proc.wait(15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/setup` (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.fail(f"cannot start {CHROMIUM}: {exc}")
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    """A fresh browser context logged in through ``/?token=`` (then redirected to ``/``)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    # a command the supervisor refuses is answered 409, which Chromium logs as an error
    response = page.goto(f"{site.console.url}/?token={TOKEN}")
    assert response is not None
    assert response.status == 200
    assert page.url == f"{site.console.url}/"  # the token left the address bar
    expect(page.locator("#link")).to_have_attribute("data-link", "live", timeout=SHOWN_MS)
    yield page
    context.close()
    unexpected = [e for e in errors if "status of 409" not in e]
    assert unexpected == []  # no script error, no refused resource (CSP, 404)


def watcher_card(page: Page, name: str) -> Locator:
    return page.locator(f'section[data-watcher="{name}"]')


def test_page_shows_every_process_of_the_stack(page: Page, site: Site) -> None:
    pids = site.pids()
    assert len(pids) == 4  # mongrel2, relay, 2 workers
    for pid in pids:
        expect(page.locator(f'tr[data-pid="{pid}"]')).to_have_count(1, timeout=SHOWN_MS)
    for name in ("mongrel2", "relay", "hello"):
        expect(watcher_card(page, name)).to_have_count(1)
    expect(watcher_card(page, "hello").locator('[data-field="state"]')).to_have_text("active")
    expect(page.locator("#health")).to_have_attribute("data-health", "healthy")


def test_mongrel2_card_shows_its_control_port_and_connections(page: Page) -> None:
    card = page.locator('section[data-watcher="mongrel2"][data-mongrel2="mongrel2"]')
    expect(card.locator('[data-field="answering"]')).to_have_text("control port answers")
    expect(card.locator('[data-kpi="tasks"]')).to_have_text(re.compile(r"^\d+$"))
    connections = card.locator('.chart[data-chart="connections"]')
    expect(connections).to_be_visible()
    expect(connections).to_have_attribute("data-empty", "false")
    # the hello workers are not Mongrel2: no such chart shown there
    expect(watcher_card(page, "hello").locator('.chart[data-chart="connections"]')).to_be_hidden()


def test_incr_button_runs_one_more_worker(page: Page, site: Site) -> None:
    before = set(site.pids("hello"))
    assert len(before) == 2
    watcher_card(page, "hello").locator('button[data-command="incr"]').click()
    deadline = time.monotonic() + 2
    while site.ctl_json("status", "hello")["watchers"][0]["numprocesses"] != 3:
        assert time.monotonic() < deadline, "incr from the page did not reach the supervisor"
        time.sleep(0.05)
    result = watcher_card(page, "hello").locator('[data-field="result"]')
    expect(result).to_have_text("incr hello: now 3 process(es)", timeout=SHOWN_MS)
    site.stack.wait_until(lambda: len(site.pids("hello")) == 3)
    (new,) = set(site.pids("hello")) - before
    rows = watcher_card(page, "hello").locator(".procs tbody tr")
    expect(rows).to_have_count(3, timeout=SHOWN_MS)
    expect(page.locator(f'tr[data-pid="{new}"]')).to_have_count(1)
    # back to two, for the tests that follow
    site.stack.call("decr", name="hello")
    site.stack.wait_until(lambda: len(site.pids("hello")) == 2)


def test_a_refused_command_shows_the_supervisor_error(page: Page) -> None:
    watcher_card(page, "mongrel2").locator('button[data-command="incr"]').click()
    result = watcher_card(page, "mongrel2").locator('[data-field="result"]')
    expect(result).to_have_text("incr mongrel2: mongrel2 is a mongrel2 watcher: one process")
    expect(result).to_have_class("result err")


class Burst(threading.Thread):
    """``count`` GET / over one keep-alive connection, spread over about ``seconds``."""

    def __init__(self, port: int, count: int = 300, seconds: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.port, self.count, self.pause = port, count, seconds / count
        self.ok = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            for _ in range(self.count):
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
                self.ok += response.status == 200
                time.sleep(self.pause)
        finally:
            conn.close()


def chart(page: Page, watcher: str, name: str) -> dict[str, str]:
    attributes: dict[str, str] = page.locator(
        f'section[data-watcher="{watcher}"] .chart[data-chart="{name}"]'
    ).evaluate("el => ({...el.dataset})")
    return attributes


def test_requests_chart_follows_a_burst_of_requests(page: Page, site: Site) -> None:
    expect(page.locator('[data-watcher="hello"] .chart[data-chart="rps"] canvas')).to_have_count(1)
    points_before = int(chart(page, "hello", "rps")["points"])
    burst = Burst(site.port)
    burst.start()
    seen = 0.0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and seen <= 0:
        last = chart(page, "hello", "rps")["last"]
        seen = float(last) if last else 0.0
        time.sleep(0.1)
    burst.join(10)
    assert burst.ok == burst.count
    assert seen > 0, f"requests/s never above 0 on the page: {chart(page, 'hello', 'rps')}"
    after = chart(page, "hello", "rps")
    assert int(after["points"]) > points_before
    assert float(after["max"]) > 0
    assert chart(page, "hello", "latency")["empty"] == "false"  # app-time percentiles drawn


def test_a_browser_without_the_token_is_refused(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(f"{site.console.url}/")
        assert response is not None
        assert response.status == 401
        assert "console token required" in page.content()
        assert context.request.get(f"{site.console.url}/api/state").status == 401
        assert context.request.get(f"{site.console.url}/?token=wrong").status == 401
        assert context.cookies() == []
    finally:
        context.close()


def test_screenshot_of_the_console_under_load(page: Page, site: Site, tmp_path: Path) -> None:
    """With M2BRIDGE_SCREENSHOT=1 the picture goes to docs/console.png (the docs show it)."""
    target = SCREENSHOT if os.environ.get("M2BRIDGE_SCREENSHOT") == "1" else tmp_path / "c.png"
    burst = Burst(site.port, count=1000, seconds=4.0)
    burst.start()
    time.sleep(4)
    burst.join(10)
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert target.stat().st_size > 10_000
