"""Simulated traffic for demonstrating the retraining loop: customers, feedback, an operator.

Customers ask the knowledge base's questions and paraphrases; a scripted policy likes some bot
answers and hands the rest to an operator who answers in the company's own style (a greeting, the
entry's first sentence, an offer of more help), which the base model does not write by itself.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Sequence
from pathlib import Path

from engine.log import ConversationLog, Retrieved
from engine.sentiment.lexicon import LexiconSentiment
from retrieval.entries import FaqEntry


def operator_answer(entry: FaqEntry) -> str:
    """How the simulated operator answers a question about `entry`."""
    first = re.split(r"(?<=[.!?])\s+", entry.answer.strip().replace("\n", " "))[0]
    return f"Thanks for reaching out! {first} Anything else I can help you with?"


def simulate_log(
    path: Path, entries: Sequence[FaqEntry], *, conversations: int = 60, seed: int = 0
) -> int:
    """Fill the log at `path` with `conversations` simulated chats; returns how many it wrote."""
    return asyncio.run(_simulate(path, entries, conversations, seed))


async def _simulate(path: Path, entries: Sequence[FaqEntry], n: int, seed: int) -> int:
    rng = random.Random(seed)
    asked = [(q, e) for e in entries if e.answer for q in e.questions]
    rng.shuffle(asked)
    lexicon = LexiconSentiment()
    async with await ConversationLog.open(path) as log:
        for i, (question, entry) in enumerate(asked[:n]):
            conversation = await log.start_conversation("simulation", f"customer-{i}")
            mood = lexicon.score(question)
            await log.add_turn(
                conversation,
                "customer",
                question,
                sentiment_label=mood.label,
                sentiment_score=mood.score,
            )
            if i % 3 == 0:
                turn = await log.add_turn(
                    conversation,
                    "bot",
                    operator_answer(entry),
                    action="answer",
                    retrieved=[Retrieved(entry.id, 0.9)],
                )
                await log.add_feedback(turn, 1)
                continue
            await log.add_turn(
                conversation,
                "bot",
                "Let me bring in a colleague.",
                action="handoff",
                retrieved=[Retrieved(entry.id, 0.4)],
            )
            handover = await log.open_handover(conversation, "low_confidence")
            await log.add_turn(conversation, "operator", operator_answer(entry))
            await log.close_handover(handover, operator_id="operator-1")
    return min(n, len(asked))
