"""Personal data in message text is replaced by tags; look-alikes such as order numbers are kept."""

from __future__ import annotations

import pytest

from engine.log import redact
from engine.log.redact import iban_valid, luhn_valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at john.doe+tag@example.co.uk please", "mail me at [email] please"),
        ("Email: Müller@firma.de.", "Email: [email]."),
        ("a@b.io,c.d@e-f.org", "[email],[email]"),
    ],
)
def test_email_addresses_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text", ["write to support at example dot com", "user@localhost", "@shop_bot", "foo@bar"]
)
def test_things_that_are_not_email_addresses_are_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +49 30 1234567", "call [phone]"),
        ("+1 (555) 123-4567", "[phone]"),
        ("UK: +44 20 7946 0958.", "UK: [phone]."),
        ("+14155552671", "[phone]"),
        ("+7-912-345-67-89 after six", "[phone] after six"),
        ("+49 (0)30 1234 5678", "[phone]"),
        ("(555) 123-4567", "[phone]"),
        ("ring 555-123-4567 or 555.123.4568", "ring [phone] or [phone]"),
        ("020 7946 0958", "[phone]"),
        ("030 1234567", "[phone]"),
    ],
)
def test_phone_numbers_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 12345678",
        "order #12345678 placed 2024-01-15",
        "in 2024 12345678",
        "ticket 123-4567",
        "room 12-34, version 1.2.3",
        "total 1 299.00 EUR at 10:30 on 15.01.2024",
        "+12 degrees",
        "5551234567",  # an unformatted national number looks like an order number: kept
        "+1 234 567 890 123 456 789 012",  # longer than any E.164 number
    ],
)
def test_numbers_that_are_not_phone_numbers_are_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 exp 12/27", "card [card] exp 12/27"),
        ("4111-1111-1111-1111", "[card]"),
        ("5500000000000004.", "[card]."),
        ("amex 378282246310005", "amex [card]"),
        ("visa 4222222222222", "visa [card]"),
    ],
)
def test_card_numbers_passing_luhn_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "tracking 1234 5678 9012 3456",  # fails the Luhn check
        "4111 1111 1111 1112",
        "serial 4111 1111 1111 1111 1111 1",  # 21 digits: longer than any card
        "id 411111111111",  # 12 digits
    ],
)
def test_numbers_failing_the_card_rules_are_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [iban] please"),
        ("iban de89370400440532013000.", "iban [iban]."),
        ("GB82 WEST 1234 5698 7654 32", "[iban]"),
        ("NL91ABNA0417164300", "[iban]"),
    ],
)
def test_ibans_passing_mod_97_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    ["DE89 3704 0044 0532 0130 01 (typo)", "GB82WEST12345698765433", "XX00 ABCD EFGH IJKL"],
)
def test_strings_failing_the_iban_check_are_kept(text: str) -> None:
    assert redact(text) == text


def test_a_message_with_every_kind_keeps_the_rest() -> None:
    text = (
        "Hi, order 12345678 never came. Reach me on +44 20 7946 0958 or jane@example.com; "
        "refund to DE89 3704 0044 0532 0130 00, not card 4111 1111 1111 1111."
    )
    assert redact(text) == (
        "Hi, order 12345678 never came. Reach me on [phone] or [email]; "
        "refund to [iban], not card [card]."
    )


def test_the_checksums() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("gb82 west 1234 5698 7654 32")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")
    assert not iban_valid("DE89")
