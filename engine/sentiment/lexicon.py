"""The default sentiment model: word lists and support-desk cues, no training and no downloads.

English text is scored by VADER (MIT; its lexicon ships inside the vaderSentiment wheel), Chinese
text by a built-in word list with negation and "but" handling. Both then move by the cues a
support desk cares about: profanity, shouting, refund or legal threats, angry emoji.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version

from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
    SentimentIntensityAnalyzer,
)

from engine.sentiment.base import Sentiment, SentimentConfig

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
# Handles and links say nothing about mood, and VADER scores some airline handles ("@united").
_NOISE = re.compile(r"@\w+|https?://\S+|www\.\S+")
# The version is read once: importlib.metadata scans the installed packages on every call.
_NAME = f"lexicon-vader-{version('vaderSentiment')}+zh-2"

# How far each cue moves the score; the sign says which way.
SIGNAL_WEIGHTS: dict[str, float] = {
    "legal-threat": -0.5,
    "chargeback": -0.4,
    "profanity": -0.35,
    "complaint": -0.35,
    "manager-request": -0.3,
    "negative-emoji": -0.3,
    "refund-demand": -0.25,
    "service-failure": -0.3,
    "cancellation": -0.2,
    "shouting": -0.2,
    "repeated-punctuation": -0.15,
    "positive-emoji": 0.2,
    # Words of anger at the company ("ridiculous", "useless", "scam", "fed up"): VADER already
    # weighs them, so the cue moves nothing itself; it tells anger at the service apart from
    # a sad or worried topic, which is what hands a conversation over (SentimentTrend).
    "anger": 0.0,
}

_EN = re.IGNORECASE
# Each cue: an English pattern (matched case-insensitively) and Chinese words.
_CUES: dict[str, tuple[re.Pattern[str], tuple[str, ...]]] = {
    "legal-threat": (
        re.compile(
            r"\b(lawyers?|attorneys?|sue|suing|lawsuit|legal action|small claims|"
            r"(see|take) \w+ (to|in) court|"
            r"better business bureau|bbb|ombudsman|trading standards)\b",
            _EN,
        ),
        ("律师", "起诉", "法院", "打官司", "消协", "消费者协会", "12315", "工商局", "报警"),
    ),
    "chargeback": (
        re.compile(
            r"\b(charge ?backs?|dispute (the|this|that) (charge|payment)|call my bank)\b", _EN
        ),
        ("拒付", "银行申诉"),
    ),
    "profanity": (
        re.compile(
            r"\b(f+u+c*k+\w*|fck\w*|f\*+k\w*|wtf|stfu|shit\w*|bullshit|crap|damn\w*|goddam\w*|"
            r"asshole\w*|bitch\w*|bastards?|piss(ed)?|dick(head)?s?|motherf\w+|screw you)\b",
            _EN,
        ),
        (
            "他妈",
            "妈的",
            "tmd",
            "卧槽",
            "我靠",
            "傻逼",
            "傻b",
            "煞笔",
            "操你",
            "尼玛",
            "狗屎",
            "王八蛋",
            "混蛋",
            "滚蛋",
        ),
    ),
    "complaint": (
        re.compile(
            r"\b(complain(t|ts|ing|ed)?|file a claim|report (you|this|your)|"
            r"(one|1)[- ]star|bad review)\b",
            _EN,
        ),
        ("投诉", "举报", "差评", "曝光", "维权"),
    ),
    "manager-request": (
        re.compile(
            r"\b((speak|talk|speaking|talking|put me through) (to|with) (a |an |the |your )?"
            r"(manager|supervisor|human|real person|person|someone|agent|representative)|"
            r"(manager|supervisor) now|human agent|real person|live agent)\b",
            _EN,
        ),
        ("转人工", "人工客服", "找人工", "你们经理", "你们领导", "负责人", "主管"),
    ),
    "refund-demand": (
        re.compile(
            r"\b(refund(s|ed|ing)?|money back|reimburse(ment|d)?|compensat(e|ion|ed))\b", _EN
        ),
        ("退款", "退钱", "退费", "赔偿", "赔钱", "返还"),
    ),
    "service-failure": (
        re.compile(
            r"\b(delay(ed|s)?|late flights?|(is|was|are|were|arrived|running|so|too|very) "
            r"(late|slow)|stuck|stranded|cancell?ed|missed|on hold|hung up|"
            r"never (arrived|received|came|got|showed up|answered|again)|nobody|no (one|response|"
            r"reply|answer|help)|still (waiting|no|not|nothing|haven't|hasn't|can't)|"
            r"(not|isn't|doesn't|does not|didn't|did not|won't|can't|cannot) (work|working|help|"
            r"arrive|arrived|get through)|charged? twice|double charged|not getting|"
            r"(i was|we were|they) told|sitting (here|on|at|in)|"
            r"(i've|i have|we've|we have) been (waiting|trying|calling)|"
            r"(\d+|two|three|four|five|six|several|many) (hours?|hrs?|days?|weeks?))\b",
            _EN,
        ),
        ("催单", "催了", "延误", "迟迟", "才送到", "才到", "还没到", "还没送", "没送到", "没收到"),
    ),
    "anger": (
        re.compile(
            r"\b(angry|furious|livid|outraged|fuming|pissed off|mad at (you|this|your)|fed up|"
            r"sick (and tired )?of|tired of (this|you|your|waiting)|frustrat(ed|ing|ion)|"
            r"annoy(ed|ing)|irritat(ed|ing)|infuriat(ed|ing)|outrageous|ridiculous|absurd|"
            r"unacceptable|inexcusable|disgrace(ful)?|disgusting|appalling|pathetic|useless|"
            r"incompetent|worst|terrible (service|company|bank|app|support|experience)|"
            r"horrible (service|company|bank|app|support|experience)|scam(s|med|mers?)?|"
            r"rip[- ]?off|ripped (me )?off|cheat(ed|ing|ers?)?|liars?|lying to|lied to|"
            r"(this|that) is a joke|shame on you|how dare|hate (you|this|your)|disappointed|"
            r"disappointing|not happy|unhappy|ugh+|"
            r"never (again|(use|using|buy|buying|fly|flying|order|ordering) (you|this|your))|"
            r"what the hell|are you (kidding|serious|joking))\b|#\w*fail|[\U0001F621\U0001F620"
            r"\U0001F92C\U0001F624\U0001F4A2\U0001F595]",
            _EN,
        ),
        (
            "气死",
            "愤怒",
            "生气",
            "火大",
            "恼火",
            "垃圾",
            "骗子",
            "骗人",
            "坑人",
            "坑爹",
            "欺骗",
            "忽悠",
            "无语",
            "受不了",
            "忍无可忍",
            "太过分",
            "过分了",
            "什么破",
            "破玩意",
            "恶心",
            "再也不",
            "不会再",
            "无耻",
            "黑店",
            "欺诈",
            "耍我",
            "烦死",
        ),
    ),
    "cancellation": (
        re.compile(
            r"\b((cancel|cancelling|canceling) (my|the|our|this)|unsubscribe|"
            r"(close|delete|terminate) my account)\b",
            _EN,
        ),
        ("取消订单", "注销", "退订", "销户"),
    ),
}

# Cues that name what the customer wants rather than how they feel: "how do I get a refund?" is
# an ordinary question. In a question or a short request ("cancel my order") they count only
# alongside other negative evidence or a demand; in a longer statement they still count.
_TOPIC_CUES = frozenset({"refund-demand", "cancellation"})
_DEMAND = re.compile(
    r"\b(now|immediately|asap|right away|at once|today|demand(s|ing)?|insist|or else|"
    r"give me|i expect|i deserve)\b|马上|立刻|立即|赶紧|必须|给我",
    _EN,
)
_QUESTION = re.compile(
    r"[?？]|^\s*(how|what|when|where|which|who|can|could|do|does|is|are|will|would|may|should)\b"
    r"|怎么|怎样|如何|能不能|可不可以|可以.*吗|吗$",
    _EN,
)
# Support verbs VADER reads as negative; the customer is only naming what they want done.
_VADER_NEUTRAL = ("cancel",)
# What goes wrong with orders, items, payments and accounts: VADER reads these as strongly
# negative ("dead" -3.3, "broken" -2.1), so one calm report such as "my phone died, how do I
# log in?" scored past the escalation line and was handed to a person instead of answered.
# They keep PROBLEM_WEIGHT of their weight: a report stays "negative", anger needs more.
_VADER_PROBLEM = frozenset(
    [
        "broke",
        "broken",
        "damage",
        "damaged",
        "dead",
        "delay",
        "delayed",
        "die",
        "died",
        "error",
        "fail",
        "failed",
        "fraud",
        "hacked",
        "lose",
        "lost",
        "missing",
        "problem",
        "stolen",
        "steal",
        "stuck",
        "wrong",
    ]
)
PROBLEM_WEIGHT = 0.4

_NEGATIVE_EMOJI = frozenset("😡😠🤬😤👎💩🙄😒🤮😞😢😭😩😫😣😖💢")
_POSITIVE_EMOJI = frozenset("😊😀😃😄😁🙂😍🥰👍🙏💯🎉❤👏🤩😘")
_PUNCTUATION_RUN = re.compile(r"[!?！？]{2,}")

# Chinese words by weight. Greedy longest match, so "不错" is read before "错" and a
# zero-weight entry such as "不好意思" (a polite "excuse me") shields the "不好" inside it.
_ZH_LEXICON: dict[float, str] = {
    0.0: """不好意思 差不多 差点 没问题 不客气 不用谢 不要紧 好不好 对不起 一般来说 一般情况
        慢慢 慢走""",
    -1.0: """差 差劲 糟糕 烂 难吃 难喝 难用 难闻 难看 失望 生气 不满 不好 不行 不爽 不值 不舒服
        慢 不新鲜 不干净 不卫生 不满意 不专业 不耐烦 不负责 不靠谱 不合理 太慢 很慢 好慢 超慢 慢死
        太久 超时 迟到 晚到 晚了 等了 凉了 冷了 少送 漏送 送错 错了 洒了 撒了 漏了 脏 吵 臭 异味
        霉 发霉 蟑螂 头发 虫子 太咸 太辣 太油 太淡 没味 变质 馊 拉肚子 敷衍 后悔 无语 郁闷 故障
        坏了 不能用 没用 没反应 不理 不回复 不回 没人管 欺骗 忽悠 上当 太贵 不值得 一般 凑合 勉强
        遗憾 可惜 简陋 陈旧 破旧 噪音 隔音差 不方便 冷漠 粗鲁 怠慢 找不到 送不到 半天 失败 报错
        扣钱 乱扣 多收 不见了 丢了 难受 太差 很差 真差 服务差 态度差 质量差 毛病 缺点 不足 凉的
        坨了 夹生 没熟 不熟 太少 太小 太长 太硬 太腻 油腻 呵呵 唉 根本 居然 竟然 不敢 伤不起 延误
        失误""",
    -2.0: """垃圾 恶心 骗子 骗人 坑人 坑爹 黑店 欺诈 恶劣 可恶 讨厌 气死 愤怒 最差 太烂 再也不
        不会再 烦死 受不了 忍无可忍 骗钱 诈骗 霸王条款 无良 无耻 反胃 店大欺客""",
    1.0: """好吃 好喝 好用 不错 很好 挺好 真好 蛮好 太好了 满意 喜欢 赞 棒 很棒 好评 推荐 感谢
        谢谢 辛苦 很快 挺快 蛮快 超快 速度快 送餐快 及时 准时 新鲜 干净 舒适 舒服 方便 热情
        周到 贴心 耐心 实惠 划算 超值 物美价廉 给力 优秀 专业 满分 五星 安静 宽敞 漂亮
        美味 可口 惊喜 愉快 开心 高兴 值得 靠谱 下次还 还会再 会再来 点赞 解决了 搞定""",
    2.0: "非常好 非常满意 特别好 超级好 太棒了 完美 强烈推荐 五星好评",
}
_ZH_WORDS = {word: weight for weight, words in _ZH_LEXICON.items() for word in words.split()}
_ZH_LONGEST = max(map(len, _ZH_WORDS))
_ZH_NEGATORS = (
    "不",
    "没",
    "没有",
    "木有",
    "无",
    "别",
    "未",
    "不太",
    "不够",
    "不是",
    "并不",
    "不怎么",
)
_ZH_CONTRAST = re.compile(r"但是|可是|不过|然而|但")


class LexiconSentiment:
    """Word-list sentiment for English (VADER) and Chinese, plus support-desk cues."""

    def __init__(self, config: SentimentConfig | None = None) -> None:
        self._config = config or SentimentConfig()

    @property
    def name(self) -> str:
        return _NAME

    def score(self, text: str) -> Sentiment:
        text = text.strip()
        if not text:
            return Sentiment("neutral", 0.0)
        base = _base_score(text)
        signals = detect_signals(text)
        upset = base < 0 or bool(_DEMAND.search(text)) or not _is_request(text)
        upset = upset or any(SIGNAL_WEIGHTS[s] < 0 and s not in _TOPIC_CUES for s in signals)
        total = base + sum(SIGNAL_WEIGHTS[s] for s in signals if upset or s not in _TOPIC_CUES)
        if base <= self._config.negative_below:
            signals = ("negative-wording", *signals)
        elif base >= self._config.positive_above:
            signals = ("positive-wording", *signals)
        value = round(max(-1.0, min(1.0, total)), 4)
        if (
            "service-failure" in signals
            and value <= self._config.strong_negative
            and ("repeated-punctuation" in signals or not _is_request(text))
        ):
            # Not a calm question about a failure but a strongly negative account of one.
            signals = (*signals, "frustration")
        return Sentiment(self._config.label_for(value), value, signals)

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        return [self.score(text) for text in texts]


def detect_signals(text: str) -> tuple[str, ...]:
    """The support-desk cues found in `text`, strongest first (see SIGNAL_WEIGHTS)."""
    lowered = text.lower()
    found = {
        name
        for name, (pattern, words) in _CUES.items()
        if pattern.search(text) or any(word in lowered for word in words)
    }
    if _is_shouting(_NOISE.sub(" ", text)):
        found.add("shouting")
    if _PUNCTUATION_RUN.search(text):
        found.add("repeated-punctuation")
    if any(ch in _NEGATIVE_EMOJI for ch in text):
        found.add("negative-emoji")
    if any(ch in _POSITIVE_EMOJI for ch in text):
        found.add("positive-emoji")
    return tuple(name for name in SIGNAL_WEIGHTS if name in found)


def _is_request(text: str) -> bool:
    # A question, or a few words such as "refund status"; Chinese counts about two characters
    # to a word.
    words = len(_LATIN_WORD.findall(text)) + len(_HAN.findall(text)) / 2
    return bool(_QUESTION.search(text)) or words <= 4


def _is_shouting(text: str) -> bool:
    # Mostly capitals, or three capitalised words in a row; an acronym ("VPN", "ASAP") is not.
    words = [w for w in _LATIN_WORD.findall(text) if len(w) >= 2]
    caps = "".join("U" if w.isupper() else "l" for w in words)
    return caps.count("U") >= 2 and (caps.count("U") >= 0.6 * len(words) or "UUU" in caps)


def _base_score(text: str) -> float:
    # Mixed text is scored in both languages, weighted by how much of each it holds.
    han = len(_HAN.findall(text))
    cleaned = _NOISE.sub(" ", text)
    latin = len(_LATIN_WORD.findall(cleaned))
    if not han:
        return _english_score(cleaned)
    if not latin:
        return chinese_score(text)
    # A Chinese character carries about half as much as an English word.
    zh_weight, en_weight = han / 2, float(latin)
    return (zh_weight * chinese_score(text) + en_weight * _english_score(cleaned)) / (
        zh_weight + en_weight
    )


@cache
def _vader() -> SentimentIntensityAnalyzer:
    analyzer = SentimentIntensityAnalyzer()
    for word in _VADER_NEUTRAL:
        analyzer.lexicon.pop(word, None)
    for word in _VADER_PROBLEM:
        if word in analyzer.lexicon:
            analyzer.lexicon[word] *= PROBLEM_WEIGHT
    return analyzer


def _english_score(text: str) -> float:
    return float(_vader().polarity_scores(text)["compound"])


def chinese_score(text: str) -> float:
    """A score in [-1, 1] from the built-in Chinese word list; 0 when no word matches."""
    cut = max((m.end() for m in _ZH_CONTRAST.finditer(text)), default=0)
    total = 0.0
    i = last_end = 0
    while i < len(text):
        for size in range(min(_ZH_LONGEST, len(text) - i), 0, -1):
            weight = _ZH_WORDS.get(text[i : i + size])
            if weight is not None:
                break
        else:
            i += 1
            continue
        before = text[last_end:i]
        if weight and any(before.endswith(neg) for neg in _ZH_NEGATORS):
            # "不慢" is mildly good, "不好吃" bad: a negated word flips and weakens.
            weight = -0.5 * weight
        if cut:
            # As VADER does with "but": the clause after a contrast counts most.
            weight *= 1.5 if i >= cut else 0.5
        total += weight
        i += size
        last_end = i
    # VADER's normalisation, scaled for weights of 1-2 per word.
    return total / math.sqrt(total * total + 4.0) if total else 0.0
