"""The console in a real browser (Debian's Chromium driven by Playwright): an operator signs in,
takes the hand-over a simulated customer opened, replies, resolves it and reads the analytics.

Screenshots (PNG) of every page are saved in the test's tmp_path, one at a phone's 390 px.
"""

from __future__ import annotations

from pathlib import Path

from engine.log import ConversationLog
from tests.web.console_helpers import (
    PASSWORD,
    browser_sign_in,
    console_page,
    open_handover,
    saved_shots,
)
from tests.web.server import WebServer
from tests.web.test_console import HOSTILE


async def test_an_operator_takes_answers_and_resolves_a_handover_in_the_browser(
    site: WebServer, chromium: Path, shots: Path
) -> None:
    # The simulated customer: asks, then asks for a person, over the API.
    conversation = open_handover(site, "kim", HOSTILE)
    async with console_page(chromium) as page:
        await browser_sign_in(page, site.url, "ann", PASSWORD, shot=shots / "1-login.png")
        link = page.locator(f"a[href='/console/conversations/{conversation}']")
        await link.wait_for()
        await page.screenshot(path=shots / "2-inbox.png", full_page=True)
        await link.click()
        await page.click("button:has-text('Assign to me')")
        await page.get_by_text("taken by").wait_for()
        await page.fill("textarea[name=text] >> nth=0", "Hello Kim, I can help.")
        await page.click("button:has-text('Send')")
        await page.get_by_text("Hello Kim, I can help.").wait_for()
        assert await page.title() == f"Conversation {conversation} · supportbot"
        await page.screenshot(path=shots / "3-conversation.png", full_page=True)
        await page.click("button:has-text('Resolve')")
        await page.get_by_text("No open hand-over").wait_for()
        await page.click("a:has-text('Analytics')")
        await page.locator("#handover").wait_for()
        assert await page.locator("#handover").inner_text() == "100.0 %"
        await page.screenshot(path=shots / "4-analytics.png", full_page=True)
        await page.click("a:has-text('Users')")
        await page.get_by_role("heading", name="Users").wait_for()
        await page.screenshot(path=shots / "5-users.png", full_page=True)
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(f"{site.url}/console/conversations/{conversation}")
        await page.screenshot(path=shots / "6-conversation-390px.png", full_page=True)
        await page.goto(f"{site.url}/console?view=resolved")
        await page.screenshot(path=shots / "7-resolved-390px.png", full_page=True)
    # The reply reached the customer's conversation, where the web chat's stream sends it.
    log = await ConversationLog.open(site.log_path)
    try:
        logged = await log.get_conversation(conversation)
    finally:
        await log.close()
    assert logged is not None
    assert next(t.text for t in logged.turns if t.role == "operator") == "Hello Kim, I can help."
    assert saved_shots(shots) == [
        "1-login.png",
        "2-inbox.png",
        "3-conversation.png",
        "4-analytics.png",
        "5-users.png",
        "6-conversation-390px.png",
        "7-resolved-390px.png",
    ]
