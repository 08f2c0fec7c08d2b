"""The conversation log: every turn, retrieval, feedback and handover, in SQLite or PostgreSQL.

Everything outside this package goes through the `ConversationStore` Protocol from `open_store`.
"""

from engine.log.config import LogConfig, log_config_for
from engine.log.copy import CopyResult, checksum, copy_log
from engine.log.export import (
    AnswerPair,
    DialogueExample,
    HandoverExchange,
    LabelledSentiment,
    LogExports,
    LogTarget,
    answer_pairs,
    dialogue_examples,
    export_all,
    export_answer_pairs,
    export_dialogue_examples,
    export_handover_exchanges,
    export_sentiment_labels,
    handover_exchanges,
    read_exports,
    read_log,
    sentiment_labels,
)
from engine.log.port import STORES, ConversationStore, open_store
from engine.log.records import (
    ACTIONS,
    DELIVERIES,
    REASON_CODES,
    ROLES,
    Action,
    Conversation,
    ConversationSummary,
    Delivery,
    Handover,
    ReasonCode,
    Retrieved,
    Role,
    Turn,
)
from engine.log.redact import redact
from engine.log.report import (
    LogReport,
    UnansweredQuestion,
    build_report,
    normalise_question,
    report,
)
from engine.log.schema import SCHEMA_VERSION
from engine.log.store import ConversationLog

__all__ = [
    "ACTIONS",
    "DELIVERIES",
    "REASON_CODES",
    "ROLES",
    "SCHEMA_VERSION",
    "STORES",
    "Action",
    "AnswerPair",
    "Conversation",
    "ConversationLog",
    "ConversationStore",
    "ConversationSummary",
    "CopyResult",
    "Delivery",
    "DialogueExample",
    "Handover",
    "HandoverExchange",
    "LabelledSentiment",
    "LogConfig",
    "LogExports",
    "LogReport",
    "LogTarget",
    "ReasonCode",
    "Retrieved",
    "Role",
    "Turn",
    "UnansweredQuestion",
    "answer_pairs",
    "build_report",
    "checksum",
    "copy_log",
    "dialogue_examples",
    "export_all",
    "export_answer_pairs",
    "export_dialogue_examples",
    "export_handover_exchanges",
    "export_sentiment_labels",
    "handover_exchanges",
    "log_config_for",
    "normalise_question",
    "open_store",
    "read_exports",
    "read_log",
    "redact",
    "report",
    "sentiment_labels",
]
