"""The knowledge pages in a real browser (Debian's Chromium driven by Playwright): an admin keeps
a canned reply, takes a hand-over the bot could not answer, replies, turns the reply into an
entry, and the next customer who asks the same gets the bot's answer.

Screenshots (PNG) of every page are saved in the test's tmp_path, one at a phone's 390 px.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import FilePayload

from retrieval.store import read_changes
from tests.web.console_helpers import PASSWORD, ask, browser_sign_in, console_page, saved_shots
from tests.web.server import WebServer
from tests.web.test_console_knowledge import REPLY, UNKNOWN


async def test_an_answer_becomes_an_entry_the_bot_then_answers_from_in_the_browser(
    site: WebServer, chromium: Path, shots: Path
) -> None:
    conversation, first = ask(site, "kim", UNKNOWN, handover=True)
    assert first != REPLY
    async with console_page(chromium) as page:
        await browser_sign_in(page, site.url, "ann", PASSWORD)
        await page.locator("a:has-text('Knowledge')").wait_for()

        # The knowledge pages: entries, a search, one entry, the import with its problems.
        await page.click("a:has-text('Knowledge')")
        await page.get_by_role("heading", name="Knowledge base").wait_for()
        await page.screenshot(path=shots / "1-entries.png", full_page=True)
        await page.fill("input[name=q]", "warranty")
        await page.click("button:has-text('Search')")
        await page.get_by_text("What the bot would answer from").wait_for()
        await page.screenshot(path=shots / "2-search.png", full_page=True)
        await page.click("a[href='/console/knowledge/entry?id=warranty-length'] >> nth=0")
        await page.locator("textarea[name=answer]").wait_for()
        await page.screenshot(path=shots / "3-entry.png", full_page=True)
        await page.click("a:has-text('Import files')")
        upload: FilePayload = {
            "name": "gifts.csv",
            "mimeType": "text/csv",
            "buffer": b"question,answer\nDo you sell gift cards?,Yes.\n,lost\n",
        }
        await page.set_input_files("input[name=files]", [upload])
        await page.click("button:has-text('Import')")
        await page.locator("#import-problems").wait_for()
        assert "empty question" in await page.locator("#import-problems").inner_text()
        await page.screenshot(path=shots / "4-import.png", full_page=True)

        # A canned reply, inserted into the reply box with one click.
        await page.click("a:has-text('Canned replies')")
        await page.fill("input[name=title]", "Greeting")
        await page.fill("textarea[name=text]", "Hello, thanks for waiting.")
        await page.click("button:has-text('Add')")
        await page.get_by_role("cell", name="Greeting").wait_for()
        await page.screenshot(path=shots / "5-canned.png", full_page=True)

        # The hand-over: take it, see the suggestion, reply, turn the reply into an entry.
        await page.goto(f"{site.url}/console/conversations/{conversation}")
        await page.click("button:has-text('Assign to me')")
        await page.get_by_text("taken by").wait_for()
        await page.locator("#suggestion").wait_for()
        await page.click("button:has-text('Greeting')")
        assert await page.input_value("#reply-text") == "Hello, thanks for waiting."
        await page.click("button:has-text('Use the suggested reply')")
        assert await page.input_value("#reply-text") != "Hello, thanks for waiting."
        await page.fill("#reply-text", REPLY)
        await page.click("button:has-text('Send')")
        await page.locator("button:has-text('Turn this into a FAQ entry')").wait_for()
        await page.screenshot(path=shots / "6-conversation.png", full_page=True)
        await page.click("button:has-text('Turn this into a FAQ entry')")
        await page.get_by_role("heading", name="New entry from conversation").wait_for()
        assert await page.input_value("textarea[name=question]") == UNKNOWN
        assert await page.input_value("textarea[name=answer]") == REPLY
        await page.screenshot(path=shots / "7-draft.png", full_page=True)
        await page.click("button:has-text('Save as a new version')")
        await page.get_by_role("heading", name="Entry").wait_for()
        assert await page.input_value("textarea[name=answer]") == REPLY
        await page.screenshot(path=shots / "8-saved-entry.png", full_page=True)
        await page.click("a:has-text('History')")
        await page.get_by_text(f"conversation #{conversation}").wait_for()
        await page.screenshot(path=shots / "9-history.png", full_page=True)
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(f"{site.url}/console/knowledge/history")
        await page.screenshot(path=shots / "10-history-390px.png", full_page=True)
        await page.goto(f"{site.url}/console/knowledge?q=harbour")
        await page.screenshot(path=shots / "11-search-390px.png", full_page=True)
    # The next customer who asks the same question gets the bot's answer: the entry.
    _, answer = ask(site, "lea", UNKNOWN)
    assert answer == REPLY
    learned = [c for c in read_changes(site.kb_dir) if c.origin == "conversation"]
    assert [(c.conversation_id, c.operator) for c in learned] == [(conversation, "ann")]
    assert UNKNOWN not in (site.kb_dir / "changes.jsonl").read_text(encoding="utf-8")
    assert saved_shots(shots) == sorted(
        [
            "1-entries.png",
            "2-search.png",
            "3-entry.png",
            "4-import.png",
            "5-canned.png",
            "6-conversation.png",
            "7-draft.png",
            "8-saved-entry.png",
            "9-history.png",
            "10-history-390px.png",
            "11-search-390px.png",
        ]
    )
