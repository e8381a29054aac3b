"""Permissions, the vendor's catalog of them, and mail categories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Final

import attrs

from ._errors import UnknownCategory, UnknownPermission, ValidationError
from ._repr import attrs_repr, eq_hash

__all__ = [
    "RESOURCE_ID_MAX_LENGTH",
    "Catalog",
    "Categories",
    "Category",
    "Permission",
    "PermissionSet",
    "Preset",
    "Resources",
]

#: The longest resource id a scoped grant takes (a service's id in the vendor's system).
RESOURCE_ID_MAX_LENGTH: Final = 200


def _check_name(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str):
        raise ValidationError(f"{attribute.name} must be a string, not {type(value).__name__}")
    if not value or any(c in value for c in "\r\n\0") or value != value.strip():
        raise ValidationError(
            f"{attribute.name} {value!r} must be a non-empty single line without surrounding spaces"
        )


def _check_permission_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    _check_name(instance, attribute, value)
    # "@" joins a permission and a resource in the text form ("services.manage@srv-1").
    if "@" in value:
        raise ValidationError(
            f"permission name {value!r} must not contain '@'; it separates a permission "
            "from a resource id, as in 'services.manage@srv-1'"
        )


# eq=False, then eq_hash: attrs' equality and hashing, built without compiling (_repr).
@eq_hash
@attrs.frozen(eq=False)
class Permission:
    """One function of the customer center a member may be allowed to use.

    ``scoped=True`` lets it be granted on single resources (one web space, one server)
    as well as account-wide: ``PermissionSet.on("services.manage", "srv-1")``.
    """

    __repr__ = attrs_repr  # what attrs prints, without compiling it at import

    name: str = attrs.field(validator=_check_permission_name)
    label: str
    group: str = ""
    description: str = ""
    label_de: str = ""
    description_de: str = ""
    scoped: bool = attrs.field(default=False, kw_only=True)

    def label_for(self, language: str) -> str:
        """The label in *language* (``"en"`` or ``"de"``), English if there is none."""
        if language == "de" and self.label_de:
            return self.label_de
        return self.label

    def description_for(self, language: str) -> str:
        """The description in *language*, English if there is none."""
        if language == "de" and self.description_de:
            return self.description_de
        return self.description


_DEFAULT_PERMISSIONS = (
    Permission("profile.edit", "Edit profile", "Account",
               "Change the account's profile and address", "Profil bearbeiten"),
    Permission("users.manage", "Manage users", "Account",
               "Invite, change and remove users", "Benutzer verwalten"),
    Permission("contacts.manage", "Manage contacts", "Account",
               "Add, change and remove contacts", "Kontakte verwalten"),
    Permission("billing.view", "View invoices", "Billing",
               "See invoices and statements", "Rechnungen einsehen"),
    Permission("billing.pay", "Pay invoices", "Billing",
               "Pay invoices and manage payment methods", "Rechnungen bezahlen"),
    Permission("orders.place", "Place orders", "Orders",
               "Book products and add-ons (extra RDP users, SQL licences)",
               "Bestellungen aufgeben"),
    Permission("services.view", "View services", "Services",
               "See products and services", "Dienste einsehen", scoped=True),
    Permission("services.manage", "Manage services", "Services",
               "Change, upgrade or cancel services", "Dienste verwalten", scoped=True),
    Permission("credentials.view", "View access data", "Services",
               "See server information and access data",
               "Serverinformationen und Zugangsdaten einsehen", scoped=True),
    Permission("firewall.unblock", "Lift IP blocks", "Services",
               "Lift an IP block", "IP-Sperre aufheben", scoped=True),
    Permission("support.tickets", "Support tickets", "Support",
               "Open and read support tickets", "Support-Tickets"),
    Permission("support.pin", "View support PIN", "Support",
               "See the support PIN", "Support-PIN einsehen"),
    Permission("contracts.sign", "Sign contracts", "Contracts",
               "Sign and download the data-processing agreement and TOMs",
               "AV-Vertrag und TOMs zeichnen"),
)  # fmt: skip

# Kept apart from the table above so each stays readable at a glance.
_DEFAULT_DESCRIPTIONS_DE = {
    "profile.edit": "Profil und Anschrift des Kontos ändern",
    "users.manage": "Benutzer einladen, ändern und entfernen",
    "contacts.manage": "Kontakte anlegen, ändern und entfernen",
    "billing.view": "Rechnungen und Kontoauszüge einsehen",
    "billing.pay": "Rechnungen bezahlen und Zahlungsarten verwalten",
    "orders.place": "Produkte und Zusatzoptionen buchen (weitere RDP-Benutzer, SQL-Lizenzen)",
    "services.view": "Produkte und Dienste einsehen",
    "services.manage": "Dienste ändern, upgraden oder kündigen",
    "credentials.view": "Serverinformationen und Zugangsdaten einsehen",
    "firewall.unblock": "Eine IP-Sperre aufheben",
    "support.tickets": "Support-Tickets eröffnen und lesen",
    "support.pin": "Den Support-PIN einsehen",
    "contracts.sign": "AV-Vertrag und TOMs zeichnen und herunterladen",
}


class Catalog:
    """The vendor's permissions, in display order, and its named presets.

    >>> Catalog.default().names()[:2]
    ('profile.edit', 'users.manage')
    >>> Catalog.default().preset("accounting")
    PermissionSet.of('billing.pay', 'billing.view', 'contracts.sign')
    """

    __slots__ = ("_by_name", "_permissions", "_presets")

    def __init__(
        self,
        permissions: Iterable[Permission | str],
        *,
        presets: Iterable[Preset] | None = None,
    ) -> None:
        perms = tuple(p if isinstance(p, Permission) else Permission(p, p) for p in permissions)
        by_name: dict[str, Permission] = {}
        for perm in perms:
            if perm.name in by_name:
                raise ValidationError(f"permission {perm.name!r} is listed twice in the catalog")
            by_name[perm.name] = perm
        self._permissions = perms
        self._by_name = by_name
        self._presets: dict[str, Preset] = {}
        if isinstance(presets, str | Mapping) or (
            presets is not None and not isinstance(presets, Iterable)
        ):
            raise ValidationError(
                f"presets must be a list of Preset objects, not {type(presets).__name__}"
            )
        for preset in presets or ():
            if not isinstance(preset, Preset):
                raise ValidationError(
                    f"presets must hold Preset objects, e.g. Preset('accounting', 'Accounting', "
                    f"PermissionSet.of('billing.view')), not {preset!r}"
                )
            if preset.name in self._presets:
                raise ValidationError(f"preset {preset.name!r} is listed twice in the catalog")
            self.check(preset.permissions)
            self._presets[preset.name] = preset

    @classmethod
    def default(cls) -> Catalog:
        """The thirteen functions of a hosting customer center, with two presets."""
        return cls(
            (
                attrs.evolve(p, description_de=_DEFAULT_DESCRIPTIONS_DE[p.name])
                for p in _DEFAULT_PERMISSIONS
            ),
            presets=_DEFAULT_PRESETS,
        )

    def __iter__(self) -> Iterator[Permission]:
        return iter(self._permissions)

    def __len__(self) -> int:
        return len(self._permissions)

    def __contains__(self, name: object) -> bool:
        # Only strings are names; an unhashable value must read as unknown, not TypeError.
        return isinstance(name, str) and name in self._by_name

    def __getitem__(self, name: str) -> Permission:
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise self.unknown(name) from None

    def __repr__(self) -> str:
        return f"Catalog({list(self._by_name)!r})"

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def scoped_names(self) -> tuple[str, ...]:
        """The permissions that may be granted on single resources, in display order."""
        return tuple(p.name for p in self._permissions if p.scoped)

    def presets(self) -> tuple[Preset, ...]:
        """The named presets, in the order given."""
        return tuple(self._presets.values())

    def preset(self, name: str) -> PermissionSet:
        """The permissions of the preset *name*, e.g. ``"accounting"``.

        ``PermissionSet`` is immutable, so what a caller grants is a copy: changing the
        catalog's presets later changes no invitation or member.
        """
        try:
            return self._presets[name].permissions
        except (KeyError, TypeError):
            raise ValidationError(
                f"unknown preset {name!r}; use one of: " + (", ".join(self._presets) or "(none)")
            ) from None

    def unknown(self, name: object) -> UnknownPermission:
        """The error for a name that is not in this catalog."""
        # The forms to_list() writes, as the audit log, `members --json` and import rows
        # show them, are what a developer copies: say what each stands for.
        if name == "*":
            return UnknownPermission(
                "unknown permission '*': that is how to_list() writes all permissions; "
                "write PermissionSet.all()"
            )
        if isinstance(name, str) and "@" in name:
            permission, _, resource = name.partition("@")
            if permission in self._by_name:
                return UnknownPermission(
                    f"unknown permission {name!r}: that is how to_list() writes a grant on "
                    f"one resource; write PermissionSet.on({permission!r}, {resource!r}) "
                    f"(or PermissionSet.from_list([...])), and ask can(user_id, account_id, "
                    f"{permission!r}, resource={resource!r})"
                )
        return UnknownPermission(
            f"unknown permission {name!r}; use one of the catalog's names: "
            + ", ".join(self._by_name)
        )

    def check(self, permissions: PermissionSet) -> PermissionSet:
        """Return *permissions* if every name is in the catalog and every scoped grant is
        on a permission the catalog marks ``scoped``, else raise."""
        for name in permissions.names:
            if name not in self._by_name:
                raise self.unknown(name)
        for name, _resource in permissions.scopes:
            perm = self._by_name.get(name)
            if perm is None:
                raise self.unknown(name)
            if not perm.scoped:
                raise ValidationError(
                    f"permission {name!r} cannot be granted on single resources; grant it "
                    "account-wide, or use one of: " + (", ".join(self.scoped_names()) or "(none)")
                )
        return permissions


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _pairs(value: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    return frozenset(value)


def _check_resource(resource_id: object, what: str = "resource id") -> str:
    if not isinstance(resource_id, str):
        raise ValidationError(f"{what} must be a string, not {type(resource_id).__name__}")
    if (
        not resource_id
        or resource_id != resource_id.strip()
        or any(c in resource_id for c in "\r\n\0")
        or len(resource_id) > RESOURCE_ID_MAX_LENGTH
    ):
        raise ValidationError(
            f"{what} {resource_id[:40]!r} must be a non-empty single line of at most "
            f"{RESOURCE_ID_MAX_LENGTH} characters, without surrounding spaces"
        )
    return resource_id


@eq_hash
@attrs.frozen(repr=False, eq=False)
class PermissionSet:
    """Either *all* permissions of the catalog in force, or account-wide names plus grants
    on single resources.

    ``names`` are held account-wide; ``scopes`` holds ``(permission, resource_id)`` pairs,
    never for a permission that is also in ``names`` (the account-wide grant covers it).
    ``PermissionSet.all()`` stays "all" when the vendor adds permissions later. A scoped
    grant never counts as account-wide: ``"services.manage" in s`` asks for the
    account-wide grant, ``s.allows("services.manage", "srv-1")`` for one resource.
    """

    names: frozenset[str] = attrs.field(converter=_names, factory=frozenset)
    is_all: bool = False
    scopes: frozenset[tuple[str, str]] = attrs.field(converter=_pairs, factory=frozenset)

    def __attrs_post_init__(self) -> None:
        # Normal form, so equal grants compare equal: no scope under an account-wide grant.
        if self.scopes and (self.is_all or any(p in self.names for p, _ in self.scopes)):
            kept = frozenset(
                (p, r) for p, r in self.scopes if not self.is_all and p not in self.names
            )
            object.__setattr__(self, "scopes", kept)

    @classmethod
    def all(cls) -> PermissionSet:
        return _ALL

    @classmethod
    def of(cls, *names: str) -> PermissionSet:
        for name in names:
            if not isinstance(name, str):
                raise ValidationError(f"permission names are strings, not {name!r}")
        return cls(frozenset(names))

    @classmethod
    def on(cls, permission: str, *resource_ids: str) -> PermissionSet:
        """*permission* on each of *resource_ids* only, e.g. ``on("services.manage", "srv-1")``.

        Combine with ``|``. The catalog must mark the permission ``scoped``; the service
        checks that where the set is used.
        """
        if not isinstance(permission, str):
            raise ValidationError(f"permission names are strings, not {permission!r}")
        if not resource_ids:
            raise ValidationError(
                f"PermissionSet.on({permission!r}) needs at least one resource id, e.g. "
                f"PermissionSet.on({permission!r}, 'srv-1'); use PermissionSet.of() for an "
                "account-wide grant"
            )
        return cls(scopes=frozenset((permission, _check_resource(r)) for r in resource_ids))

    @classmethod
    def none(cls) -> PermissionSet:
        return _NONE

    def __contains__(self, name: object) -> bool:
        return self.is_all or name in self.names

    def __bool__(self) -> bool:
        return self.is_all or bool(self.names) or bool(self.scopes)

    def __repr__(self) -> str:
        if self.is_all:
            return "PermissionSet.all()"
        parts = []
        if self.names or not self.scopes:
            parts.append(
                "PermissionSet.of({})".format(", ".join(repr(n) for n in sorted(self.names)))
            )
        for name, resources in sorted(self.scoped().items()):
            parts.append(
                "PermissionSet.on({})".format(
                    ", ".join(repr(x) for x in (name, *sorted(resources)))
                )
            )
        return " | ".join(parts)

    def allows(self, permission: str, resource_id: str | None = None) -> bool:
        """True if the set grants *permission* account-wide, or on *resource_id*."""
        if self.is_all or permission in self.names:
            return True
        return resource_id is not None and (permission, resource_id) in self.scopes

    def scoped(self) -> dict[str, frozenset[str]]:
        """The scoped grants as ``{permission: resource ids}``."""
        found: dict[str, set[str]] = {}
        for name, resource in self.scopes:
            found.setdefault(name, set()).add(resource)
        return {name: frozenset(ids) for name, ids in found.items()}

    def resources(self, permission: str) -> Resources:
        """Where this set grants *permission*: everywhere, on some resources, or nowhere."""
        if self.is_all or permission in self.names:
            return Resources.all()
        return Resources(frozenset(r for p, r in self.scopes if p == permission))

    def on_resource(self, resource_id: str) -> frozenset[str]:
        """The permissions granted on *resource_id* by a scope (not account-wide)."""
        return frozenset(p for p, r in self.scopes if r == resource_id)

    def without_resource(self, resource_id: str) -> PermissionSet:
        """This set with every scoped grant on *resource_id* removed."""
        kept = frozenset((p, r) for p, r in self.scopes if r != resource_id)
        if len(kept) == len(self.scopes):
            return self
        return PermissionSet(self.names, self.is_all, kept)

    def issubset(self, other: PermissionSet) -> bool:
        """True if every grant in this set is in *other*.

        ``all()`` is a subset only of ``all()``: listing today's names is not the same as
        holding every permission the vendor may add tomorrow. A grant on a resource is
        within *other* if *other* holds the permission account-wide or on that resource;
        an account-wide grant is never within grants on resources, however many.
        """
        if other.is_all:
            return True
        if self.is_all:
            return False
        if not self.names <= other.names:
            return False
        return all(p in other.names or (p, r) in other.scopes for p, r in self.scopes)

    __le__ = issubset

    def __or__(self, other: PermissionSet) -> PermissionSet:
        if self.is_all or other.is_all:
            return _ALL
        return PermissionSet(self.names | other.names, scopes=self.scopes | other.scopes)

    def __and__(self, other: PermissionSet) -> PermissionSet:
        if self.is_all:
            return other
        if other.is_all:
            return self
        names = self.names & other.names
        scopes = frozenset(
            (p, r)
            for p, r in self.scopes | other.scopes
            if self.allows(p, r) and other.allows(p, r)
        )
        return PermissionSet(names, scopes=scopes)

    def __sub__(self, other: PermissionSet) -> PermissionSet:
        """The grants of this set that *other* does not cover.

        An account-wide grant stays even if *other* holds the permission on some
        resources: what is left is what *other* lacks to hold all of this set.
        """
        if other.is_all:
            return _NONE
        if self.is_all:
            raise ValidationError(
                "cannot subtract from PermissionSet.all(); resolve it first with resolve(catalog)"
            )
        scopes = frozenset((p, r) for p, r in self.scopes if not other.allows(p, r))
        return PermissionSet(self.names - other.names, scopes=scopes)

    def resolve(self, catalog: Catalog) -> frozenset[str]:
        """The concrete names this set grants account-wide under *catalog*."""
        if self.is_all:
            return frozenset(catalog.names())
        return self.names

    def to_list(self) -> list[str] | str:
        """``"*"`` for all, else the sorted names, then ``"permission@resource"`` for each
        scoped grant: what backends store, and what the CLI and the audit log show."""
        if self.is_all:
            return "*"
        return sorted(self.names) + sorted(f"{p}@{r}" for p, r in self.scopes)

    @classmethod
    def from_list(cls, value: list[str] | str) -> PermissionSet:
        """The inverse of :meth:`to_list`; ``"permission@resource"`` is a scoped grant."""
        if isinstance(value, str):
            if value == "*":
                return _ALL
            raise ValidationError(f"stored permissions {value!r} are neither '*' nor a list")
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            raise ValidationError(f"stored permissions {value!r} are not a list of names")
        names: set[str] = set()
        scopes: set[tuple[str, str]] = set()
        for item in value:
            name, at, resource = item.partition("@")
            if at:
                scopes.add((name, _check_resource(resource)))
            else:
                names.add(name)
        return cls(frozenset(names), scopes=frozenset(scopes))


_ALL = PermissionSet(frozenset(), is_all=True)
_NONE = PermissionSet(frozenset())


@eq_hash
@attrs.frozen(repr=False, eq=False)
class Resources:
    """Where a member may use a permission: ``Resources.all()`` (account-wide) or the
    named resource ids (possibly none). Never ``None`` for "all".

    >>> r = Resources.of("srv-1")
    >>> "srv-1" in r, "srv-2" in r, r.is_all
    (True, False, False)
    >>> Resources.all().filter(["srv-1", "srv-2"])
    ['srv-1', 'srv-2']
    """

    ids: frozenset[str] = attrs.field(converter=_names, factory=frozenset)
    is_all: bool = False

    @classmethod
    def all(cls) -> Resources:
        return _ALL_RESOURCES

    @classmethod
    def of(cls, *resource_ids: str) -> Resources:
        return cls(frozenset(_check_resource(r) for r in resource_ids))

    def __contains__(self, resource_id: object) -> bool:
        return self.is_all or resource_id in self.ids

    def __bool__(self) -> bool:
        return self.is_all or bool(self.ids)

    def __repr__(self) -> str:
        if self.is_all:
            return "Resources.all()"
        return "Resources.of({})".format(", ".join(repr(r) for r in sorted(self.ids)))

    def filter(self, resource_ids: Iterable[str]) -> list[str]:
        """The given ids this allows, in their order: a panel's list of services, filtered."""
        if self.is_all:
            return list(resource_ids)
        return [r for r in resource_ids if r in self.ids]


_ALL_RESOURCES = Resources(frozenset(), is_all=True)


def _preset_permissions(value: object) -> PermissionSet:
    if not isinstance(value, PermissionSet):
        raise ValidationError(
            f"a preset's permissions must be a PermissionSet, e.g. PermissionSet.of(...), "
            f"not {value!r}"
        )
    return value


@eq_hash
@attrs.frozen(eq=False)
class Preset:
    """A named set of permissions a panel offers with one click ("Accounting")."""

    __repr__ = attrs_repr  # what attrs prints, without compiling it at import

    name: str = attrs.field(validator=_check_name)
    label: str
    permissions: PermissionSet = attrs.field(converter=_preset_permissions)
    label_de: str = ""

    def label_for(self, language: str) -> str:
        """The label in *language* (``"en"`` or ``"de"``), English if there is none."""
        if language == "de" and self.label_de:
            return self.label_de
        return self.label


_DEFAULT_PRESETS = (
    Preset("accounting", "Accounting",
           PermissionSet.of("billing.view", "billing.pay", "contracts.sign"), "Buchhaltung"),
    Preset("technical", "Technical",
           PermissionSet.of("services.view", "services.manage", "credentials.view",
                            "firewall.unblock", "support.tickets"), "Technik"),
)  # fmt: skip


@eq_hash
@attrs.frozen(eq=False)
class Category:
    """A kind of mail a contact can subscribe to."""

    __repr__ = attrs_repr  # what attrs prints, without compiling it at import

    name: str = attrs.field(validator=_check_name)
    label: str
    label_de: str = ""

    def label_for(self, language: str) -> str:
        if language == "de" and self.label_de:
            return self.label_de
        return self.label


_DEFAULT_CATEGORIES = (
    Category("general", "General", "Allgemein"),
    Category("billing", "Billing", "Rechnungen"),
    Category("product", "Products", "Produkte"),
    Category("support", "Support", "Support"),
)


#: The most entries a list of categories passed to a call may have.
CATEGORY_LIST_LIMIT = 100


def _category_names(names: Iterable[object]) -> Iterator[str]:
    """Each name, checked: an unhashable one would otherwise be frozenset's TypeError."""
    for count, name in enumerate(names, 1):
        if count > CATEGORY_LIST_LIMIT:
            raise ValidationError(
                f"a list of categories may have at most {CATEGORY_LIST_LIMIT} entries; "
                "name each category once"
            )
        if not isinstance(name, str):
            raise ValidationError(
                f"categories must hold category names like 'billing', not {name!r}"
            )
        yield name


class Categories:
    """The vendor's set of mail categories; default ``general, billing, product, support``."""

    __slots__ = ("_by_name",)

    def __init__(self, categories: Iterable[Category | str]) -> None:
        by_name: dict[str, Category] = {}
        for c in categories:
            if not isinstance(c, Category | str):
                raise ValidationError(
                    f"categories must hold Category objects or names like 'billing', not {c!r}"
                )
            cat = c if isinstance(c, Category) else Category(c, c)
            if cat.name in by_name:
                raise ValidationError(f"category {cat.name!r} is listed twice")
            by_name[cat.name] = cat
        self._by_name = by_name

    @classmethod
    def default(cls) -> Categories:
        return cls(_DEFAULT_CATEGORIES)

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        # Only strings are names; an unhashable value must read as unknown, not TypeError.
        return isinstance(name, str) and name in self._by_name

    def __getitem__(self, name: str) -> Category:
        self.check([name])
        return self._by_name[name]

    def __repr__(self) -> str:
        return f"Categories({list(self._by_name)!r})"

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def check(self, names: Iterable[str]) -> frozenset[str]:
        """Return *names* as a frozenset if each is a known category, else raise."""
        if isinstance(names, str):
            raise ValidationError(
                f"categories must be a collection of names, not the string {names!r}; "
                f"write [{names!r}]"
            )
        # A mapping would subscribe its keys whatever their values say ({"billing": False}),
        # and bytes iterate as numbers.
        if not isinstance(names, Iterable) or isinstance(names, Mapping | bytes | bytearray):
            raise ValidationError(
                f"categories must be a collection of names like ['billing'], not {names!r}"
            )
        result = frozenset(_category_names(names))
        for name in result:
            if name not in self._by_name:
                raise UnknownCategory(
                    f"unknown mail category {name!r}; use one of: " + ", ".join(self._by_name)
                )
        return result
