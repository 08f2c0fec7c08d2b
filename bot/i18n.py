"""Interface languages through aiogram's i18n: .po catalogues compiled in memory at start-up.

aiogram's `I18n` reads compiled .mo files; compiling the committed .po sources when the bot
starts keeps binaries out of the repository and needs no extra tool (Babel, msgfmt).
Its `SimpleI18nMiddleware` needs Babel too, so `LanguageMiddleware` picks the language itself.
"""

from __future__ import annotations

import ast
import gettext
import io
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware

LOCALES = Path(__file__).parent / "locales"
DOMAIN = "messages"
_MO_MAGIC = 0x950412DE


def load_i18n(languages: Sequence[str], path: Path = LOCALES) -> I18n:
    """aiogram's I18n with the catalogues `path`/<language>.po; the first language is the default.

    English needs no catalogue: the texts in the code are English.
    """
    if not languages:
        raise ValueError("[bot] languages must name at least one language")
    i18n = I18n(path=path, default_locale=languages[0], domain=DOMAIN)
    # I18n finds compiled <locale>/LC_MESSAGES/*.mo folders; the sources are compiled here.
    i18n.locales = {
        po.stem: gettext.GNUTranslations(io.BytesIO(compile_catalogue(po.read_text("utf-8"))))
        for po in sorted(path.glob("*.po"))
        if po.stem in languages
    }
    return i18n


class LanguageMiddleware(I18nMiddleware):
    """Speaks the customer's Telegram language when it is configured, else the default one."""

    def __init__(self, i18n: I18n, languages: Sequence[str]) -> None:
        super().__init__(i18n)
        self._languages = tuple(languages)

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user: User | None = data.get("event_from_user")
        return pick_language(user.language_code if user else None, self._languages)


def pick_language(code: str | None, languages: Sequence[str]) -> str:
    """The configured language for a Telegram language code such as "zh-hans" or "en"."""
    base = (code or "").replace("_", "-").split("-")[0].lower()
    return base if base in languages else languages[0]


def compile_catalogue(source: str) -> bytes:
    """A .po catalogue (msgid/msgstr pairs, no plurals) as GNU .mo bytes."""
    messages = {key: value for key, value in _parse_po(source).items() if value}
    keys = sorted(messages)
    ids = strs = b""
    entries: list[tuple[int, int, int, int]] = []
    for key in keys:
        raw_id, raw_str = key.encode(), messages[key].encode()
        entries.append((len(ids), len(raw_id), len(strs), len(raw_str)))
        ids += raw_id + b"\0"
        strs += raw_str + b"\0"
    header_size = 7 * 4
    id_start = header_size + 16 * len(keys)
    str_start = id_start + len(ids)
    table = [v for off, n, _, _ in entries for v in (n, off + id_start)]
    table += [v for _, _, off, n in entries for v in (n, off + str_start)]
    head = struct.pack(
        "<7I", _MO_MAGIC, 0, len(keys), header_size, header_size + 8 * len(keys), 0, 0
    )
    return head + struct.pack(f"<{len(table)}I", *table) + ids + strs


def _parse_po(source: str) -> dict[str, str]:
    messages: dict[str, str] = {}
    field: str | None = None
    current: dict[str, str] = {}

    def flush() -> None:
        if "msgid" in current:
            messages[current["msgid"]] = current.get("msgstr", "")
        current.clear()

    for number, line in enumerate(source.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            field, line = "msgid", line[len("msgid ") :]
        elif line.startswith("msgstr "):
            field, line = "msgstr", line[len("msgstr ") :]
        elif not line.startswith('"') or field is None:
            raise ValueError(f"line {number}: cannot read {line!r}")
        current[field] = current.get(field, "") + ast.literal_eval(line)
    flush()
    return messages
