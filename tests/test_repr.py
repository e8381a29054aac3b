"""The classes that load with the package share one __repr__, and take an __eq__ and a
__hash__ built from their fields (so attrs compiles none of the three for them at
import); each behaves exactly as attrs' generated one."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

import teamaccess as ta
import teamaccess._repr
from teamaccess._repr import attrs_repr, eq_hash

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
    # the mail modules' classes, which load with the first TeamAccess
    ta.InvitationContext("en", "Panel", "Shop", "a@example.com", "b@example.com",
                         "https://x.example/accept?token=secret-token", NOW, False,
                         ("Billing",), (("Servers", ("srv-1",)),), "Hi", NOW),
    ta.NotificationContext("de", "Panel", "Shop", "billing", "Billing", "c@example.com",
                           "Subject", "Text", None),
    ta.RenderedMail("Subject", "Text", "<p>HTML</p>"),
]  # fmt: skip


@functools.cache
def _twin_class(cls: type) -> Any:
    """A twin of *cls* that attrs gives its own generated __repr__, __eq__ and __hash__."""
    return attrs.make_class(
        cls.__name__,
        {f.name: attrs.field(repr=f.repr, eq=f.eq, hash=f.hash) for f in attrs.fields(cls)},
        frozen=True,
    )


def _twin(obj: Any) -> Any:
    """The same values in a twin class that attrs gives its own generated methods."""
    fields = attrs.fields(type(obj))
    return _twin_class(type(obj))(**{f.name: getattr(obj, f.name) for f in fields})


def _as_attrs_would(obj: Any) -> str:
    return repr(_twin(obj))


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_same_repr_as_attrs(obj: Any) -> None:
    assert type(obj).__repr__ is attrs_repr
    assert repr(obj) == _as_attrs_would(obj)


def test_secrets_stay_out() -> None:
    inv, out, context = SAMPLES[2], SAMPLES[5], SAMPLES[10]
    assert "secret-token" not in repr(inv)
    assert "hash" not in repr(inv)
    assert "secret body" not in repr(out)
    assert "secret-token" not in repr(context)


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


def _changed(obj: Any, name: str) -> Any:
    """*obj* with the field *name* set to another value (of a type it may hold)."""
    value = getattr(obj, name)
    if isinstance(value, ta.PermissionSet):
        other: Any = ta.PermissionSet.of("other.thing")
    elif isinstance(value, bool):
        other = not value
    elif isinstance(value, int):
        other = value + 1
    elif isinstance(value, datetime):
        other = value.replace(year=value.year + 1)
    elif isinstance(value, frozenset):
        other = value | {"zzz"}
    elif isinstance(value, dict):
        other = {**value, "zzz": 1}
    elif isinstance(value, bytes):
        other = value + b"z"
    elif isinstance(value, tuple):
        other = (*value, "zzz")
    elif value is None:
        other = NOW if "_at" in name or "until" in name else "zzz"
    else:
        other = value + "z"
    return _with(obj, name, other)


def _with(obj: Any, name: str, value: Any) -> Any:
    # Set without the validators and converters: a changed value need not pass them to
    # test equality, and attrs' own __eq__ does not look at them either.
    copy = attrs.evolve(obj)
    object.__setattr__(copy, name, value)
    return copy


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_no_generated_eq_or_hash(obj: Any) -> None:
    """What import teamaccess saves: attrs compiled no __eq__ or __hash__ for the class."""
    for method in (type(obj).__eq__, type(obj).__hash__):
        assert method.__code__.co_filename == teamaccess._repr.__file__
    assert type(obj).__eq__.__qualname__ == f"{type(obj).__qualname__}.__eq__"


def _hash(obj: Any) -> int | str:
    """hash(*obj*), or the name of the error it raises (a dict field is unhashable)."""
    try:
        return hash(obj)
    except TypeError as exc:
        return str(exc)


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_same_eq_and_hash_as_attrs(obj: Any) -> None:
    twin = _twin(obj)
    copy = attrs.evolve(obj)
    assert copy is not obj
    assert copy == obj
    assert (copy != obj) is False
    assert _twin(copy) == twin
    assert _hash(copy) == _hash(obj)
    assert isinstance(_hash(obj), int) == isinstance(_hash(twin), int)
    if isinstance(_hash(obj), str):  # unhashable (AuditEvent's details): the same error
        assert _hash(obj) == _hash(twin)
    # Another class with the same fields is never equal, either way round.
    assert obj != twin
    assert twin != obj
    assert obj.__eq__(twin) is NotImplemented
    assert obj.__eq__(None) is NotImplemented
    for field in attrs.fields(type(obj)):
        changed = _changed(obj, field.name)
        assert getattr(changed, field.name) != getattr(obj, field.name)
        twin_changed = _twin(changed)
        assert (changed == obj) == (twin_changed == twin), field.name
        assert (changed != obj) == (twin_changed != twin), field.name
        assert (changed == obj) is (not field.eq), field.name
        if isinstance(_hash(obj), int):
            hashed = field.eq if field.hash is None else field.hash
            # A field left out of the hash leaves it alone; attrs' twin agrees.
            assert (_hash(changed) == _hash(obj)) is (not hashed), field.name
            assert (_hash(twin_changed) == _hash(twin)) is (not hashed), field.name


def test_eq_hash_hashes_the_class_in() -> None:
    """As attrs' hash: two classes with the same fields and values hash apart."""

    @eq_hash
    @attrs.frozen(eq=False)
    class One:
        x: int

    @eq_hash
    @attrs.frozen(eq=False)
    class Two:
        x: int

    assert One(1) == One(1)
    assert hash(One(1)) == hash(One(1))
    assert One(1) != Two(1)
    assert hash(One(1)) != hash(Two(1))
    assert {One(1): "a"}[One(1)] == "a"


def test_eq_hash_refuses_an_eq_key() -> None:
    with pytest.raises(TypeError, match="eq key"):

        @eq_hash
        @attrs.frozen(eq=False)
        class Keyed:
            x: str = attrs.field(eq=str.lower)
