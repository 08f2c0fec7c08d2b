"""A generator that fails partway never leaves a cut-off answer: the entry itself replaces it."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

from prometheus_client import REGISTRY

from engine import Engine, FinalReply, TextDelta
from engine.generators import GenerationFailed, GenerationRequest
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from retrieval import KnowledgeBase


class BreakingGenerator:
    """Streams a few words, then fails as a model server that died would."""

    def __init__(self, note: str = "") -> None:
        self.requests: list[GenerationRequest] = []
        self._note = note

    @property
    def name(self) -> str:
        return "breaking"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        self.requests.append(request)
        yield "Delivery takes "
        if self._note:
            request.notes.append(self._note)
            yield "a few days."
            return
        raise GenerationFailed("the replica went away", partial="Delivery takes ")


def recoveries(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "supportbot_generation_recoveries_total", {"outcome": outcome}
    )
    return value or 0.0


async def reply(engine: Engine, conversation: int, text: str) -> tuple[str, FinalReply]:
    streamed, final = "", None
    async for event in engine.reply(conversation, text):
        if isinstance(event, TextDelta):
            streamed += event.text
        else:
            final = event
    assert final is not None
    return streamed, final


async def test_a_failed_generation_is_replaced_by_the_extractive_answer_and_logged(
    sample_kb: KnowledgeBase, tmp_path: Path
) -> None:
    before = recoveries("extractive")
    generator = BreakingGenerator()
    async with await ConversationLog.open(tmp_path / "log.db") as conversation_log:
        engine = Engine(sample_kb, generator, LexiconSentiment(), conversation_log)
        conversation = await engine.conversation("test", "dana")
        streamed, final = await reply(engine, conversation, "how long does delivery take?")
        turn = (await conversation_log.recent_turns(conversation, 1))[-1]
    assert streamed == "Delivery takes "
    assert final.action == "answer" and final.text == final.hits[0].entry.answer
    assert final.reason.startswith("confident")
    assert final.reason.endswith("generation failed (the replica went away): extractive answer")
    assert (turn.text, turn.reason) == (final.text, final.reason)
    assert recoveries("extractive") == before + 1
    # The generator was told which conversation this is, to keep it on one replica.
    assert generator.requests[0].affinity == str(conversation)


async def test_what_the_generator_notes_reaches_the_log(
    sample_kb: KnowledgeBase, tmp_path: Path
) -> None:
    note = "replica http://a failed mid-answer (dropped); completed on http://b"
    async with await ConversationLog.open(tmp_path / "log.db") as conversation_log:
        engine = Engine(sample_kb, BreakingGenerator(note), LexiconSentiment(), conversation_log)
        conversation = await engine.conversation("test", "erin")
        _, final = await reply(engine, conversation, "how long does delivery take?")
        turn = (await conversation_log.recent_turns(conversation, 1))[-1]
    assert final.reason.endswith(note) and turn.reason == final.reason
