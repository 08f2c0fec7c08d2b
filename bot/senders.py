"""Who wrote a message: a person, or a chat speaking for itself (channels, anonymous admins).

Telegram leaves `from` out of some messages, and fills it with a placeholder account for others
(a channel's post forwarded into its discussion group, a group's anonymous administrators). Such
senders are told apart by the chat they speak for, and an anonymous admin also by their
signature, so they never share a conversation with each other or with a person.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.types import Message, User

from bot.desk import CHANNEL

# Conversations of chats speaking for themselves: their ids are chat ids, not user ids.
CHAT_CHANNEL = "telegram-chat"
# Accounts Telegram puts in `from` for messages really sent by a chat.
_PLACEHOLDERS = frozenset(
    {
        777000,  # Telegram: a channel post forwarded automatically into its discussion group
        1087968824,  # GroupAnonymousBot: an anonymous group administrator
        136817688,  # Channel_Bot: a member writing as a channel
    }
)


@dataclass(frozen=True, slots=True)
class Customer:
    """Whose conversation a message belongs to: `channel` and `external_id` in the log.

    `user` is the person when Telegram names one; buttons and hand-overs need a person.
    """

    channel: str
    external_id: str
    name: str
    language_code: str | None = None
    user: User | None = None

    @property
    def key(self) -> str:
        """One string per customer across both channels, for binding buttons to their owner."""
        return self.external_id if self.user is not None else f"chat:{self.external_id}"


def customer_of(message: Message) -> Customer | None:
    """The customer who wrote `message`; None when Telegram names nobody at all."""
    user = message.from_user
    chat = message.sender_chat
    if chat is not None and (user is None or user.id in _PLACEHOLDERS):
        signature = message.author_signature
        external = f"{chat.id}/{signature}" if signature else str(chat.id)
        name = chat.title or chat.username or signature or ""
        return Customer(CHAT_CHANNEL, external, name)
    if user is None or user.id in _PLACEHOLDERS:
        return None
    return Customer(CHANNEL, str(user.id), user.first_name, user.language_code, user)


def customer_for_press(user: User) -> Customer:
    """The customer pressing a button: always a person, as Telegram names who pressed."""
    return Customer(CHANNEL, str(user.id), user.first_name, user.language_code, user)
