"""Permissions, the vendor's catalog of them, and mail categories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import attrs

from ._errors import UnknownCategory, UnknownPermission, ValidationError

__all__ = ["Catalog", "Categories", "Category", "Permission", "PermissionSet"]


def _check_name(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str):
        raise ValidationError(f"{attribute.name} must be a string, not {type(value).__name__}")
    if not value or any(c in value for c in "\r\n\0") or value != value.strip():
        raise ValidationError(
            f"{attribute.name} {value!r} must be a non-empty single line without surrounding spaces"
        )


@attrs.frozen
class Permission:
    """One function of the customer center a member may be allowed to use."""

    name: str = attrs.field(validator=_check_name)
    label: str
    group: str = ""
    description: str = ""
    label_de: str = ""
    description_de: str = ""

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
               "See products and services", "Dienste einsehen"),
    Permission("services.manage", "Manage services", "Services",
               "Change, upgrade or cancel services", "Dienste verwalten"),
    Permission("credentials.view", "View access data", "Services",
               "See server information and access data",
               "Serverinformationen und Zugangsdaten einsehen"),
    Permission("firewall.unblock", "Lift IP blocks", "Services",
               "Lift an IP block", "IP-Sperre aufheben"),
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
    """The vendor's permissions, in display order.

    >>> Catalog.default().names()[:2]
    ('profile.edit', 'users.manage')
    """

    __slots__ = ("_by_name", "_permissions")

    def __init__(self, permissions: Iterable[Permission | str]) -> None:
        perms = tuple(p if isinstance(p, Permission) else Permission(p, p) for p in permissions)
        by_name: dict[str, Permission] = {}
        for perm in perms:
            if perm.name in by_name:
                raise ValidationError(f"permission {perm.name!r} is listed twice in the catalog")
            by_name[perm.name] = perm
        self._permissions = perms
        self._by_name = by_name

    @classmethod
    def default(cls) -> Catalog:
        """The thirteen functions of a hosting customer center."""
        return cls(
            attrs.evolve(p, description_de=_DEFAULT_DESCRIPTIONS_DE[p.name])
            for p in _DEFAULT_PERMISSIONS
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
        except KeyError:
            raise self.unknown(name) from None

    def __repr__(self) -> str:
        return f"Catalog({list(self._by_name)!r})"

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def unknown(self, name: object) -> UnknownPermission:
        """The error for a name that is not in this catalog."""
        return UnknownPermission(
            f"unknown permission {name!r}; use one of the catalog's names: "
            + ", ".join(self._by_name)
        )

    def check(self, permissions: PermissionSet) -> PermissionSet:
        """Return *permissions* if every name is in the catalog, else raise."""
        for name in permissions.names:
            if name not in self._by_name:
                raise self.unknown(name)
        return permissions


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen(repr=False)
class PermissionSet:
    """Either *all* permissions of the catalog in force, or a set of names.

    ``PermissionSet.all()`` stays "all" when the vendor adds permissions later.
    """

    names: frozenset[str] = attrs.field(converter=_names, factory=frozenset)
    is_all: bool = False

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
    def none(cls) -> PermissionSet:
        return _NONE

    def __contains__(self, name: object) -> bool:
        return self.is_all or name in self.names

    def __bool__(self) -> bool:
        return self.is_all or bool(self.names)

    def __repr__(self) -> str:
        if self.is_all:
            return "PermissionSet.all()"
        return "PermissionSet.of({})".format(", ".join(repr(n) for n in sorted(self.names)))

    def issubset(self, other: PermissionSet) -> bool:
        """True if every permission in this set is in *other*.

        ``all()`` is a subset only of ``all()``: listing today's names is not the same as
        holding every permission the vendor may add tomorrow.
        """
        if other.is_all:
            return True
        if self.is_all:
            return False
        return self.names <= other.names

    __le__ = issubset

    def __or__(self, other: PermissionSet) -> PermissionSet:
        if self.is_all or other.is_all:
            return _ALL
        return PermissionSet(self.names | other.names)

    def __and__(self, other: PermissionSet) -> PermissionSet:
        if self.is_all:
            return other
        if other.is_all:
            return self
        return PermissionSet(self.names & other.names)

    def __sub__(self, other: PermissionSet) -> PermissionSet:
        if other.is_all:
            return _NONE
        if self.is_all:
            raise ValidationError(
                "cannot subtract from PermissionSet.all(); resolve it first with resolve(catalog)"
            )
        return PermissionSet(self.names - other.names)

    def resolve(self, catalog: Catalog) -> frozenset[str]:
        """The concrete names this set grants under *catalog*."""
        if self.is_all:
            return frozenset(catalog.names())
        return self.names

    def to_list(self) -> list[str] | str:
        """``"*"`` for all, else the sorted names: what backends store."""
        return "*" if self.is_all else sorted(self.names)

    @classmethod
    def from_list(cls, value: list[str] | str) -> PermissionSet:
        if isinstance(value, str):
            if value == "*":
                return _ALL
            raise ValidationError(f"stored permissions {value!r} are neither '*' nor a list")
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            raise ValidationError(f"stored permissions {value!r} are not a list of names")
        return cls(frozenset(value))


_ALL = PermissionSet(frozenset(), is_all=True)
_NONE = PermissionSet(frozenset())


@attrs.frozen
class Category:
    """A kind of mail a contact can subscribe to."""

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
