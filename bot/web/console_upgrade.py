"""Move an older console file's hand-over holders and ratings into the conversation log, once.

Consoles before the log kept who holds a hand-over and the customer's rating in their own
`assignments` and `ratings` tables. Left there, an upgrade would show held hand-overs as
waiting, lose past CSAT and forget a rating still awaited (the customer's "5" answered as a
question). The web server runs this at start-up; the rows go to the log first and the old
tables are renamed after, so a start cut short imports again, and the log keeps each value once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.web.users import UserStore
from engine.log import ConversationStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Imported:
    """How many of the old rows the log took."""

    holders: int = 0
    ratings: int = 0


async def import_old_console(users: UserStore, store: ConversationStore) -> Imported | None:
    """Bring an older console file's state into the log; None when there was none.

    A holder is kept for hand-overs still open (noted as announced: the topic was told when it
    was taken); ratings keep the times they were asked for and given, so CSAT stays in its
    period and an old question's window is not opened again.
    """
    old = users.old_state()
    if old is None:
        return None
    holders = ratings = 0
    for handover_id, name in old.assignments:
        held = await store.assign_handover(handover_id, name, take_over=False, announced=True)
        holders += held == name
    for handover_id, asked_at, score, rated_at in old.ratings:
        try:
            await store.ask_rating(handover_id, at=asked_at)
        except ValueError:  # the log has no such hand-over (erased): nothing to keep
            continue
        if score is None or await store.rate_handover(handover_id, score, at=rated_at):
            ratings += 1
    users.retire_old_state()
    done = Imported(holders, ratings)
    log.info(
        "moved console state into the log holders=%d/%d ratings=%d/%d",
        holders,
        len(old.assignments),
        ratings,
        len(old.ratings),
    )
    return done
