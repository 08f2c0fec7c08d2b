"""Run the Telegram bot: python -m bot [--config FILE] [-v].

The bot token comes from TELEGRAM_BOT_TOKEN and, in webhook mode, the secret Telegram sends
with every update from TELEGRAM_WEBHOOK_SECRET. Start-up problems end the process with exit
status 2 and one line saying what to fix.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import sys
from pathlib import Path

import aiohttp
from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError
from aiogram.utils.token import TokenValidationError, validate_token

from bot.app import build_dispatcher, make_bot
from bot.journal import UpdateJournal
from bot.metrics import start_health
from bot.serving import run_polling, run_webhook
from engine.generators import GeneratorConfig
from engine.generators.models import ModelUnavailable
from engine.heap import settle_heap
from engine.jsonlog import configure_logging
from engine.runtime import open_engine
from engine.settings import Settings, load_settings
from retrieval import IndexMissing

log = logging.getLogger("bot")

_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class StartupError(Exception):
    """A problem the operator must fix before the bot can run; the message says how."""


def read_secrets(settings: Settings, environ: dict[str, str]) -> tuple[str, str]:
    """The bot token and webhook secret from the environment, checked."""
    token = environ.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        raise StartupError("TELEGRAM_BOT_TOKEN is not set; get a token from @BotFather")
    try:
        validate_token(token)
    except TokenValidationError:
        raise StartupError(
            "TELEGRAM_BOT_TOKEN is malformed; it looks like 123456789:AA... (from @BotFather)"
        ) from None
    secret = environ.get("TELEGRAM_WEBHOOK_SECRET", "")
    if settings.bot.mode == "webhook" or settings.bot.role == "receiver":
        if not settings.bot.webhook_url:
            raise StartupError(
                "webhook mode (or role receiver) needs [bot] webhook_url; set the public URL"
            )
        if not _SECRET.fullmatch(secret):
            raise StartupError(
                "webhook mode needs TELEGRAM_WEBHOOK_SECRET: "
                "1-256 characters of A-Z, a-z, 0-9, _ or -"
            )
    return token, secret


async def check_generator(config: GeneratorConfig) -> None:
    """An HTTP generator must have one server answering before the bot takes customers."""
    if config.backend != "openai":
        return
    problems: list[str] = []
    timeout = aiohttp.ClientTimeout(total=config.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for url in config.base_urls:
            try:
                async with session.get(f"{url.rstrip('/')}/v1/models") as response:
                    if response.status < 500:
                        return
                    problems.append(f"{url}: HTTP {response.status}")
            except (aiohttp.ClientError, TimeoutError) as error:
                problems.append(f"{url}: {error or type(error).__name__}")
    raise StartupError(
        "the answer generator is unreachable; start `vllm serve` or fix [generator] base_urls: "
        + "; ".join(problems)
    )


def journal_path(settings: Settings) -> Path:
    """The update journal lives beside the conversation log, one file per way of taking updates.

    A polling start-up handles again what its journal left unfinished; webhook entries must not
    be among them (Telegram delivers those again to the webhook itself).
    """
    name = (
        "telegram-webhook-updates.db" if settings.bot.mode == "webhook" else "telegram-updates.db"
    )
    return settings.log.path.parent / name


async def serve(settings: Settings, token: str, secret: str) -> None:
    """Check the Bot API and open the engine, then take updates until told to stop."""
    config = settings.bot
    async with contextlib.AsyncExitStack() as stack:
        bot = make_bot(token, config)
        stack.push_async_callback(bot.session.close)
        try:
            me = await bot.get_me()
        except TelegramUnauthorizedError:
            raise StartupError(
                "Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather"
            ) from None
        except TelegramNetworkError as error:
            raise StartupError(
                f"cannot reach the Bot API at {config.api_base_url}: {error}"
            ) from None
        if config.role == "receiver":
            # The redis extra is needed only by several processes.
            from bot.roles import QueueUnavailable, serve_receiver

            await start_health(stack, settings)
            settle_heap()
            try:
                await serve_receiver(bot, settings, secret)
            except QueueUnavailable as error:
                raise StartupError(str(error)) from None
            return
        try:
            engine = await stack.enter_async_context(open_engine(settings))
        except IndexMissing as error:
            raise StartupError(str(error)) from None
        except ModelUnavailable as error:
            raise StartupError(f"the answering model is unavailable: {error}") from None
        except ValueError as error:
            raise StartupError(str(error)) from None
        await check_generator(settings.generator)
        log.info("bot @%s starting mode=%s", me.username, config.mode)
        if config.role == "worker":
            from bot.roles import QueueUnavailable, serve_worker

            await start_health(stack, settings, engine)
            settle_heap()
            try:
                await serve_worker(bot, engine, settings)
            except QueueUnavailable as error:
                raise StartupError(str(error)) from None
            return
        dp = build_dispatcher(engine, config)
        await start_health(stack, settings, engine)
        journal = await UpdateJournal.open(journal_path(settings))
        stack.push_async_callback(journal.close)
        settle_heap()
        if config.mode == "webhook":
            await run_webhook(bot, dp, config, secret, journal=journal)
        else:
            await run_polling(bot, dp, config, journal)
    log.info("bot stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, help="TOML config file (default: ./supportbot.toml if present)"
    )
    parser.add_argument(
        "--role",
        choices=["single", "receiver", "worker"],
        help="overrides [bot] role: one process, or a webhook receiver or worker of several",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every reply")
    parser.add_argument(
        "--log-json", action="store_true", help="one JSON object per log line ([metrics] log_json)"
    )
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    configure_logging(level, json_lines=args.log_json)
    # Models come from local folders only; never wait on a hub that is not reachable.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        try:
            settings = load_settings(args.config)
        except ValueError as error:
            raise StartupError(str(error)) from None
        if args.role:
            role = dataclasses.replace(settings.bot, role=args.role)
            settings = dataclasses.replace(settings, bot=role)
        if settings.metrics.log_json and not args.log_json:
            configure_logging(level, json_lines=True)
        token, secret = read_secrets(settings, dict(os.environ))
        asyncio.run(serve(settings, token, secret))
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
