"""Properties of the PermissionSet algebra and of Catalog."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests import strategies as ts

from teamaccess import (
    Catalog,
    Invitation,
    Permission,
    PermissionSet,
    UnknownPermission,
    ValidationError,
)

ALL = PermissionSet.all()
NONE = PermissionSet.none()
sets = ts.permission_sets()
concrete = ts.concrete_permission_sets


class TestSubset:
    """issubset is a partial order with none() at the bottom and all() at the top."""

    @given(sets)
    def test_reflexive_and_bounded(self, a: PermissionSet) -> None:
        assert a.issubset(a)
        assert a.issubset(ALL)
        assert NONE.issubset(a)
        assert a <= ALL

    @given(sets, sets, sets)
    def test_transitive(self, a: PermissionSet, b: PermissionSet, c: PermissionSet) -> None:
        if a <= b and b <= c:
            assert a <= c

    @given(sets, sets)
    def test_antisymmetric(self, a: PermissionSet, b: PermissionSet) -> None:
        if a <= b and b <= a:
            assert a == b

    @given(concrete, concrete)
    def test_concrete_is_name_inclusion(self, a: PermissionSet, b: PermissionSet) -> None:
        assert a.issubset(b) == (a.names <= b.names)
        assert a.issubset(b) == all(name in b for name in a.names)

    @given(st.frozensets(ts.permission_names))
    def test_all_is_not_any_list_of_names(self, names: frozenset[str]) -> None:
        # Listing today's names is not holding what the vendor adds tomorrow.
        assert not ALL.issubset(PermissionSet.of(*names))

    def test_all_of_every_default_name_is_not_all(self) -> None:
        assert not ALL.issubset(PermissionSet.of(*ts.DEFAULT_NAMES))


class TestUnionAndIntersection:
    """| and & are lattice operations; all() absorbs | and is the identity of &."""

    @given(sets, sets)
    def test_commutative(self, a: PermissionSet, b: PermissionSet) -> None:
        assert a | b == b | a
        assert a & b == b & a

    @given(sets, sets, sets)
    def test_associative(self, a: PermissionSet, b: PermissionSet, c: PermissionSet) -> None:
        assert (a | b) | c == a | (b | c)
        assert (a & b) & c == a & (b & c)

    @given(sets, sets)
    def test_bounds(self, a: PermissionSet, b: PermissionSet) -> None:
        assert a <= a | b
        assert b <= a | b
        assert a & b <= a
        assert a & b <= b

    @given(sets, sets)
    def test_absorption(self, a: PermissionSet, b: PermissionSet) -> None:
        assert a | (a & b) == a
        assert a & (a | b) == a

    @given(sets)
    def test_idempotent_and_identities(self, a: PermissionSet) -> None:
        assert a | a == a
        assert a & a == a
        assert a | ALL == ALL
        assert a & ALL == a
        assert a | NONE == a
        assert a & NONE == NONE

    @given(concrete, concrete)
    def test_concrete_matches_frozenset(self, a: PermissionSet, b: PermissionSet) -> None:
        assert (a | b).names == a.names | b.names
        assert (a & b).names == a.names & b.names
        assert (a - b).names == a.names - b.names


class TestDifference:
    """Subtraction is defined for concrete sets and against all()."""

    @given(concrete, concrete)
    def test_partition(self, a: PermissionSet, b: PermissionSet) -> None:
        assert (a - b) | (a & b) == a
        assert ((a - b) & b) == NONE

    @given(sets)
    def test_minus_all_is_none(self, a: PermissionSet) -> None:
        assert a - ALL == NONE

    @given(concrete)
    def test_all_minus_concrete_refuses(self, a: PermissionSet) -> None:
        with pytest.raises(ValidationError, match=r"resolve it first"):
            ALL - a


class TestMembershipAndTruth:
    """``in`` and ``bool`` agree with the names, and all() holds every name."""

    @given(ts.permission_names, concrete)
    def test_contains(self, name: str, a: PermissionSet) -> None:
        assert (name in a) == (name in a.names)
        assert name in ALL

    @given(concrete)
    def test_bool(self, a: PermissionSet) -> None:
        assert bool(a) == bool(a.names)
        assert ALL
        assert not NONE

    def test_of_rejects_non_strings(self) -> None:
        with pytest.raises(ValidationError, match=r"permission names are strings"):
            PermissionSet.of("billing.view", 3)  # type: ignore[arg-type]


class TestStorageForm:
    """to_list/from_list round-trip; all() is stored as "*"."""

    @given(sets)
    def test_round_trip(self, a: PermissionSet) -> None:
        assert PermissionSet.from_list(a.to_list()) == a

    @given(concrete)
    def test_sorted_list(self, a: PermissionSet) -> None:
        assert a.to_list() == sorted(a.names)

    def test_all_is_a_star(self) -> None:
        assert ALL.to_list() == "*"
        with pytest.raises(ValidationError, match=r"neither"):
            PermissionSet.from_list("billing.view")

    @given(sets)
    def test_repr_names_the_set(self, a: PermissionSet) -> None:
        assert repr(a).startswith("PermissionSet.")
        assert eval(repr(a), {"PermissionSet": PermissionSet}) == a  # noqa: S307


class TestCatalog:
    """A catalog keeps its order, rejects duplicates, and resolves all() to its names."""

    @given(ts.catalogs())
    def test_order_and_lookup(self, catalog: Catalog) -> None:
        names = catalog.names()
        assert [p.name for p in catalog] == list(names)
        assert len(catalog) == len(names)
        for perm in catalog:
            assert perm.name in catalog
            assert catalog[perm.name] == perm

    @given(ts.catalogs(min_size=1))
    def test_duplicates_are_rejected(self, catalog: Catalog) -> None:
        first = next(iter(catalog))
        with pytest.raises(ValidationError, match=r"listed twice"):
            Catalog([*catalog, first.name])

    @given(ts.catalogs(), st.data())
    def test_check(self, catalog: Catalog, data: st.DataObject) -> None:
        subset = (
            data.draw(st.frozensets(st.sampled_from(catalog.names())))
            if len(catalog)
            else frozenset()
        )
        ps = PermissionSet.of(*subset)
        assert catalog.check(ps) == ps
        assert catalog.check(ALL) == ALL
        outsider = data.draw(ts.permission_names.filter(lambda n: n not in catalog))
        with pytest.raises(UnknownPermission, match=r"unknown permission"):
            catalog.check(PermissionSet.of(*subset, outsider))
        with pytest.raises(UnknownPermission):
            catalog[outsider]

    @given(ts.catalogs(), st.data())
    def test_resolve(self, catalog: Catalog, data: st.DataObject) -> None:
        assert ALL.resolve(catalog) == frozenset(catalog.names())
        if len(catalog):
            a = PermissionSet.of(*data.draw(st.frozensets(st.sampled_from(catalog.names()))))
            assert a.resolve(catalog) == a.names
            assert a.resolve(catalog) <= ALL.resolve(catalog)

    @given(ts.catalogs(), ts.permissions())
    def test_all_follows_a_grown_catalog(self, catalog: Catalog, extra: Permission) -> None:
        if extra.name in catalog:
            return
        grown = Catalog([*catalog, extra])
        assert extra.name in ALL.resolve(grown)
        assert extra.name not in ALL.resolve(catalog)

    @given(ts.permissions())
    def test_labels(self, perm: Permission) -> None:
        assert perm.label_for("en") == perm.label
        assert perm.label_for("de") == (perm.label_de or perm.label)

    @pytest.mark.parametrize("name", ["", " x", "a\nb", "a\0"])
    def test_bad_names(self, name: str) -> None:
        with pytest.raises(ValidationError, match=r"non-empty single line"):
            Permission(name, "label")


class TestDomainStrategies:
    """The domain strategies build valid objects; an invitation expires at its expiry."""

    @given(ts.invitations(), ts.times)
    def test_status_at(self, inv: Invitation, now: object) -> None:
        status = inv.status_at(now)  # type: ignore[arg-type]
        if inv.status == "pending" and now >= inv.expires_at:  # type: ignore[operator]
            assert status == "expired"
        else:
            assert status == inv.status

    @given(ts.accounts, ts.members, ts.audit_events)
    def test_frozen(self, account: object, member: object, event: object) -> None:
        for obj in (account, member, event):
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                obj.account_id = "x"  # type: ignore[attr-defined]
            assert attrs.evolve(obj) == obj
