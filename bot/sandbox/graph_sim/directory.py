"""Users, groups, nesting and directory roles: the part of the tenant that answers "who is this"."""

from __future__ import annotations

import secrets
import uuid
from collections import deque
from datetime import datetime

from bot.clock import Clock

from .model import RoleAssignment, SimGroup, SimUser


def new_id() -> str:
    return str(uuid.uuid4())


class DirectoryState:
    """Directory objects and the membership/role queries Graph's membership endpoints are built on."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.users: dict[str, SimUser] = {}
        self.groups: dict[str, SimGroup] = {}
        self.role_assignments: list[RoleAssignment] = []
        self._directory_role_ids: dict[str, str] = {}

    # -- seeding -------------------------------------------------------------------------------------

    def add_user(
        self,
        display_name: str,
        upn: str,
        *,
        mail: str | None = None,
        id: str | None = None,
        account_enabled: bool = True,
        user_type: str = "Member",
        department: str | None = None,
        job_title: str | None = None,
        created: datetime | None = None,
        manager_id: str | None = None,
        on_premises_sync: bool = False,
    ) -> SimUser:
        user_id = id or new_id()
        if user_id in self.users or user_id in self.groups:
            raise ValueError(f"object id {user_id} already exists")
        if self.find_user(upn) is not None:
            raise ValueError(f"userPrincipalName {upn} already exists")
        given, _, surname = display_name.partition(" ")
        user = SimUser(
            id=user_id,
            display_name=display_name,
            upn=upn,
            mail=mail if mail is not None else upn,
            created=created or self.clock.now(),
            account_enabled=account_enabled,
            user_type=user_type,
            department=department,
            job_title=job_title,
            manager_id=manager_id,
            on_premises_sync=on_premises_sync,
            given_name=given or None,
            surname=surname or None,
        )
        self.users[user_id] = user
        return user

    def add_group(
        self,
        display_name: str,
        *,
        id: str | None = None,
        members: list[str] | None = None,
        role_assignable: bool = False,
        description: str | None = None,
    ) -> SimGroup:
        group_id = id or new_id()
        if group_id in self.users or group_id in self.groups:
            raise ValueError(f"object id {group_id} already exists")
        group = SimGroup(
            group_id, display_name, self.clock.now(), role_assignable=role_assignable, description=description
        )
        self.groups[group_id] = group
        for member in members or []:
            self.add_member(group_id, member)
        return group

    def add_member(self, group_id: str, member_id: str) -> None:
        group = self.groups[group_id]
        if member_id not in self.users and member_id not in self.groups:
            raise KeyError(f"no directory object {member_id}")
        if group.role_assignable and member_id in self.groups:
            raise ValueError("role-assignable groups cannot contain groups (Entra forbids nesting them)")
        if member_id not in group.members:
            group.members.append(member_id)

    def remove_member(self, group_id: str, member_id: str) -> None:
        self.groups[group_id].members.remove(member_id)

    def assign_role(self, user_id: str, role_template_id: str, *, eligible: bool = False) -> RoleAssignment:
        """Assign a role to a user or to a role-assignable group (active, or PIM-eligible)."""
        if user_id in self.groups and not self.groups[user_id].role_assignable:
            raise ValueError("only role-assignable groups can hold directory roles")
        if user_id not in self.users and user_id not in self.groups:
            raise KeyError(f"no directory object {user_id}")
        assignment = RoleAssignment(
            id=secrets.token_urlsafe(32).rstrip("=") + "-1",
            principal_id=user_id,
            role_template_id=role_template_id,
            eligible=eligible,
            created=self.clock.now(),
        )
        self.role_assignments.append(assignment)
        return assignment

    # -- queries -------------------------------------------------------------------------------------

    def find_user(self, key: str) -> SimUser | None:
        """By object id or userPrincipalName (case-insensitive), as /users/{id | userPrincipalName}."""
        if key in self.users:
            return self.users[key]
        wanted = key.lower()
        return next((u for u in self.users.values() if u.upn.lower() == wanted), None)

    def direct_groups(self, object_id: str) -> list[SimGroup]:
        return [g for g in self.groups.values() if object_id in g.members]

    def transitive_groups(self, object_id: str) -> list[SimGroup]:
        """Every group reachable through nested membership, each once, nearest first."""
        seen: dict[str, SimGroup] = {}
        queue = deque(self.direct_groups(object_id))
        while queue:
            group = queue.popleft()
            if group.id in seen:
                continue
            seen[group.id] = group
            queue.extend(self.direct_groups(group.id))
        return list(seen.values())

    def group_ids_of(self, user_id: str) -> set[str]:
        return {g.id for g in self.transitive_groups(user_id)}

    def directory_role_id(self, template_id: str) -> str:
        """The activated directoryRole object for a template (its id differs from the template id)."""
        return self._directory_role_ids.setdefault(template_id, new_id())

    def assignments_for(self, principal_id: str, *, eligible: bool) -> list[RoleAssignment]:
        return [a for a in self.role_assignments if a.principal_id == principal_id and a.eligible == eligible]

    def active_role_templates(self, user_id: str, *, transitive: bool) -> list[str]:
        """Templates of active roles held directly, and (transitive) through role-assignable groups."""
        principals = [user_id]
        if transitive:
            principals += [g.id for g in self.transitive_groups(user_id)]
        templates: list[str] = []
        for principal in principals:
            for assignment in self.assignments_for(principal, eligible=False):
                if assignment.role_template_id not in templates:
                    templates.append(assignment.role_template_id)
        return templates
