"""Run the HTTP front end, or manage its API keys.

    python -m bot.web [--config FILE] [-v]                      serve on [web] listen_host:port
    python -m bot.web keys create --name NAME --scope chat|admin [--rate N]
    python -m bot.web keys revoke NAME
    python -m bot.web keys list
    python -m bot.web users create NAME --role operator|admin [--password-stdin]
    python -m bot.web users remove NAME
    python -m bot.web users list

Start-up problems end the process with exit status 2 and one line saying what to fix.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from bot.web.access import Services
from bot.web.app import create_app
from bot.web.console_upgrade import import_old_console
from bot.web.keys import SCOPES, KeyStore
from bot.web.knowledge_admin import KnowledgeAdmin
from bot.web.limits import RateLimiter
from bot.web.users import ROLES, UserStore
from engine.generators.models import ModelUnavailable
from engine.heap import settle_heap
from engine.runtime import open_engine
from engine.settings import Settings, load_settings
from retrieval import IndexMissing

if TYPE_CHECKING:  # the redis extra is needed only by several processes
    from bot.wakeups import Wakeups

log = logging.getLogger("bot.web")


class StartupError(Exception):
    """A problem the operator must fix before the server can run; the message says how."""


def _wakeups_type() -> type[Wakeups]:
    """bot.wakeups, which needs the redis extra."""
    try:
        from bot.wakeups import Wakeups
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] != "redis":
            raise
        raise StartupError(
            "[web] redis_wakeups = true needs the redis package; install it with "
            "bash scripts/setup.sh redis"
        ) from None
    return Wakeups


async def serve(settings: Settings) -> None:
    """Open the engine, then serve HTTP until SIGINT or SIGTERM."""
    config = settings.web
    wakeups_type = _wakeups_type() if config.redis_wakeups else None
    keys = KeyStore(config.keys_path)
    if not keys.names():
        log.warning(
            "no API keys in %s; create one with python -m bot.web keys create", config.keys_path
        )
    async with contextlib.AsyncExitStack() as stack:
        try:
            engine = await stack.enter_async_context(open_engine(settings))
        except IndexMissing as error:
            raise StartupError(str(error)) from None
        except ModelUnavailable as error:
            raise StartupError(f"the answering model is unavailable: {error}") from None
        knowledge = KnowledgeAdmin(
            engine.knowledge_base, settings.retrieval.kb_dir, settings.retrieval, settings.importing
        )
        # An older console file's holders and ratings go to the log before the console serves.
        await import_old_console(UserStore(config.users_path), engine.conversation_log)
        limiter = RateLimiter(config.rate_per_minute, config.rate_burst)
        wakeups = None
        if wakeups_type is not None:
            wakeups = wakeups_type.connect(settings.queue)
            await wakeups.start()
            stack.push_async_callback(wakeups.close)
        app = create_app(Services(engine, config, keys, limiter, knowledge, wakeups))
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=config.listen_host,
                port=config.listen_port,
                log_level="warning",
                access_log=False,  # URLs may carry customer ids; replies are in the log
                timeout_graceful_shutdown=10,
            )
        )
        log.info("web front end on http://%s:%d", config.listen_host, config.listen_port)
        # As the bot does: the models, schemas and routes built so far stay out of the
        # collector's walks. The engine's swaps (engine/runtime.py, engine/pickup.py) free a
        # replaced model through release_frozen.
        settle_heap()
        await server.serve()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed, as `uvicorn.run` would pick: every request costs less CPU."""
    try:
        import uvloop
    except ImportError:  # Windows, or an install without the web extra's uvloop
        return None
    return uvloop.new_event_loop


def keys_command(settings: Settings, args: argparse.Namespace) -> int:
    store = KeyStore(settings.web.keys_path)
    if args.action == "create":
        secret = store.create(args.name, args.scope, rate_per_minute=args.rate)
        print(secret)
        print(
            f"key {args.name!r} ({args.scope}) created; it is shown only now, store it safely",
            file=sys.stderr,
        )
    elif args.action == "revoke":
        if not store.revoke(args.name):
            print(f"error: no live key named {args.name!r}", file=sys.stderr)
            return 1
        print(f"key {args.name!r} revoked", file=sys.stderr)
    else:
        for name, scope in store.names():
            print(f"{name}\t{scope}")
    return 0


def users_command(settings: Settings, args: argparse.Namespace) -> int:
    store = UserStore(settings.web.users_path)
    if args.action == "create":
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                raise StartupError("the two passwords differ; run the command again")
        store.create(args.name, args.role, password)
        print(f"user {args.name!r} ({args.role}) created", file=sys.stderr)
    elif args.action == "remove":
        if not store.remove(args.name):
            print(f"error: no user named {args.name!r}", file=sys.stderr)
            return 1
        print(f"user {args.name!r} removed and signed out", file=sys.stderr)
    else:
        for user in store.users():
            print(f"{user.name}\t{user.role}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.web", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, help="TOML config file (default: ./supportbot.toml if present)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every reply")
    commands = parser.add_subparsers(dest="command")
    keys = commands.add_parser("keys", help="create, revoke or list API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", required=True, choices=SCOPES)
    create.add_argument("--rate", type=float, help="requests per minute (default: [web])")
    revoke = actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("name")
    actions.add_parser("list", help="names and scopes of the live keys")
    users = commands.add_parser("users", help="create, remove or list console accounts")
    user_actions = users.add_subparsers(dest="action", required=True)
    new_user = user_actions.add_parser("create", help="create an account (password asked)")
    new_user.add_argument("name")
    new_user.add_argument("--role", required=True, choices=ROLES)
    new_user.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    gone = user_actions.add_parser("remove", help="remove an account and end its sessions")
    gone.add_argument("name")
    user_actions.add_parser("list", help="names and roles of the accounts")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        try:
            settings = load_settings(args.config)
        except ValueError as error:
            raise StartupError(str(error)) from None
        if args.command == "keys":
            try:
                return keys_command(settings, args)
            except ValueError as error:
                raise StartupError(str(error)) from None
        if args.command == "users":
            try:
                return users_command(settings, args)
            except ValueError as error:
                raise StartupError(str(error)) from None
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(settings))
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
