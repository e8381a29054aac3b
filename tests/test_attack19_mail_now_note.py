"""An invitation's note names a third person, who is erased while the mail is on its
way (``delivery="now"``): the erasure rewrites the stored note, not the outbox row, since
an invitation's mail is rendered, not stored; so the mail rendered before the erasure
went out naming them. The erasure runs through a second store on the same database,
between the call's commit and its send (an audit listener), or while a resend's mail
renders (its template)."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

import pytest

from teamaccess import SYSTEM, DeliveryFailed, MemoryMailer, PermissionSet, Store, TeamAccess
from teamaccess._mail.templates import DefaultTemplates, InvitationContext, RenderedMail
from teamaccess.testing import FrozenClock

from .conftest import SHARED
from .test_privacy import make
from .test_privacy18_mail_now import between_commit_and_send

P = PermissionSet.of
NOTE = "Pia Muster (pia@example.org) set up your server."


def _erase_pia(other: TeamAccess) -> Callable[[], object]:
    return lambda: other.erase_person(email="pia@example.org", actor_id=SYSTEM)


def _parts(mail: EmailMessage) -> str:
    return "\n".join(
        part.get_content()  # type: ignore[attr-defined]
        for part in mail.walk()
        if part.get_content_type() in ("text/plain", "text/html")
    )


def _sent_as_stored(mailer: MemoryMailer, team: TeamAccess, token: str | None) -> None:
    """The one mail sent carries the note as the erasure left it, and the caller's link."""
    assert len(mailer.outbox) == 1
    text = _parts(mailer.outbox[0])
    assert "pia@example.org" not in text
    assert "[erased]" in text
    assert token is not None
    assert token in text
    assert team.deliver_pending() == []
    assert len(mailer.outbox) == 1


class Meanwhile(DefaultTemplates):
    """Runs *change* once, while the next invitation mail renders; with *fail_after*,
    every render after that one fails."""

    def __init__(self) -> None:
        super().__init__()
        self.change: Callable[[], object] | None = None
        self.fail_after = False

    def invitation(self, context: InvitationContext) -> RenderedMail:
        change, self.change = self.change, None
        if change is not None:
            change()
        elif self.fail_after:
            raise RuntimeError("the template failed")
        return super().invitation(context)


@pytest.mark.parametrize("backend", SHARED, indirect=True)
class TestNoteErasedWhileSent:
    """The mail goes out with the note as stored when it is sent."""

    def test_invite(self, store_factory: Callable[[], Store], clock: FrozenClock) -> None:
        mailer = MemoryMailer()
        team = make(store_factory(), clock, mailer)
        other = make(store_factory(), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        erased = between_commit_and_send(team, "invitation.sent", _erase_pia(other))
        inv = team.invite(acc.id, actor_id="o", email="bea@example.org", permissions=P(),
                          note=NOTE)  # fmt: skip
        assert [r.texts_redacted for r in erased] == [1]
        _sent_as_stored(mailer, team, inv.token)

    def test_resend(self, store_factory: Callable[[], Store], clock: FrozenClock) -> None:
        mailer = MemoryMailer()
        team = make(store_factory(), clock, mailer)
        other = make(store_factory(), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        first = team.invite(acc.id, actor_id="o", email="bea@example.org", permissions=P(),
                            note=NOTE)  # fmt: skip
        mailer.outbox.clear()
        erased = between_commit_and_send(team, "invitation.resent", _erase_pia(other))
        inv = team.resend_invitation(first.id, actor_id="o")
        assert [r.texts_redacted for r in erased] == [1]
        _sent_as_stored(mailer, team, inv.token)

    def test_resend_rendered_before_the_erasure(
        self, store_factory: Callable[[], Store], clock: FrozenClock
    ) -> None:
        """The erasure commits after the read the resend's mail is rendered from, and
        before its write unit."""
        mailer = MemoryMailer()
        templates = Meanwhile()
        team = make(store_factory(), clock, mailer, templates=templates)
        other = make(store_factory(), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        first = team.invite(acc.id, actor_id="o", email="bea@example.org", permissions=P(),
                            note=NOTE)  # fmt: skip
        mailer.outbox.clear()
        erased: list[object] = []
        templates.change = lambda: erased.append(_erase_pia(other)())
        inv = team.resend_invitation(first.id, actor_id="o")
        assert len(erased) == 1
        _sent_as_stored(mailer, team, inv.token)

    def test_resend_whose_mail_cannot_be_rendered_again(
        self, store_factory: Callable[[], Store], clock: FrozenClock
    ) -> None:
        """Committed, and not sent with the old note: DeliveryFailed, and the worker
        renders it as stored."""
        mailer = MemoryMailer()
        templates = Meanwhile()
        team = make(store_factory(), clock, mailer, templates=templates)
        other = make(store_factory(), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        first = team.invite(acc.id, actor_id="o", email="bea@example.org", permissions=P(),
                            note=NOTE)  # fmt: skip
        mailer.outbox.clear()
        templates.change = _erase_pia(other)
        templates.fail_after = True
        with pytest.raises(DeliveryFailed, match="rendering its mail again") as caught:
            team.resend_invitation(first.id, actor_id="o")
        assert caught.value.invitation is not None
        assert caught.value.invitation.token is None
        assert mailer.outbox == []
        templates.fail_after = False
        clock.advance(team.delivery_lease)
        assert len(team.deliver_pending()) == 1
        text = _parts(mailer.outbox[0])
        assert "pia@example.org" not in text
        assert "[erased]" in text

    def test_a_note_left_alone_is_sent_as_rendered(
        self, store_factory: Callable[[], Store], clock: FrozenClock
    ) -> None:
        """An erasure of someone the note does not name changes nothing in the mail."""
        mailer = MemoryMailer()
        team = make(store_factory(), clock, mailer)
        other = make(store_factory(), clock)
        acc = team.create_account(name="A", owner_id="o", owner_email="o@example.org")
        erased = between_commit_and_send(
            team, "invitation.sent",
            lambda: other.erase_person(email="kim@example.org", actor_id=SYSTEM),
        )  # fmt: skip
        inv = team.invite(acc.id, actor_id="o", email="bea@example.org", permissions=P(),
                          note=NOTE)  # fmt: skip
        assert len(erased) == 1
        assert len(mailer.outbox) == 1
        text = _parts(mailer.outbox[0])
        assert "pia@example.org" in text
        assert inv.token is not None
        assert inv.token in text
