"""Setting up the workspace: people, channels and user groups."""

from __future__ import annotations

from collections.abc import Iterable

from bot.sandbox.slack_sim.core import SimCore
from bot.sandbox.slack_sim.entities import SimChannel, SimSlackUser, SimUsageError


class PeopleMixin:
    core: SimCore

    def add_user(
        self,
        id: str,
        name: str,
        *,
        real_name: str | None = None,
        email: str | None = None,
        tz: str = "Europe/London",
        is_admin: bool = False,
        is_owner: bool = False,
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        deleted: bool = False,
        is_bot: bool = False,
        team_id: str | None = None,
        enterprise_id: str | None = None,
    ) -> SimSlackUser:
        """A member; another `team_id` makes them an external (Slack Connect) user."""
        cfg = self.core.config
        user = SimSlackUser(
            id=id,
            name=name,
            team_id=team_id or cfg.team_id,
            real_name=real_name,
            email=email,
            tz=tz,
            is_admin=is_admin,
            is_owner=is_owner,
            is_restricted=is_restricted,
            is_ultra_restricted=is_ultra_restricted,
            deleted=deleted,
            is_bot=is_bot,
            enterprise_id=enterprise_id if enterprise_id is not None else cfg.enterprise_id,
        )
        return self.core.workspace.add_user(user)

    def add_channel(
        self, id: str, name: str, *, is_private: bool = True, members: Iterable[str] = ()
    ) -> SimChannel:
        """A channel; put the bot's user id in `members` for the bot to be in it."""
        if id[:1] not in ("C", "G"):
            raise SimUsageError("channel ids start with C (or G for old private channels)")
        channel = SimChannel(
            id=id, name=name, is_private=is_private, members=set(members), created=self.core.now_epoch()
        )
        return self.core.workspace.add_channel(channel)

    def add_usergroup(self, id: str, members: Iterable[str]) -> None:
        self.core.workspace.usergroups[id] = list(members)

    def user(self, user_id: str) -> SimSlackUser:
        user = self.core.workspace.users.get(user_id)
        if user is None:
            raise SimUsageError(f"no user {user_id}: add_user() first")
        return user

    def channel(self, channel_id: str) -> SimChannel:
        return self._channel(channel_id)

    def _channel(self, channel_id: str) -> SimChannel:
        channel = self.core.workspace.channels.get(channel_id)
        if channel is None:
            raise SimUsageError(f"no channel {channel_id}")
        return channel
