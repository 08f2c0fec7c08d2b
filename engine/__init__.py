"""The conversation engine: memory, retrieval, policy, generation, sentiment and the log."""

from engine.engine import Engine, EngineConfig, FinalReply, ReplyEvent, TextDelta
from engine.policy import Decision, PolicyConfig
from engine.settings import DEFAULT_CONFIG_FILE, Settings, load_settings

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "Decision",
    "Engine",
    "EngineConfig",
    "FinalReply",
    "PolicyConfig",
    "ReplyEvent",
    "Settings",
    "TextDelta",
    "load_settings",
]
