"""Delivering an update to a webhook as Telegram does, and reading a method from the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.telegram.params import Upload

WEBHOOK_TIMEOUT_S = 10.0


@dataclass
class Webhook:
    """The webhook set by setWebhook, with the last delivery error getWebhookInfo reports."""

    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One POST of an update: the HTTP status (None if it failed) and a method to run."""

    status: int | None
    error: str | None = None
    reply: tuple[dict[str, Any], dict[str, Upload]] | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def post_update(
    http: aiohttp.ClientSession, hook: Webhook, update: dict[str, Any]
) -> Delivery:
    """POST the update as JSON with the secret header; a 2xx answer may carry a method call."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret_token} if hook.secret_token else {}
    try:
        async with http.post(
            hook.url,
            json=update,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S),
        ) as response:
            if not 200 <= response.status < 300:
                return Delivery(
                    response.status, f"Wrong response from the webhook: {response.status}"
                )
            return Delivery(response.status, reply=await _reply(response))
    except (aiohttp.ClientError, TimeoutError) as error:
        return Delivery(None, f"Connection failed: {str(error) or type(error).__name__}")


async def _reply(
    response: aiohttp.ClientResponse,
) -> tuple[dict[str, Any], dict[str, Upload]] | None:
    """A method call in the webhook's answer, as JSON or as aiogram's multipart form."""
    raw: dict[str, Any] = {}
    uploads: dict[str, Upload] = {}
    if response.content_type == "application/json":
        body = await response.json()
        if isinstance(body, dict):
            raw.update(body)
    elif response.content_type == "multipart/form-data":
        reader = aiohttp.MultipartReader(response.headers, response.content)
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                continue
            data = bytes(await part.read(decode=True))
            if part.filename:
                uploads[part.name] = Upload(part.filename, data, part.headers.get("Content-Type"))
            else:
                raw[part.name] = data.decode()
    else:
        await response.read()
    return (raw, uploads) if raw.get("method") else None
