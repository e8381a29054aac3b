"""The classes that load with the package share one __repr__ (so attrs compiles none for
them at import); it prints exactly what attrs' generated one prints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

import teamaccess as ta
from teamaccess._repr import attrs_repr

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PERMS = ta.PermissionSet.of("billing.view") | ta.PermissionSet.on("services.manage", "srv-1")

SAMPLES: list[Any] = [
    ta.Account("acc-1", "Ann's \"shop\"", "u1", "ann@example.com", NOW),
    ta.Member("acc-1", "u2", "bob@example.com", "member", PERMS, NOW, "u1", "suspended",
              NOW, {"customer_no": "4711", "tags": ["a", "b"]}),
    ta.Invitation("inv-1", "acc-1", "cy@example.com", ta.PermissionSet.all(), "u1", "pending",
                  NOW, NOW, token="secret-token", token_hash="hash", note="Hi\tthere",
                  metadata={"k": 1}),
    ta.Contact("con-1", "acc-1", "Dee", "dee@example.com", ["billing", "general"],
               company="ACME", phone="+49 1", role="CFO", created_at=NOW),
    ta.AuditEvent("evt-1", "acc-1", NOW, "u1", "member.added", "u2", {"permissions": ["x"]}),
    ta.OutboxMessage("out-1", "acc-1", "notification", "dee@example.com", "<m@x>", NOW, NOW,
                     message=b"secret body", attempts=2, last_error="refused"),
    ta.normalize_email("Eve@Example.COM"),
    ta.Permission("x.y", "X", "G", "d", "X de", "d de", scoped=True),
    ta.Preset("p", "P", ta.PermissionSet.of("x.y"), "P de"),
    ta.Category("c", "C", "C de"),
]  # fmt: skip


def _twin(obj: Any) -> Any:
    """The same values in a twin class that attrs gives its own generated __repr__."""
    cls = type(obj)
    fields = attrs.fields(cls)
    twin = attrs.make_class(
        cls.__name__, {f.name: attrs.field(repr=f.repr) for f in fields}, frozen=True
    )
    return twin(**{f.name: getattr(obj, f.name) for f in fields})


def _as_attrs_would(obj: Any) -> str:
    return repr(_twin(obj))


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_same_repr_as_attrs(obj: Any) -> None:
    assert type(obj).__repr__ is attrs_repr
    assert repr(obj) == _as_attrs_would(obj)


def test_secrets_stay_out() -> None:
    inv, out = SAMPLES[2], SAMPLES[5]
    assert "secret-token" not in repr(inv)
    assert "hash" not in repr(inv)
    assert "secret body" not in repr(out)


def test_an_object_inside_itself_prints_dots() -> None:
    member = ta.Member("acc-1", "u2", "b@example.com", "member", PERMS, NOW, metadata={})
    twin = _twin(member)
    assert twin.metadata is member.metadata
    member.metadata["me"] = member  # type: ignore[index]
    twin_metadata = {"me": twin}
    twin = attrs.evolve(twin, metadata=twin_metadata)
    twin_metadata["me"] = twin
    assert repr(member) == repr(twin)
    assert repr(member).endswith("metadata={'me': ...})")


def test_subclass_shows_its_own_name() -> None:
    @attrs.frozen
    class Special(ta.Category):
        extra: int = 0

    assert repr(Special("c", "C", extra=3)) == "Special(name='c', label='C', label_de='', extra=3)"


def test_rendered_invitation_mail_keeps_its_link_out() -> None:
    # An invitation's RenderedMail holds the accept link, token and all, in its text and
    # HTML, as InvitationContext holds it in accept_url: a vendor template that logs or
    # raises with what it rendered must not leak a live link (DESIGN.md: the token is
    # never logged or put in an error). The subject stays, to tell mails apart.
    seen: list[ta.RenderedMail] = []

    class Recording(ta.DefaultTemplates):
        def invitation(self, context: ta.InvitationContext) -> ta.RenderedMail:
            seen.append(super().invitation(context))
            return seen[-1]

    team = ta.TeamAccess(ta.MemoryStore(), ta.MemoryMailer(), secret_key="k", templates=Recording())
    account = team.create_account(name="A", owner_id="o", owner_email="o@example.com")
    inv = team.invite(account.id, actor_id="o", email="x@example.com", permissions=PERMS)
    [rendered] = seen
    assert inv.token is not None
    assert inv.token in rendered.text  # the check can fail
    assert inv.token not in repr(rendered)
    assert repr(rendered) == f"RenderedMail(subject={rendered.subject!r})"


def test_default_templates_say_what_they_are() -> None:
    # Was <teamaccess._mail.templates.DefaultTemplates object at 0x...>, which is what
    # repr(team.templates) showed in a REPL.
    assert repr(ta.DefaultTemplates()) == "DefaultTemplates(brand=None, languages=('en', 'de'))"
    extra = ta.DefaultTemplates(brand="HostPress", strings={"fr": {"invitation.action": "Go"}})
    assert repr(extra) == "DefaultTemplates(brand='HostPress', languages=('en', 'de', 'fr'))"

    class Mine(ta.DefaultTemplates):
        pass

    assert repr(Mine()).startswith("Mine(brand=None")
