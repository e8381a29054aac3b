"""Hypothesis strategies, one per domain class, shared by the property and stateful tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import idna
from hypothesis import strategies as st

from teamaccess import (
    Account,
    AuditEvent,
    Catalog,
    Invitation,
    Member,
    Permission,
    PermissionSet,
    ValidationError,
)
from teamaccess._emails import check_line

DEFAULT_NAMES = Catalog.default().names()


def is_single_line(text: str) -> bool:
    """What the library accepts as a name: asked of the library, so the two never drift."""
    try:
        check_line("name", text)
    except ValidationError:
        return False
    return True


#: permission names as a vendor writes them: "area.verb"
permission_names = st.from_regex(r"[a-z]{1,8}\.[a-z]{1,8}", fullmatch=True)


@st.composite
def permissions(draw: st.DrawFn) -> Permission:
    """A Permission with a name, English and German labels and a group."""
    name = draw(permission_names)
    label = draw(st.text(min_size=1, max_size=20))
    return Permission(
        name,
        label,
        group=draw(st.sampled_from(["Account", "Billing", "Services", ""])),
        description=draw(st.text(max_size=30)),
        label_de=draw(st.text(max_size=20)),
    )


@st.composite
def catalogs(draw: st.DrawFn, *, min_size: int = 0, max_size: int = 12) -> Catalog:
    """A vendor catalog: distinct names, in the order the vendor lists them."""
    perms = draw(
        st.lists(permissions(), min_size=min_size, max_size=max_size, unique_by=lambda p: p.name)
    )
    return Catalog(perms)


def permission_sets(
    names: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[PermissionSet]:
    """``PermissionSet.all()`` now and then, else a set of *names* (default: the catalog's)."""
    pool = names if names is not None else st.sampled_from(DEFAULT_NAMES)
    concrete = st.frozensets(pool, max_size=8).map(lambda s: PermissionSet.of(*s))
    return st.one_of(st.just(PermissionSet.all()), concrete, concrete)


concrete_permission_sets = st.frozensets(st.sampled_from(DEFAULT_NAMES)).map(
    lambda s: PermissionSet.of(*s)
)

times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)

ids = st.from_regex(r"[a-z]{3}_[0-9a-f]{20}", fullmatch=True)
user_ids = st.from_regex(r"u[0-9]{1,6}", fullmatch=True)

# --- addresses -------------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda s: "--" not in s
)
_tld = st.sampled_from(["de", "com", "org", "net", "io", "ch", "at"])
local_parts = st.from_regex(
    r"[A-Za-z0-9]([A-Za-z0-9._+-]{0,15}[A-Za-z0-9])?", fullmatch=True
).filter(lambda s: ".." not in s)
ascii_domains = st.builds(
    lambda labels, tld: ".".join([*labels, tld]), st.lists(_label, min_size=1, max_size=3), _tld
)

#: a domain label with at least one umlaut or accent (IDN)
idn_labels = st.text(alphabet="abcdefghmnrstäöüéñ", min_size=1, max_size=10).filter(
    lambda s: not s.isascii()
)


@st.composite
def idn_domains(draw: st.DrawFn) -> tuple[str, str]:
    """The same IDN domain twice: ``(unicode form, punycode form)``."""
    label = draw(idn_labels)
    tld = draw(_tld)
    unicode_form = f"{label}.{tld}"
    return unicode_form, idna.encode(unicode_form).decode()


emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, ascii_domains)


@st.composite
def idn_emails(draw: st.DrawFn) -> tuple[str, str]:
    """One address with an IDN domain in both forms."""
    local = draw(local_parts)
    unicode_form, puny = draw(idn_domains())
    return f"{local}@{unicode_form}", f"{local}@{puny}"


# --- domain objects --------------------------------------------------------------

accounts = st.builds(
    Account,
    id=ids,
    name=st.text(min_size=1, max_size=30).filter(is_single_line),
    owner_id=user_ids,
    owner_email=emails,
    created_at=times,
)

members = st.builds(
    Member,
    account_id=ids,
    user_id=user_ids,
    email=emails,
    role=st.sampled_from(["owner", "member"]),
    permissions=permission_sets(),
    joined_at=times,
)


@st.composite
def invitations(draw: st.DrawFn) -> Invitation:
    created = draw(times)
    return Invitation(
        id=draw(ids),
        account_id=draw(ids),
        email=draw(emails),
        permissions=draw(permission_sets()),
        invited_by=draw(user_ids),
        status=draw(st.sampled_from(["pending", "accepted", "declined", "revoked", "expired"])),
        created_at=created,
        expires_at=created + draw(st.timedeltas(timedelta(minutes=1), timedelta(days=30))),
    )


audit_events = st.builds(
    AuditEvent,
    id=ids,
    account_id=ids,
    at=times,
    actor_id=user_ids,
    action=st.sampled_from(["account.created", "invitation.sent", "member.removed"]),
    target=ids,
)
