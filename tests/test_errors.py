"""The error tree, exactly as DESIGN.md draws it."""

from __future__ import annotations

import importlib

import pytest

import teamaccess
from teamaccess import TeamAccessError

TREE: dict[str, tuple[str, type[Exception] | None]] = {
    # name: (parent, builtin it also subclasses)
    "ValidationError": ("TeamAccessError", ValueError),
    "InvalidEmail": ("ValidationError", ValueError),
    "UnknownPermission": ("ValidationError", ValueError),
    "UnknownCategory": ("ValidationError", ValueError),
    "InvalidImport": ("ValidationError", ValueError),
    "NotFound": ("TeamAccessError", LookupError),
    "AccountNotFound": ("NotFound", LookupError),
    "MemberNotFound": ("NotFound", LookupError),
    "InvitationNotFound": ("NotFound", LookupError),
    "ContactNotFound": ("NotFound", LookupError),
    "PermissionDenied": ("TeamAccessError", None),
    "Conflict": ("TeamAccessError", None),
    "AlreadyMember": ("Conflict", None),
    "AlreadyInvited": ("Conflict", None),
    "AlreadyContact": ("Conflict", None),
    "OwnershipRequired": ("Conflict", None),
    "InvitationError": ("TeamAccessError", None),
    "InvalidInvitation": ("InvitationError", None),
    "InvitationExpired": ("InvitationError", None),
    "InvitationRevoked": ("InvitationError", None),
    "InvitationUsed": ("InvitationError", None),
    "EmailMismatch": ("InvitationError", None),
    "RateLimited": ("TeamAccessError", None),
    "DeliveryFailed": ("TeamAccessError", None),
    "DeliveryRefused": ("DeliveryFailed", None),
    "StorageError": ("TeamAccessError", None),
    "ImportInterrupted": ("StorageError", None),
    "ScrubFailed": ("StorageError", None),
    # the clock port's reading: a fault of the configuration, not of the input
    "ClockError": ("TeamAccessError", ValueError),
}


class TestErrorTree:
    """Each error has the parent DESIGN.md names and subclasses the builtin it resembles."""

    def test_root(self) -> None:
        assert TeamAccessError.__bases__ == (Exception,)

    @pytest.mark.parametrize("name", sorted(TREE))
    def test_parent(self, name: str) -> None:
        parent, builtin = TREE[name]
        cls = getattr(teamaccess, name)
        assert getattr(teamaccess, parent) in cls.__bases__
        assert issubclass(cls, TeamAccessError)
        if builtin is not None:
            assert issubclass(cls, builtin)

    def test_no_other_errors(self) -> None:
        exported = {
            name
            for name in teamaccess.__all__
            if isinstance(getattr(teamaccess, name), type)
            and issubclass(getattr(teamaccess, name), BaseException)
        }
        assert exported == {*TREE, "TeamAccessError"}

    def test_direct_children_of_root(self) -> None:
        children = {cls.__name__ for cls in TeamAccessError.__subclasses__()}
        assert children == {
            name for name, (parent, _) in TREE.items() if parent == "TeamAccessError"
        }

    @pytest.mark.parametrize("name", [n for n, (_, builtin) in TREE.items() if builtin is None])
    def test_others_are_not_value_or_lookup_errors(self, name: str) -> None:
        cls = getattr(teamaccess, name)
        assert not issubclass(cls, ValueError | LookupError)

    def test_extra_attributes(self) -> None:
        denied = teamaccess.PermissionDenied("no", user_id="u", account_id="a", permission="p")
        assert (denied.user_id, denied.account_id, denied.permission) == ("u", "a", "p")
        assert teamaccess.RateLimited("slow down").retry_after is None
        failed = teamaccess.DeliveryFailed("later", message_ids=["m1"], invitation_id="i1")
        assert (failed.message_ids, failed.invitation_id) == (("m1",), "i1")
        assert failed.invitation is None
        assert teamaccess.AlreadyInvited("twice", invitation_id="i2").invitation_id == "i2"
        assert teamaccess.AlreadyInvited("twice").invitation_id is None

    def test_tree_is_drawn_in_the_module_docstring(self) -> None:
        text = importlib.import_module("teamaccess._errors").__doc__ or ""
        for name in TREE:
            assert f"── {name}" in text, name
        assert text.lstrip().splitlines()[0] == "The one exception tree of teamaccess."
