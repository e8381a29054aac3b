"""Test data, made through the public API only."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from email.message import EmailMessage

from teamaccess import PermissionSet, TeamAccess

SECRET = "benchmark-secret-key"

#: What the nine invited members of an account hold, round robin; the owner holds all.
GRANTS = (
    PermissionSet.of("billing.view", "billing.pay"),
    PermissionSet.of("services.view", "services.manage", "credentials.view"),
    PermissionSet.of("support.tickets"),
    PermissionSet.all(),
    PermissionSet.of("billing.view", "support.tickets", "support.pin"),
)
CATEGORIES = (["billing"], ["general", "support"], ["billing", "product"])


class NullMailer:
    """A mailer that delivers nowhere: the benchmark measures the library, not a mail server."""

    def send(self, message: EmailMessage) -> None:
        pass


@dataclass
class Population:
    """What was created: ``members[account_id]`` lists ``(user_id, permissions)``."""

    accounts: list[str] = field(default_factory=list)
    members: dict[str, list[tuple[str, PermissionSet]]] = field(default_factory=dict)

    def can_args(
        self, n: int, rng: random.Random, names: tuple[str, ...]
    ) -> list[tuple[str, str, str]]:
        """*n* ``(user_id, account_id, permission)`` triples spread over every account."""
        out = []
        for _ in range(n):
            account = rng.choice(self.accounts)
            user, _perms = rng.choice(self.members[account])
            out.append((user, account, rng.choice(names)))
        return out


def populate(team: TeamAccess, accounts: int, members: int = 10, contacts: int = 3) -> Population:
    """*accounts* accounts, each with an owner and ``members - 1`` invited and accepted
    members, and *contacts* contacts, all through ``TeamAccess``."""
    pop = Population()
    for a in range(accounts):
        owner = f"owner{a}"
        account = team.create_account(
            name=f"Kunde {a} GmbH", owner_id=owner, owner_email=f"chef{a}@kunde{a}.example"
        )
        pop.accounts.append(account.id)
        listed = pop.members[account.id] = [(owner, PermissionSet.all())]
        for m in range(1, members):
            user = f"user{a}-{m}"
            email = f"{user}@kunde{a}.example"
            perms = GRANTS[m % len(GRANTS)]
            inv = team.invite(account.id, actor_id=owner, email=email, permissions=perms)
            assert inv.token is not None
            team.accept_invitation(inv.token, user_id=user, email=email)
            listed.append((user, perms))
        for c in range(contacts):
            team.add_contact(
                account.id,
                actor_id=owner,
                name=f"Kontakt {c}",
                email=f"kontakt{c}@kunde{a}.example",
                categories=CATEGORIES[c % len(CATEGORIES)],
            )
    return pop


def page_size() -> int:
    """The page size of the SQLite files the library creates here: SQLite's default, or
    ``TEAMACCESS_BENCH_PAGE_SIZE`` (e.g. 1024) to measure ``SQLiteStore(page_size=...)``."""
    return int(os.environ.get("TEAMACCESS_BENCH_PAGE_SIZE", "4096"))
