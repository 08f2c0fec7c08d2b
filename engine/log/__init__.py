"""The conversation log: every turn, retrieval, feedback and handover, in SQLite or PostgreSQL.

Everything outside this package goes through the `ConversationStore` Protocol from `open_store`.
"""

from engine.log.config import LogConfig, log_config_for
from engine.log.export import (
    AnswerPair,
    DialogueExample,
    LabelledSentiment,
    answer_pairs,
    dialogue_examples,
    sentiment_labels,
)
from engine.log.port import STORES, ConversationStore, open_store
from engine.log.records import (
    ACTIONS,
    DELIVERIES,
    ROLES,
    Action,
    Conversation,
    ConversationSummary,
    Delivery,
    Handover,
    Retrieved,
    Role,
    Turn,
)
from engine.log.redact import redact
from engine.log.report import LogReport, UnansweredQuestion, normalise_question, report
from engine.log.schema import SCHEMA_VERSION
from engine.log.store import ConversationLog

__all__ = [
    "ACTIONS",
    "DELIVERIES",
    "ROLES",
    "SCHEMA_VERSION",
    "STORES",
    "Action",
    "AnswerPair",
    "Conversation",
    "ConversationLog",
    "ConversationStore",
    "ConversationSummary",
    "Delivery",
    "DialogueExample",
    "Handover",
    "LabelledSentiment",
    "LogConfig",
    "LogReport",
    "Retrieved",
    "Role",
    "Turn",
    "UnansweredQuestion",
    "answer_pairs",
    "dialogue_examples",
    "log_config_for",
    "normalise_question",
    "open_store",
    "redact",
    "report",
    "sentiment_labels",
]
