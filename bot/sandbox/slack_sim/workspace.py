"""The workspace's people and conversations: users, channels, DMs with the bot, messages, ephemerals."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.clock import Clock
from bot.sandbox.slack_sim.config import SimConfig
from bot.sandbox.slack_sim.entities import SimChannel, SimMessage, SimSlackUser
from bot.sandbox.slack_sim.ids import IdMaker


class Workspace:
    def __init__(self, config: SimConfig, clock: Clock, ids: IdMaker) -> None:
        self.config = config
        self._clock = clock
        self._ids = ids
        self.users: dict[str, SimSlackUser] = {}
        self.channels: dict[str, SimChannel] = {}
        self.usergroups: dict[str, list[str]] = {}
        self._dm_by_user: dict[str, str] = {}
        self._messages: dict[str, list[SimMessage]] = {}
        self._ephemerals: list[SimMessage] = []
        self.users[config.bot_user_id] = SimSlackUser(
            id=config.bot_user_id,
            name=config.bot_name,
            team_id=config.team_id,
            real_name=config.bot_name,
            is_bot=True,
            bot_id=config.bot_id,
            enterprise_id=config.enterprise_id,
        )

    # --- people and conversations -------------------------------------------------------------

    def add_user(self, user: SimSlackUser) -> SimSlackUser:
        self.users[user.id] = user
        return user

    def add_channel(self, channel: SimChannel) -> SimChannel:
        self.channels[channel.id] = channel
        self._messages.setdefault(channel.id, [])
        return channel

    def dm_with(self, user_id: str) -> str | None:
        return self._dm_by_user.get(user_id)

    def open_dm(self, user_id: str) -> tuple[SimChannel, bool]:
        """The bot's DM with a user, created on first use; True when it already existed."""
        existing = self._dm_by_user.get(user_id)
        if existing:
            return self.channels[existing], True
        channel = SimChannel(
            id=self._ids.conversation("D"),
            name=user_id,
            is_private=True,
            members={user_id, self.config.bot_user_id},
            created=int(self._clock.now().timestamp()),
            is_im=True,
            im_user=user_id,
        )
        self._dm_by_user[user_id] = channel.id
        return self.add_channel(channel), False

    def channel_by_name(self, name: str) -> SimChannel | None:
        return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def bot_is_member(self, channel: SimChannel) -> bool:
        return self.config.bot_user_id in channel.members

    # --- messages -----------------------------------------------------------------------------

    def post(self, channel_id: str, *, user: str, text: str, **fields: Any) -> SimMessage:
        message = SimMessage(channel=channel_id, ts=self._ids.ts(), text=text, user=user, **fields)
        self._messages.setdefault(channel_id, []).append(message)
        return message

    def find(self, channel_id: str, ts: str) -> SimMessage | None:
        return next((m for m in self._messages.get(channel_id, []) if m.ts == ts), None)

    def replace(self, message: SimMessage, **changes: Any) -> SimMessage:
        updated = replace(message, **changes)
        items = self._messages[message.channel]
        items[items.index(message)] = updated
        return updated

    def delete(self, message: SimMessage) -> None:
        self._messages[message.channel].remove(message)

    def messages(self, channel_id: str) -> list[SimMessage]:
        return list(self._messages.get(channel_id, []))

    def all_messages(self) -> list[SimMessage]:
        return [m for items in self._messages.values() for m in items]

    # --- ephemerals ---------------------------------------------------------------------------

    def post_ephemeral(self, channel_id: str, user_id: str, *, text: str, **fields: Any) -> SimMessage:
        message = SimMessage(
            channel=channel_id,
            ts=self._ids.ts(),
            text=text,
            user=self.config.bot_user_id,
            team=self.config.team_id,
            bot_id=self.config.bot_id,
            app_id=self.config.app_id,
            ephemeral_to=user_id,
            **fields,
        )
        self._ephemerals.append(message)
        return message

    def ephemerals(self, channel_id: str | None = None, user_id: str | None = None) -> list[SimMessage]:
        return [
            m
            for m in self._ephemerals
            if (channel_id is None or m.channel == channel_id)
            and (user_id is None or m.ephemeral_to == user_id)
        ]

    def find_ephemeral(self, channel_id: str, ts: str) -> SimMessage | None:
        return next((m for m in self._ephemerals if m.channel == channel_id and m.ts == ts), None)

    def replace_ephemeral(self, message: SimMessage, **changes: Any) -> SimMessage:
        updated = replace(message, **changes)
        self._ephemerals[self._ephemerals.index(message)] = updated
        return updated

    def delete_ephemeral(self, message: SimMessage) -> None:
        self._ephemerals.remove(message)
