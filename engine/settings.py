"""The configuration tree, read once from a TOML file by the entry points."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from engine.engine import EngineConfig
from engine.generators import GeneratorConfig
from engine.health import MetricsConfig
from engine.log import LogConfig
from engine.policy import PolicyConfig
from engine.sentiment import SentimentConfig
from retrieval import ImportConfig, RetrievalConfig

DEFAULT_CONFIG_FILE = Path("supportbot.toml")

_T = TypeVar("_T")


# The shortest claim on a console reply's send (bot.outbox): two of Telegram's longest waits.
OUTBOX_RECLAIM_MIN_S = 240.0


@dataclass(frozen=True, slots=True)
class BotConfig:
    """The Telegram front end; the bot token and webhook secret come from the environment only."""

    # A self-hosted Bot API server (or the tests' fake) replaces Telegram's.
    api_base_url: str = "https://api.telegram.org"
    mode: Literal["polling", "webhook"] = "polling"
    # single: one process takes updates and answers (polling or webhook, as `mode` says).
    # Several processes share [queue]: receivers take webhook updates and queue them, workers
    # answer them (see bot.queue).
    role: Literal["single", "receiver", "worker"] = "single"
    # The bot's own HTTP server: the webhook in webhook mode, the health endpoint in both.
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    webhook_path: str = "/telegram"
    # Public HTTPS base URL Telegram posts to; webhook_path is appended.
    webhook_url: str = ""
    health_path: str = "/health"
    # Polling mode serves the health endpoint too when this is set.
    health_when_polling: bool = False
    # Streamed answers update at most this often per chat.
    stream_interval_s: float = 1.0
    # sendMessageDraft in private chats; off: a message edited as the answer grows.
    drafts: bool = True
    # More than flood_messages in flood_window_s from one chat: one slow-down notice, no answers.
    flood_messages: int = 8
    flood_window_s: float = 10.0
    # Longer customer messages are refused with a request to shorten them.
    max_message_chars: int = 2000
    # In-flight replies get this long to finish on shutdown before they are cancelled.
    shutdown_grace_s: float = 10.0
    # The operators' forum supergroup (0: no operator desk; hand-overs are only logged).
    operator_chat_id: int = 0
    # Interface languages; the first is the fallback for customers in any other language.
    languages: tuple[str, ...] = ("en", "zh")
    # How often each process looks in the log for console replies to send (bot.outbox), and
    # after how long a send claimed by a process that died is taken again.
    outbox_interval_s: float = 1.0
    outbox_reclaim_s: float = 300.0

    def __post_init__(self) -> None:
        if self.outbox_interval_s <= 0:
            raise ValueError("[bot] outbox_interval_s must be above 0")
        # A send may take half the claim, and one flood-control wait is up to 60 s (bot.retry):
        # below this a reply held by Telegram would be given up too soon, or sent twice.
        if self.outbox_reclaim_s < OUTBOX_RECLAIM_MIN_S:
            raise ValueError(
                f"[bot] outbox_reclaim_s must be {OUTBOX_RECLAIM_MIN_S:.0f} or more "
                f"(got {self.outbox_reclaim_s}): a console reply's send, flood-control waits "
                "of up to 60 s included, gets half of it"
            )


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The HTTP front end (python -m bot.web): API, REST, web chat; keys live in `keys_path`."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 8090
    # Browser origins allowed to call the API from other sites (the web chat itself needs none).
    cors_origins: tuple[str, ...] = ()
    # API keys, stored hashed; managed with `python -m bot.web keys`.
    keys_path: Path = Path("var/web-keys.db")
    # Per key: a bucket of rate_burst requests refilled at rate_per_minute.
    rate_per_minute: float = 120.0
    rate_burst: int = 30
    # Request bodies above this are refused (413); file imports have their own limit.
    max_body_bytes: int = 65536
    max_import_mb: float = 10.0
    # Longer customer messages are refused with an error that says the limit.
    max_message_chars: int = 2000
    # The model name the OpenAI-compatible API lists and accepts.
    model_name: str = "supportbot"
    # How often a live stream looks for operators' replies in the log.
    poll_interval_s: float = 0.5
    # With bot workers on Redis ([bot] role = "worker"): wake their outboxes at once when the
    # console logs a reply, and the console's live view when they log turns (pub/sub on
    # [queue] url, channel "<prefix>log"). The polls above stay, for what a wake-up misses.
    redis_wakeups: bool = False
    # True when the Telegram bot's operator desk takes web hand-overs (python -m bot with
    # [bot] operator_chat_id): while one is open, customers' messages go to the operator.
    # False: hand-overs are recorded in the log and the bot keeps answering.
    operator_desk: bool = False
    # The console (/console): accounts, sessions, assignments and notes, managed with
    # `python -m bot.web users`. cookie_secure=False only for plain http://127.0.0.1 tests.
    users_path: Path = Path("var/console.db")
    cookie_secure: bool = True
    session_hours: float = 12.0
    # Login tries per client address and per user name: a burst of 5, refilled at this rate.
    login_per_minute: float = 5.0


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The Redis update queue between webhook receivers and workers ([bot] role)."""

    url: str = "redis://127.0.0.1:6379/0"
    # Every key the bot keeps in Redis starts with this; deployments sharing a server differ.
    prefix: str = "supportbot:"
    group: str = "workers"
    # An update a worker took and stopped touching this long ago (it died) goes to another.
    claim_idle_s: float = 30.0
    # Updates one worker handles at once (different chats; one chat is served in order).
    concurrency: int = 64
    # How long the state of a handled update is kept, so a redelivery is recognised.
    keep_s: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.claim_idle_s <= 0 or self.concurrency < 1 or self.keep_s < 60:
            raise ValueError(
                "[queue] claim_idle_s must be above 0, concurrency 1 or more, keep_s 60 or more"
            )


@dataclass(frozen=True, slots=True)
class TrainingConfig:
    """Retraining from the log (scripts/retrain.py): where models go, how much data, the gate."""

    models_dir: Path = Path("var/models")
    runs_dir: Path = Path("var/training/runs")
    # Share of conversations held out for validation.
    validation_share: float = 0.2
    # A kind is trained only with at least this many training examples.
    min_pairs: int = 50
    min_dialogues: int = 20
    min_sentiment: int = 40
    # A kind is trained only with at least this many held-out items to gate it on (dialogues,
    # messages, queries); fewer is "not enough evidence". At 10, a win must hold on 9 of 10
    # items before even an exact sign test calls it (p = 0.021); never below 6 (see
    # training/gate.py MIN_ITEMS).
    min_held_out: int = 10
    # A new model is promoted when its metric is no worse than the live one's by more than this.
    margin: float = 0.0
    lora_rank: int = 8
    lora_epochs: float = 2.0
    embedder_epochs: float = 1.0

    def __post_init__(self) -> None:
        if self.min_held_out < 6:
            raise ValueError(
                "[training] min_held_out must be 6 or more: on fewer held-out items no paired "
                f"test can show a gain at 95% confidence; got {self.min_held_out}"
            )


@dataclass(frozen=True, slots=True)
class Settings:
    """Every package's config; each section of the TOML file fills one field."""

    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    importing: ImportConfig = field(default_factory=ImportConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    sentiment: SentimentConfig = field(default_factory=SentimentConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    log: LogConfig = field(default_factory=LogConfig)
    bot: BotConfig = field(default_factory=BotConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    web: WebConfig = field(default_factory=WebConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    @property
    def engine_config(self) -> EngineConfig:
        """The engine's config with the policy and sentiment sections folded in."""
        return dataclasses.replace(self.engine, policy=self.policy, sentiment=self.sentiment)


_SECTIONS = {
    "retrieval": "retrieval",
    "import": "importing",
    "engine": "engine",
    "policy": "policy",
    "sentiment": "sentiment",
    "generator": "generator",
    "log": "log",
    "bot": "bot",
    "queue": "queue",
    "web": "web",
    "training": "training",
    "metrics": "metrics",
}


def load_settings(path: Path | None = None) -> Settings:
    """Settings from `path`, or from ./supportbot.toml when present, else the defaults.

    Unknown sections or keys and values of the wrong type are errors that name the key,
    so a typo never silently falls back to a default.
    """
    if path is None:
        if not DEFAULT_CONFIG_FILE.exists():
            return Settings()
        path = DEFAULT_CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        raise ValueError(
            f"{path}: unknown section(s) {sorted(unknown)}; known: {sorted(_SECTIONS)}"
        )
    defaults = Settings()
    parts = {
        attr: _section(getattr(defaults, attr), data.get(name, {}), f"{path}: [{name}]")
        for name, attr in _SECTIONS.items()
    }
    return Settings(**parts)


def _section(default: _T, values: dict[str, Any], where: str) -> _T:
    hints = get_type_hints(type(default))
    known = {
        f.name
        for f in dataclasses.fields(default)  # type: ignore[arg-type]
        if not dataclasses.is_dataclass(getattr(default, f.name))  # nested: their own section
    }
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"{where} unknown key {key!r}; known: {sorted(known)}")
        changes[key] = _convert(value, hints[key], f"{where} {key}")
    return dataclasses.replace(default, **changes)  # type: ignore[type-var]


def _convert(value: Any, hint: Any, where: str) -> Any:
    """A TOML value as the field's type: Path from str, tuple from array, int widened to float."""
    options = get_args(hint) if get_origin(hint) in (UnionType, Union) else (hint,)
    for option in options:
        if option is type(None):
            continue
        if option is Path and isinstance(value, str):
            return Path(value)
        if get_origin(option) is tuple and isinstance(value, list):
            return tuple(value)
        if option is float and type(value) is int:
            return float(value)
        if isinstance(option, type) and type(value) is option:
            return value
        if get_origin(option) is Literal and value in get_args(option):
            return value
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options if o is not type(None))
    raise ValueError(f"{where} must be {names}, got {value!r}")
