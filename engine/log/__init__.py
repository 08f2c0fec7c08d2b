"""The conversation log: every turn, retrieval, feedback and handover in one SQLite file."""

from engine.log.export import (
    AnswerPair,
    DialogueExample,
    LabelledSentiment,
    answer_pairs,
    dialogue_examples,
    sentiment_labels,
)
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
from engine.log.store import ConversationLog, LogConfig

__all__ = [
    "ACTIONS",
    "DELIVERIES",
    "ROLES",
    "SCHEMA_VERSION",
    "Action",
    "AnswerPair",
    "Conversation",
    "ConversationLog",
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
    "normalise_question",
    "redact",
    "report",
    "sentiment_labels",
]
