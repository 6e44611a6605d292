"""The demo page in a real browser: headless Chromium driven by Playwright.

The page builds one panel per protocol that this project serves, from the
`data-protocols` attribute the template rendered, so these tests read the
protocols from the page and check every one of them.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from .conftest import Server, StartServer

pytestmark = pytest.mark.browser

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KNOWN_PROTOCOLS = ("sse", "websocket", "ndjson")
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM_PATH).is_file():
        pytest.fail(
            f"Chromium is not at {CHROMIUM_PATH}: the browser tests need it. "
            "Install it (Debian: apt-get install chromium) or set CHROMIUM_PATH.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; a JavaScript error on it fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the demo page: {errors}"


def new_channel() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def panel(page: Page, protocol: str) -> Locator:
    return page.locator(f"#panel-{protocol}")


def event(page: Page, protocol: str, event_id: str) -> Locator:
    return panel(page, protocol).locator(f'.events li[data-id="{event_id}"]')


def expect_state(page: Page, protocols: list[str], state: str) -> None:
    for protocol in protocols:
        expect(panel(page, protocol).locator(".state")).to_have_text(state, timeout=TIMEOUT_MS)


def open_demo(page: Page, url: str) -> list[str]:
    """Load the page and wait until every protocol's panel is open; return the protocols."""
    page.goto(url)
    protocols = (page.locator("#app").get_attribute("data-protocols") or "").split()
    assert protocols, "the page lists no protocols in data-protocols"
    assert set(protocols) <= set(KNOWN_PROTOCOLS), protocols
    for protocol in KNOWN_PROTOCOLS:
        expect(panel(page, protocol)).to_have_count(1 if protocol in protocols else 0)
    expect_state(page, protocols, "open")
    return protocols


def publish(server: Server, channel: str, data: Any) -> str:
    """Publish as another client would; return the event id."""
    response = httpx.post(f"{server.url}/channels/{channel}/events", json=data)
    assert response.status_code == 202, response.text
    event_id: str = response.json()["id"]
    return event_id


def message(text: str) -> dict[str, str]:
    return {"text": text, "at": datetime.now(UTC).isoformat()}


def test_every_panel_opens_and_shows_an_event_from_another_client(
    page: Page, server: Server
) -> None:
    protocols = open_demo(page, server.url)
    expect(page).to_have_title(re.compile(r": live demo$"))
    expect(page.locator("#channel")).to_have_value("demo")

    event_id = publish(server, "demo", message("hello from another client"))

    for protocol in protocols:
        expect(event(page, protocol, event_id)).to_contain_text("hello from another client")


def test_a_message_published_from_the_form_shows_in_every_panel(page: Page, server: Server) -> None:
    channel = new_channel()
    protocols = open_demo(page, f"{server.url}/?channel={channel}")

    page.locator("#message").fill("sent from the page")
    page.locator("#message").press("Enter")

    expect(page.locator("#publish-status")).to_contain_text("#")
    expect(page.locator("#message")).to_have_value("")
    history = httpx.get(f"{server.url}/channels/{channel}/events").json()["events"]
    assert len(history) == 1
    assert history[0]["data"]["text"] == "sent from the page"
    assert datetime.fromisoformat(history[0]["data"]["at"]).tzinfo is not None
    for protocol in protocols:
        expect(event(page, protocol, history[0]["id"])).to_contain_text("sent from the page")
    expect(page.locator("#publish-error")).to_be_empty()


def test_event_data_is_shown_as_text_never_as_html(page: Page, server: Server) -> None:
    channel = new_channel()
    protocols = open_demo(page, f"{server.url}/?channel={channel}")
    markup = '<img src="x" onerror="window.injected = true"><b>bold</b>'

    text_id = publish(server, channel, message(markup))
    other_id = publish(server, channel, {"not": "a chat message", "html": "<i>x</i>"})

    for protocol in protocols:
        expect(event(page, protocol, text_id).locator(".event-text")).to_have_text(markup)
        expect(event(page, protocol, other_id)).to_contain_text('"html":"<i>x</i>"')
    expect(page.locator("#panels img, #panels b, #panels i")).to_have_count(0)
    assert page.evaluate("window.injected") is None


def test_changing_the_channel_moves_every_panel(page: Page, server: Server) -> None:
    first, second = new_channel(), new_channel()
    protocols = open_demo(page, f"{server.url}/?channel={first}")
    before = publish(server, first, message("on the first channel"))
    for protocol in protocols:
        expect(event(page, protocol, before)).to_be_visible()

    page.locator("#channel").fill(second)
    page.locator("#channel").press("Enter")
    expect_state(page, protocols, "open")
    left_behind = publish(server, first, message("not for the second channel"))
    after = publish(server, second, message("on the second channel"))

    expect(page).to_have_url(re.compile(rf"[?&]channel={second}\b"))
    for protocol in protocols:
        items = panel(page, protocol).locator(".events li")
        expect(items).to_have_text([re.compile("on the second channel")])
        expect(event(page, protocol, after)).to_be_visible()
        expect(event(page, protocol, left_behind)).to_have_count(0)


def test_reconnecting_resumes_after_the_last_event_seen(page: Page, server: Server) -> None:
    channel = new_channel()
    protocols = open_demo(page, f"{server.url}/?channel={channel}")
    first = publish(server, channel, message("before"))
    for protocol in protocols:
        expect(event(page, protocol, first)).to_be_visible()

    toggle = page.locator("#connection-toggle")
    toggle.click()
    expect_state(page, protocols, "closed")
    missed = [publish(server, channel, message(f"missed {n}")) for n in range(3)]
    toggle.click()
    expect_state(page, protocols, "open")
    last = publish(server, channel, message("after"))

    texts = ["before", "missed 0", "missed 1", "missed 2", "after"]
    for protocol in protocols:
        items = panel(page, protocol).locator(".events li")
        # Exactly these, in order: nothing lost while disconnected, nothing twice.
        expect(items.locator(".event-text")).to_have_text(texts)
        ids = [item.get_attribute("data-id") for item in items.all()]
        assert ids == [first, *missed, last], protocol


def test_a_resume_point_gone_from_history_resets_the_panel(
    page: Page, start_server: StartServer
) -> None:
    server = start_server(history_size="2")
    channel = new_channel()
    protocols = open_demo(page, f"{server.url}/?channel={channel}")
    seen = publish(server, channel, message("seen"))
    for protocol in protocols:
        expect(event(page, protocol, seen)).to_be_visible()

    toggle = page.locator("#connection-toggle")
    toggle.click()
    expect_state(page, protocols, "closed")
    publish(server, channel, message("lost"))
    kept = [publish(server, channel, message(f"kept {n}")) for n in range(2)]
    toggle.click()
    expect_state(page, protocols, "open")

    for protocol in protocols:
        items = panel(page, protocol).locator(".events li")
        # The server said it could not resume: the panel starts over from its history.
        expect(items.locator(".event-text")).to_have_text(["kept 0", "kept 1"])
        assert [item.get_attribute("data-id") for item in items.all()] == kept, protocol
        expect(panel(page, protocol).locator(".notice")).to_be_visible()


def test_a_publish_error_shows_the_servers_message(page: Page, start_server: StartServer) -> None:
    server = start_server(max_message_bytes="200")
    open_demo(page, server.url)
    too_long = "x" * 300
    refused = httpx.post(f"{server.url}/channels/demo/events", json=message(too_long))
    assert refused.status_code == 413

    page.locator("#message").fill(too_long)
    page.locator("#publish-button").click()

    expect(page.locator("#publish-error")).to_have_text(
        f"Not published: {refused.json()['message']}"
    )
    expect(page.locator("#message")).to_have_value(too_long)


def test_every_panel_shows_reconnecting_when_the_server_stops(
    page: Page, start_server: StartServer
) -> None:
    server = start_server(drain_seconds="1")
    protocols = open_demo(page, server.url)

    server.stop()

    expect_state(page, protocols, "reconnecting")
    # The page keeps trying, and says so, while the server is away.
    page.wait_for_timeout(3_000)
    expect_state(page, protocols, "reconnecting")


def test_with_a_secret_the_page_takes_a_token_and_resumes_when_it_expires(
    page: Page, start_server: StartServer
) -> None:
    signing_key = "demo-secret-that-is-long-enough-for-hs256"
    server = start_server(secret_key=signing_key, heartbeat_seconds="1")
    channel = new_channel()

    def token(seconds: int) -> str:
        now = int(time.time())
        grants = {"subscribe": ["test-*"], "publish": ["test-*"]}
        claims = {"sub": "visitor", "iat": now, "exp": now + seconds, "realtime": grants}
        return jwt.encode(claims, signing_key, algorithm="HS256")

    page.goto(f"{server.url}/?channel={channel}")
    protocols = (page.locator("#app").get_attribute("data-protocols") or "").split()
    form = page.locator("#token-form")
    expect(form).to_be_visible()
    page.locator("#token").fill(token(4))
    page.locator("#token").press("Enter")
    expect(page.locator("#token-status")).to_contain_text("visitor")
    expect_state(page, protocols, "open")

    page.locator("#message").fill("with a token")
    page.locator("#message").press("Enter")
    expect(page.locator("#publish-status")).to_contain_text("#")
    # The token expires: every panel stops and says so, and nothing published meanwhile is lost.
    expect_state(page, protocols, "closed")
    missed = httpx.post(
        f"{server.url}/channels/{channel}/events",
        json=message("while the token was stale"),
        headers={"Authorization": f"Bearer {token(60)}"},
    )
    assert missed.status_code == 202, missed.text
    page.locator("#token").fill(token(60))
    page.locator("#token").press("Enter")
    expect_state(page, protocols, "open")
    for protocol in protocols:
        texts = panel(page, protocol).locator(".events li .event-text")
        expect(texts).to_have_text(["with a token", "while the token was stale"])
