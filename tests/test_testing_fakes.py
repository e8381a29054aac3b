"""The fakes of ``teamaccess.testing`` as a vendor's test suite meets them: a repr that
says which fake it is and what state it is in, and a slip in setting one up refused at
the line that made it, with what to write instead."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

import pytest
from tests.conftest import SECRET, START

from teamaccess import (
    DeliveryFailed,
    DeliveryRefused,
    MemoryMailer,
    MemoryStore,
    PermissionSet,
    RateLimited,
    TeamAccess,
    ValidationError,
)
from teamaccess.testing import FailingMailer, FrozenClock


class TestFailingMailerRepr:
    """repr(FailingMailer) names it and shows failing, attempts and the outbox."""

    def test_repr_names_the_fake_and_its_state(self) -> None:
        mailer = FailingMailer()
        assert repr(mailer) == "<FailingMailer failing=True attempts=0 outbox=0>"

    def test_repr_follows_the_state(self) -> None:
        mailer = FailingMailer()
        team = TeamAccess(MemoryStore(), mailer, secret_key=SECRET, clock=FrozenClock(START))
        account = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(DeliveryFailed):
            team.invite(account.id, actor_id="o", email="x@example.com",
                        permissions=PermissionSet.all())  # fmt: skip
        mailer.failing = False
        team.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
        team.deliver_pending()
        assert repr(mailer) == "<FailingMailer failing=False attempts=2 outbox=1>"

    def test_a_subclass_of_memory_mailer_reports_its_own_name(self) -> None:
        class RecordingMailer(MemoryMailer):
            pass

        assert repr(RecordingMailer()) == "<RecordingMailer outbox=0>"
        assert repr(MemoryMailer()) == "<MemoryMailer outbox=0>"


class TestFailingMailerError:
    """error= takes an exception (instance or class); anything else is refused at once."""

    @pytest.mark.parametrize("error", ["mail server is down", 550, object()])
    def test_not_an_exception_is_refused(self, error: Any) -> None:
        # Before, FailingMailer(error="...") was taken, and every send then failed with
        # "TypeError: exceptions must derive from BaseException" instead of the error meant.
        with pytest.raises(ValidationError, match=r"^FailingMailer\(error=\) must be an exception"):
            FailingMailer(error=error)

    def test_the_given_error_is_what_delivery_records(self) -> None:
        mailer = FailingMailer(error=DeliveryRefused("550 5.1.1 no such user", code=550))
        team = TeamAccess(MemoryStore(), mailer, secret_key=SECRET, clock=FrozenClock(START))
        account = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(DeliveryFailed):
            team.notify(account.id, "billing", subject="Invoice", text="ready")
        [message] = team.pending_messages() or team.undeliverable_messages()
        assert message.last_error is not None
        assert "550 5.1.1 no such user" in message.last_error

    def test_an_exception_class_is_raised_as_such(self) -> None:
        mailer = FailingMailer(error=TimeoutError)
        with pytest.raises(TimeoutError):
            mailer.send(None)  # type: ignore[arg-type]
        assert mailer.attempts == 1


class TestFrozenClockBackwards:
    """advance() with a negative delta says how to go back in time: set()."""

    def test_message_points_to_set(self) -> None:
        clock = FrozenClock(START)
        with pytest.raises(ValidationError, match=r"only moves forward.*set\(datetime\)"):
            clock.advance(timedelta(days=-1))
        assert clock.now() == START
        clock.set(START - timedelta(days=1))  # what the message offers works
        assert clock.now() == START - timedelta(days=1)


class TestRateLimitNamesItsSetting:
    """A flood limit a test suite trips names the setting that raises it: a suite that
    creates many accounts for one owner, or invites one address from many accounts,
    learns which TeamAccess argument to raise instead of only when to try again."""

    def _team(self, **limits: int) -> TeamAccess:
        return TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET,
                          clock=FrozenClock(START), **limits)  # fmt: skip

    def test_accounts_per_user(self) -> None:
        team = self._team(account_rate_limit=1)
        team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        with pytest.raises(RateLimited, match=r"the limit is 1 \(account_rate_limit\)\. Try"):
            team.create_account(name="B", owner_id="o", owner_email="o@example.com")

    def test_invitations_per_account(self) -> None:
        team = self._team(rate_limit=1)
        account = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
        team.invite(
            account.id, actor_id="o", email="a@example.com", permissions=PermissionSet.all()
        )
        with pytest.raises(RateLimited, match=r"the limit is 1 \(rate_limit\)\. Try"):
            team.invite(account.id, actor_id="o", email="b@example.com",
                        permissions=PermissionSet.all())  # fmt: skip

    def test_invitations_per_address(self) -> None:
        team = self._team(recipient_rate_limit=1)
        for owner in ("o", "p"):
            account = team.create_account(name="A", owner_id=owner, owner_email="o@example.com")
            invite = functools.partial(
                team.invite, account.id, actor_id=owner, email="x@example.com",
                permissions=PermissionSet.all(),
            )  # fmt: skip
            if owner == "o":
                invite()
        with pytest.raises(RateLimited, match=r"the limit is 1 \(recipient_rate_limit\)\. Try"):
            invite()
