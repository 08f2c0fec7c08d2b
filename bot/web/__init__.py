"""The HTTP front end: OpenAI-compatible chat API, REST, and the embeddable web chat."""

from bot.web.access import CHANNEL, Services
from bot.web.app import create_app
from bot.web.keys import ApiKey, KeyStore
from bot.web.knowledge_admin import KnowledgeAdmin
from bot.web.limits import RateLimiter

__all__ = [
    "CHANNEL",
    "ApiKey",
    "KeyStore",
    "KnowledgeAdmin",
    "RateLimiter",
    "Services",
    "create_app",
]
