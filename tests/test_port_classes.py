"""A port passed as its class instead of an instance (``TeamAccess(MemoryStore, ...)``,
a common slip in a script or a test fixture) is a ValidationError that says to add the
parentheses, at the constructor.

Before, the duck-type check found the methods on the class and let it through: the store
then failed at the first call with a bare ``TypeError: MemoryStore.begin() missing 1
required positional argument: 'self'``, the templates failed in the constructor with
the same bare ``TypeError``, and the mailer made every mail fail with that ``TypeError``
recorded as a delivery failure, retried for days.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from tests.conftest import SECRET, START

from teamaccess import (
    DefaultTemplates,
    FileMailer,
    MemoryMailer,
    MemoryStore,
    SQLiteStore,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FailingMailer, FrozenClock


def _team(**ports: Any) -> TeamAccess:
    settings: dict[str, Any] = {"store": MemoryStore(), "mailer": MemoryMailer(), **ports}
    return TeamAccess(settings.pop("store"), settings.pop("mailer"), secret_key=SECRET, **settings)


class TestPortClasses:
    """Each port refuses its class, naming the parameter and the call to write."""

    @pytest.mark.parametrize(
        ("port", "cls", "hint"),
        [
            ("store", MemoryStore, "MemoryStore()"),
            ("store", SQLiteStore, "SQLiteStore(...)"),
            ("mailer", MemoryMailer, "MemoryMailer()"),
            ("mailer", FailingMailer, "FailingMailer()"),
            ("mailer", FileMailer, "FileMailer(...)"),
            ("clock", FrozenClock, "FrozenClock(...)"),
            ("templates", DefaultTemplates, "DefaultTemplates()"),
        ],
    )
    def test_class_is_refused(self, port: str, cls: type, hint: str) -> None:
        expected = f"not the class {cls.__name__}; create one: {hint}"
        pattern = rf"^{port} must be an instance.*{re.escape(expected)}"
        with pytest.raises(ValidationError, match=pattern):
            _team(**{port: cls})

    def test_a_class_with_static_methods_still_serves(self) -> None:
        # A class whose now() is a staticmethod is a working Clock as it is.
        class FixedClock:
            @staticmethod
            def now() -> datetime:
                return START

        team = _team(clock=FixedClock)
        account = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        assert account.created_at == START

    def test_instances_still_work(self) -> None:
        mailer = MemoryMailer()
        team = _team(mailer=mailer, clock=FrozenClock(START), templates=DefaultTemplates())
        account = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        assert team.get_account(account.id) == account
