"""The evaluation engine releases what it loads."""

from __future__ import annotations

import pytest

from engine.engine import EngineConfig
from engine.evaluation import evaluation_engine
from engine.generators import GENERATORS, GeneratorConfig
from retrieval import KnowledgeBase
from tests.fakes import ScriptedGenerator


class ClosableGenerator(ScriptedGenerator):
    """A scripted generator that, like vLLM's, holds a model until `close()`."""

    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


@pytest.fixture
def closable(monkeypatch: pytest.MonkeyPatch) -> list[ClosableGenerator]:
    """Every generator the "closable" backend loads, in order."""
    loaded: list[ClosableGenerator] = []

    def load(config: GeneratorConfig) -> ClosableGenerator:
        loaded.append(ClosableGenerator())
        return loaded[-1]

    monkeypatch.setitem(GENERATORS, "closable", load)
    return loaded


async def test_the_generator_is_closed_before_the_next_one_loads(
    sample_kb: KnowledgeBase, closable: list[ClosableGenerator]
) -> None:
    config = GeneratorConfig(backend="closable")
    async with evaluation_engine(sample_kb, config, EngineConfig()) as engine:
        conversation = await engine.conversation("evaluation", "q0", new=True)
        async for _ in engine.reply(conversation, "How do I reset my password?"):
            pass
        assert closable[0].closes == 0
    assert closable[0].closes == 1
    async with evaluation_engine(sample_kb, config, EngineConfig()):
        assert [g.closes for g in closable] == [1, 0]
    assert [g.closes for g in closable] == [1, 1]


async def test_the_generator_is_closed_when_the_evaluation_fails(
    sample_kb: KnowledgeBase, closable: list[ClosableGenerator]
) -> None:
    with pytest.raises(RuntimeError, match="broke"):
        async with evaluation_engine(
            sample_kb, GeneratorConfig(backend="closable"), EngineConfig()
        ):
            raise RuntimeError("broke")
    assert closable[0].closes == 1
