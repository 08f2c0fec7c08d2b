"""Interface texts: the customer's language, and a complete Chinese catalogue."""

from __future__ import annotations

import ast
import gettext
import io

import pytest

from bot.app import COMMANDS
from bot.i18n import compile_catalogue, load_i18n, pick_language
from engine.engine import HANDOFF, OUT_OF_SCOPE
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("code", "expected"),
    [("zh-hans", "zh"), ("zh", "zh"), ("en-GB", "en"), ("de", "en"), (None, "en"), ("", "en")],
)
def test_language_follows_the_telegram_language_code(code: str | None, expected: str) -> None:
    assert pick_language(code, ("en", "zh")) == expected


def test_compiled_catalogue_reads_back_with_gettext() -> None:
    source = (
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Hello\\n"\n"again \\"x\\""\nmsgstr "你好\\n"\n"再次 \\"x\\""\n'
    )
    translations = gettext.GNUTranslations(io.BytesIO(compile_catalogue(source)))
    assert translations.gettext('Hello\nagain "x"') == '你好\n再次 "x"'


def _interface_texts() -> set[str]:
    texts = {d for _, d in COMMANDS} | {OUT_OF_SCOPE, *HANDOFF.values()}
    for path in (ROOT / "bot").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                texts.add(str(node.args[0].value))
    return texts


def test_every_interface_text_has_a_chinese_translation() -> None:
    i18n = load_i18n(("en", "zh"))
    texts = _interface_texts()
    assert len(texts) > 20
    missing = [t for t in texts if i18n.gettext(t, locale="zh") == t]
    assert not missing
    assert all(i18n.gettext(t, locale="en") == t for t in texts)
