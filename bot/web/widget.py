"""The embeddable web chat: a script that opens an iframe, the page in it, and its assets.

Nothing is built: the files under static/ are served as they are. The page talks to the same
API as any client (/v1/chat/completions streamed, feedback, hand-over events) with a chat key.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from bot.web.errors import ApiError

STATIC = Path(__file__).with_name("static")
router = APIRouter(tags=["web chat"])
_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# The page runs no inline script and loads nothing from elsewhere; it may be framed anywhere.
_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)


@router.get("/widget.js", response_class=FileResponse, include_in_schema=False)
async def widget_script() -> FileResponse:
    """`<script src=".../widget.js" data-key="CHAT_KEY" async></script>` adds the chat button."""
    return FileResponse(STATIC / "widget.js", media_type="text/javascript", headers=_SECURITY)


@router.get("/chat", response_class=FileResponse, include_in_schema=False)
async def chat_page() -> FileResponse:
    """The chat itself, for an iframe (the key comes in the URL fragment: /chat#key=...)."""
    return FileResponse(
        STATIC / "chat.html",
        media_type="text/html",
        headers={**_SECURITY, "Content-Security-Policy": _PAGE_POLICY},
    )


@router.get("/chat/{name}", response_class=FileResponse, include_in_schema=False)
async def chat_asset(name: str) -> FileResponse:
    """chat.js and chat.css."""
    types = {"chat.js": "text/javascript", "chat.css": "text/css"}
    if name not in types:
        raise ApiError(404, f"no file {name!r}")
    return FileResponse(STATIC / name, media_type=types[name], headers=_SECURITY)
