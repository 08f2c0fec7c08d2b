"""Replace personal data in message text with tags before it is stored.

E-mail addresses become `[email]`, IBANs that pass the mod-97 check `[iban]`, card numbers that
pass the Luhn check `[card]`, and phone numbers `[phone]`. A phone number needs a leading `+` or a
typical grouping ("(555) 123-4567", "020 7946 0958"), so that order numbers stay readable; an
unformatted national number such as "5551234567" is indistinguishable from one and is kept.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")

# Country code, check digits, then 11-30 letters or digits: written solid or in groups of four.
_IBAN = re.compile(
    r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b",
    re.IGNORECASE,
)

# 13-19 digits with single spaces or dashes between them; never part of a longer number.
_CARD = re.compile(r"(?<![\w+])(?<!\d[ -])(?:\d[ -]?){12,18}\d(?![ -]?\d)(?!\w)")

_SEP = r"[ .-]"
# "+" and a country code, then groups of digits (an area code may sit in parentheses).
_INTERNATIONAL = re.compile(
    rf"(?<![\w+])\+\d{{1,3}}(?:{_SEP}?(?:\(\d{{1,5}}\)|\d{{1,5}})){{1,6}}(?!{_SEP}?\d)(?!\w)"
)
# An area code, plain or in parentheses, then one to three more groups.
_NATIONAL = re.compile(
    rf"(?<![\w+])(?<!\d{_SEP})(?:\((?P<paren>\d{{2,5}})\){_SEP}?|(?P<area>\d{{2,5}}){_SEP})"
    rf"\d{{2,8}}(?:{_SEP}\d{{2,8}}){{0,2}}(?!{_SEP}?\d)(?!\w)"
)


def redact(text: str) -> str:
    """`text` with e-mail addresses, IBANs, card and phone numbers replaced by tags."""
    text = _EMAIL.sub("[email]", text)
    text = _IBAN.sub(_iban, text)
    text = _CARD.sub(_card, text)
    text = _INTERNATIONAL.sub(_international, text)
    return _NATIONAL.sub(_national, text)


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check that payment card numbers carry."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """Whether `iban` (spaces allowed, any case) passes the ISO 13616 mod-97 check."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum() or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _iban(match: re.Match[str]) -> str:
    return "[iban]" if iban_valid(match[0]) else match[0]


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match[0])
    return "[card]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match[0]


def _digit_count(text: str) -> int:
    return sum(char.isdigit() for char in text)


def _international(match: re.Match[str]) -> str:
    # E.164 numbers have at most 15 digits; fewer than 8 is no full number.
    return "[phone]" if 8 <= _digit_count(match[0]) <= 15 else match[0]


def _national(match: re.Match[str]) -> str:
    number = match[0]
    groups = len(re.findall(r"\d+", number))
    # "030 1234567" starts with a trunk 0; "2024 12345678" (a year and an order) does not.
    typical = match["paren"] is not None or groups >= 3 or number.startswith("0")
    return "[phone]" if typical and 9 <= _digit_count(number) <= 12 else number
