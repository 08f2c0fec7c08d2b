"""The checks every store makes before it writes, so both databases refuse the same things."""

from __future__ import annotations

from engine.log.config import LogConfig
from engine.log.records import (
    ACTIONS,
    DELIVERIES,
    REASON_CODES,
    ROLES,
    Action,
    Delivery,
    Handover,
    ReasonCode,
    Role,
)
from engine.log.redact import redact


def checked_turn_text(
    config: LogConfig,
    role: Role,
    text: str,
    *,
    action: Action | None,
    sentiment_label: str | None,
    sentiment_score: float | None,
    delivery: Delivery | None,
    reason_code: ReasonCode | None = None,
) -> str:
    """The text to store for a new turn (redacted unless turned off); ValueError for a bad turn."""
    if role not in ROLES:
        raise ValueError(f"turn role {role!r} is not one of {ROLES}")
    if action is not None and (action not in ACTIONS or role != "bot"):
        raise ValueError(f"action {action!r} needs role 'bot' and one of {ACTIONS}")
    if (sentiment_label is None) != (sentiment_score is None):
        raise ValueError("give sentiment_label and sentiment_score together, or neither")
    check_delivery(delivery)
    if reason_code is not None and (reason_code not in REASON_CODES or role != "bot"):
        raise ValueError(f"reason_code {reason_code!r} needs role 'bot' and one of {REASON_CODES}")
    return redact(text) if config.redact_pii else text


def check_delivery(delivery: Delivery | None) -> None:
    """ValueError unless `delivery` is None or one of DELIVERIES."""
    if delivery is not None and delivery not in DELIVERIES:
        raise ValueError(f"delivery {delivery!r} is not one of {DELIVERIES}")


def check_feedback(value: int) -> None:
    """ValueError unless `value` is a thumbs up (1) or down (-1)."""
    if value not in (1, -1):
        raise ValueError(f"feedback value must be 1 or -1, got {value!r}")


def check_rating(score: int) -> None:
    """ValueError unless `score` is a rating from 1 to 5."""
    if score not in (1, 2, 3, 4, 5):
        raise ValueError(f"a rating is 1 to 5, got {score!r}")


def awaits_rating(handover: Handover | None, since: float) -> bool:
    """Whether a handover is closed and its rating, asked for at `since` or later, not given."""
    return (
        handover is not None
        and handover.closed_at is not None
        and handover.rating is None
        and handover.rating_asked_at is not None
        and handover.rating_asked_at >= since
    )


def check_page(limit: int, offset: int) -> None:
    """ValueError for a negative page size or offset."""
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must be 0 or more, got {limit} and {offset}")


def handover_code(reason: str, reason_code: ReasonCode | None) -> ReasonCode | None:
    """A hand-over's code: the one given, or `reason` when that is a code itself."""
    if reason_code is not None:
        if reason_code not in REASON_CODES:
            raise ValueError(f"reason_code {reason_code!r} is not one of {REASON_CODES}")
        return reason_code
    for code in REASON_CODES:
        if reason == code:
            return code
    return None
