"""The conversation engine: one `reply` stream used by every front end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from engine.batching import SearchBatcher
from engine.choice import ask_which, offered, pick
from engine.generators import GenerationFailed, GenerationRequest, Generator
from engine.grounding import check_grounding
from engine.log import Action, ConversationStore, Delivery, ReasonCode, Retrieved, Turn
from engine.memory import FollowUpSearch, Query, previous_question
from engine.metrics import GENERATION_RECOVERIES, observe_reply
from engine.pickup import LiveModels, ModelPickup
from engine.policy import Decision, PolicyConfig, asks_for_human, decide
from engine.sentiment import Sentiment, SentimentConfig, SentimentModel, SentimentTrend
from retrieval import FaqEntry, Hit, KnowledgeBase, SearchResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine uses its parts."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    sentiment: SentimentConfig = field(default_factory=SentimentConfig)
    memory_turns: int = 6
    # Search a short or referring message together with the previous question as well.
    contextual_queries: bool = True
    # Concurrent replies' searches wait this long for each other to share one embedding call.
    search_batch_wait_ms: float = 2.0
    # Entries given to the generator as context, best first.
    context_entries: int = 3
    max_tokens: int = 256
    # Share of a generated answer's content words that must appear in its sources.
    min_grounding: float = 0.6


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the reply text, in order, as it is produced."""

    text: str


@dataclass(frozen=True, slots=True)
class FinalReply:
    """The whole reply and everything decided and measured for it; always the last event.

    `text` is authoritative: when the grounding check rejects a generated answer, the streamed
    deltas are replaced by this text.
    """

    conversation_id: int
    turn_id: int
    text: str
    action: Action
    reason: str
    reason_code: ReasonCode
    escalate: bool
    hits: tuple[Hit, ...]
    options: tuple[FaqEntry, ...]
    sentiment: Sentiment
    latencies_ms: dict[str, float]
    versions: dict[str, str]


ReplyEvent = TextDelta | FinalReply

OUT_OF_SCOPE = (
    "Sorry, I couldn't find that in our help centre, so I'd rather not guess. "
    "If you'd like, a colleague can help: just write /human."
)
HANDOFF = {
    "human_requested": "Of course. I'm passing you to a colleague now; they will reply here.",
    "negative_sentiment": (
        "I'm sorry this has been frustrating. I'm bringing in a colleague who will reply here."
    ),
    "repeated_failure": (
        "I'm sorry I couldn't help with that. I'm passing you to a colleague; they will reply here."
    ),
}


class Engine:
    """Answers customer messages from the knowledge base, decides, generates and logs."""

    def __init__(
        self,
        kb: KnowledgeBase,
        generator: Generator,
        sentiment: SentimentModel,
        conversation_log: ConversationStore,
        config: EngineConfig | None = None,
        *,
        pickup: ModelPickup | None = None,
    ) -> None:
        """With `pickup`, models promoted by retraining replace `sentiment` and the adapter."""
        self._kb = kb
        self._generator = generator
        self._sentiment = sentiment
        self._pickup = pickup
        self._log = conversation_log
        self._config = config or EngineConfig()
        self._follow_ups = FollowUpSearch(kb)
        self._searches: SearchBatcher[Query, SearchResult] = SearchBatcher(
            self._refreshed_search, max_wait_s=self._config.search_batch_wait_ms / 1000
        )

    @property
    def knowledge_base(self) -> KnowledgeBase:
        """The knowledge base the engine answers from: front ends list and edit its entries."""
        return self._kb

    @property
    def conversation_log(self) -> ConversationStore:
        """The log the engine writes to: front ends record feedback, erasures and handovers."""
        return self._log

    @property
    def generator(self) -> Generator:
        """The answer generator (readiness asks it whether its model servers answer)."""
        return self._generator

    async def conversation(self, channel: str, user_id: str, *, new: bool = False) -> int:
        """The customer's current conversation id on a channel, started if there is none."""
        if not new:
            existing = await self._log.latest_conversation_id(channel, user_id)
            if existing is not None:
                return existing
        return await self._log.start_conversation(channel, user_id)

    def reply(
        self,
        conversation_id: int,
        text: str,
        *,
        external_id: str | None = None,
        delivery: Delivery | None = None,
    ) -> AsyncGenerator[ReplyEvent, None]:
        """Stream the reply to one customer message: text deltas, then one FinalReply.

        Closing the stream early (the customer wrote again, shutdown) stops generation; the
        customer's turn is logged, an unfinished bot turn is not. `external_id` names the
        message on its channel: handled again (after a crash), it keeps one customer turn and
        one bot turn, and the reply logged the first time is given again. `delivery` is the
        bot turn's ("pending" until the front end confirms it reached the customer).
        """
        return self._reply(conversation_id, text, external_id=external_id, delivery=delivery)

    def reply_in_current(
        self,
        channel: str,
        user_id: str,
        text: str,
        *,
        external_id: str | None = None,
        delivery: Delivery | None = None,
    ) -> AsyncGenerator[ReplyEvent, None]:
        """`reply` in the conversation `conversation(channel, user_id)` gives, found in the
        same read of the log as the reply's memory (one read a message instead of two)."""
        customer = (channel, user_id)
        return self._reply(customer, text, external_id=external_id, delivery=delivery)

    async def _reply(
        self,
        where: int | tuple[str, str],
        text: str,
        *,
        external_id: str | None,
        delivery: Delivery | None,
    ) -> AsyncGenerator[ReplyEvent, None]:
        latencies: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            latencies[stage] = round((now - clock) * 1000, 2)
            clock = now

        # Taken once: a model promoted meanwhile is used from the next reply on.
        live = await self._pickup.check() if self._pickup else LiveModels(self._sentiment)
        memory = self._config.memory_turns
        if isinstance(where, int):
            conversation_id = where
            history = await self._log.recent_turns(conversation_id, memory)
        else:
            latest, history = await self._log.latest_turns(*where, memory)
            if latest is None:
                latest = await self._log.start_conversation(*where)
            conversation_id = latest
        # A message handled again: its own earlier turns are not its memory.
        again = {t.id for t in history if external_id and t.external_id == external_id}
        logged = next((t.text for t in history if t.id in again and t.role == "bot"), None)
        history = [t for t in history if t.id not in again]
        sentiment = await asyncio.to_thread(live.sentiment.score, text)
        trend = self._trend(history, sentiment)
        lap("sentiment")
        await self._log.add_turn(
            conversation_id,
            "customer",
            text,
            sentiment_label=sentiment.label,
            sentiment_score=sentiment.score,
            models=_sentiment_versions(live),
            external_id=external_id,
        )
        human_requested = asks_for_human(text)
        chosen = None if human_requested or trend.escalate else self._chosen(text, history)
        if chosen is not None:
            number, hit = chosen
            result = SearchResult(
                text, (hit,), True, self._kb.threshold, self._kb.version, self._kb.embedder.name
            )
            decision = Decision("answer", f"clarify choice: option {number}", code="clarify_choice")
            question = hit.entry.question
        else:
            result = await self._search(text, history)
            decision = decide(
                result,
                human_requested=human_requested,
                upset=trend.escalate,
                failures=_failures(history),
                config=self._config.policy,
            )
            question = text
        lap("retrieval")
        reply_text, reason, code = "", decision.reason, decision.code
        # Read as generation starts: the adapter a stream starts with is the one it finishes on.
        generator = self._generator.name
        if decision.action == "answer":
            notes: list[str] = []
            failed = False
            generation = (
                _given(logged)
                if logged is not None
                else self._generate(question, result, history, conversation_id, notes)
            )
            try:
                async with contextlib.aclosing(generation) as pieces:
                    async for piece in pieces:
                        reply_text += piece
                        yield TextDelta(piece)
            except GenerationFailed as failure:
                failed = True
                code = "generation_failed"
                # No cut-off answer: the entry itself replaces what was streamed (FinalReply).
                notes.append(f"generation failed ({failure}): extractive answer")
                reply_text = _best_answer(result)
                GENERATION_RECOVERIES.labels(outcome="extractive").inc()
                log.warning("generation failed conversation=%s: %s", conversation_id, failure)
            lap("generation")
            if not failed:
                reply_text, reason, code = self._grounded(reply_text, result, reason, code)
            reason = "; ".join([reason, *notes])
        else:
            reply_text = _canned(decision)
            yield TextDelta(reply_text)
        versions = {
            "kb": result.kb_version,
            "embedder": result.embedder or self._kb.embedder.name,
            "generator": generator,
            **_sentiment_versions(live),
        }
        turn_id = await self._log.add_turn(
            conversation_id,
            "bot",
            reply_text,
            action=decision.action,
            reason=reason,
            reason_code=code,
            kb_version=result.kb_version,
            models=versions,
            latencies_ms=latencies,
            retrieved=[Retrieved(h.entry.id, h.score) for h in result.hits],
            delivery=delivery,
            external_id=external_id,
        )
        if decision.escalate:
            await self._log.open_handover(
                conversation_id, decision.reason, reason_code=decision.code
            )
        lap("log")
        observe_reply(decision.action, code, latencies, handed_over=decision.escalate)
        log.info(
            "replied conversation=%s action=%s reason=%s ms=%.0f",
            conversation_id,
            decision.action,
            reason,
            sum(latencies.values()),
        )
        yield FinalReply(
            conversation_id=conversation_id,
            turn_id=turn_id,
            text=reply_text,
            action=decision.action,
            reason=reason,
            reason_code=code,
            escalate=decision.escalate,
            hits=result.hits,
            options=tuple(h.entry for h in decision.options),
            sentiment=sentiment,
            latencies_ms=latencies,
            versions=versions,
        )

    def _trend(self, history: list[Turn], sentiment: Sentiment) -> SentimentTrend:
        # Rebuilt from the log on every message, so a restart keeps the conversation's mood.
        trend = SentimentTrend.from_config(self._config.sentiment)
        for turn in history:
            if turn.role == "customer" and turn.sentiment_score is not None:
                trend.update(turn.sentiment_score)
        trend.update(sentiment)
        return trend

    def _chosen(self, text: str, history: list[Turn]) -> tuple[int, Hit] | None:
        """The option picked when the message answers the bot's clarifying question."""
        if not history or history[-1].role != "bot":
            return None
        ids = offered(history[-1])
        entries = [self._kb.entry(faq_id) for faq_id in ids]
        options = [e for e in entries if e is not None]
        if len(options) != len(ids):
            return None  # an offered entry left the knowledge base: search afresh
        index = pick(text, [e.question for e in options])
        if index is None:
            return None
        score = history[-1].retrieved[index].score
        return index + 1, Hit(options[index], score, options[index].question)

    async def _search(self, text: str, history: list[Turn]) -> SearchResult:
        previous = [t.text for t in history if t.role == "customer"]
        earlier = previous_question(text, previous) if self._config.contextual_queries else None
        (result,) = await self._searches.search([Query(text, earlier)])
        return result

    def _refreshed_search(self, queries: list[Query]) -> list[SearchResult]:
        # A newer import is loaded here, off the event loop: loading can take seconds.
        self._kb.refresh()
        return self._follow_ups.search(queries)

    async def _generate(
        self,
        text: str,
        result: SearchResult,
        history: list[Turn],
        conversation_id: int,
        notes: list[str],
    ) -> AsyncGenerator[str, None]:
        request = GenerationRequest(
            question=text,
            sources=tuple(
                h.entry
                for h in result.hits[: self._config.context_entries]
                if h.score >= result.threshold
            ),
            history=tuple((t.role, t.text) for t in history),
            max_tokens=self._config.max_tokens,
            affinity=str(conversation_id),
            notes=notes,
        )
        async with contextlib.aclosing(self._generator.stream(request)) as stream:
            async for piece in stream:
                yield piece

    def _grounded(
        self, answer: str, result: SearchResult, reason: str, code: ReasonCode
    ) -> tuple[str, str, ReasonCode]:
        sources = [h.entry for h in result.hits[: self._config.context_entries]]
        check = check_grounding(answer, sources, min_support=self._config.min_grounding)
        if check.supported:
            return answer, reason, code
        log.info("grounding failed: %s; answering with the entry itself", check.reason)
        detail = f"{reason}; ungrounded ({check.reason}): extractive answer"
        return _best_answer(result), detail, "ungrounded"


def _best_answer(result: SearchResult) -> str:
    assert result.best is not None, "answers always have a best entry"
    return result.best.entry.answer


def _failures(history: list[Turn]) -> int:
    """Bot turns in a row, latest last, that could not answer."""
    count = 0
    for turn in reversed(history):
        if turn.role != "bot":
            continue
        if turn.action == "handoff" and turn.reason_code == "out_of_scope":
            count += 1
        else:
            break
    return count


async def _given(text: str) -> AsyncGenerator[str, None]:
    """A reply logged before, given again as it was."""
    yield text


def _sentiment_versions(live: LiveModels) -> dict[str, str]:
    versions = {"sentiment": live.sentiment.name}
    if "sentiment" in live.versions:
        versions["sentiment_version"] = live.versions["sentiment"]
    return versions


def _canned(decision: Decision) -> str:
    if decision.action == "clarify":
        return ask_which([h.entry.question for h in decision.options])
    return HANDOFF.get(decision.reason, OUT_OF_SCOPE)
