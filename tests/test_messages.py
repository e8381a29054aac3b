"""error_message(): a customer-facing text for every error class, in English and German."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

import teamaccess
from teamaccess import (
    Catalog,
    InvalidEmail,
    PermissionDenied,
    RateLimited,
    TeamAccessError,
    error_message,
)
from teamaccess._messages import _MESSAGES

ERRORS = sorted(
    (
        value
        for name in teamaccess.__all__
        if isinstance(value := getattr(teamaccess, name), type)
        and issubclass(value, TeamAccessError)
    ),
    key=lambda cls: cls.__name__,
)
CLASS_NAMES = re.compile("|".join(cls.__name__ for cls in ERRORS))


class TestErrorMessage:
    """Each class has its own text in both languages, free of ids and Python names."""

    @pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
    def test_own_text_in_both_languages(self, cls: type[TeamAccessError]) -> None:
        assert cls in _MESSAGES, f"{cls.__name__} needs its own entry in _messages._MESSAGES"
        english, german = _MESSAGES[cls]
        assert english != german
        exc = cls.__new__(cls)
        Exception.__init__(exc, "user 'u1' may not use 'x' in account 'acc_1'")
        for language, text in (("en", english), ("de", german)):
            shown = error_message(exc, language)
            assert shown.startswith(text.rstrip("."))
            assert not CLASS_NAMES.search(shown)
            assert "acc_" not in shown
            assert "'" not in shown

    def test_texts_differ_per_class(self) -> None:
        english = [texts[0] for texts in _MESSAGES.values()]
        assert len(set(english)) == len(english)

    def test_developer_text_is_not_shown(self) -> None:
        exc = InvalidEmail("'x' is not a valid email address: An email address must have an @")
        assert error_message(exc) == (
            "This is not a valid email address. Please check it (for example name@example.com)."
        )
        assert error_message(exc, "de").startswith("Das ist keine gültige E-Mail-Adresse.")

    def test_rate_limited_says_when(self) -> None:
        exc = RateLimited("x", retry_after=datetime(2026, 5, 1, 14, 30, tzinfo=UTC))
        assert error_message(exc).endswith("Please try again after 2026-05-01 14:30 UTC.")
        assert error_message(exc, "de").endswith("nach 01.05.2026, 14:30 Uhr UTC erneut.")
        assert error_message(RateLimited("x")).endswith("Please try again later.")

    def test_permission_denied_names_the_label(self) -> None:
        exc = PermissionDenied("x", permission="billing.view")
        catalog = Catalog.default()
        assert error_message(exc, "de", catalog=catalog).endswith("(fehlt: Rechnungen einsehen)")
        assert error_message(exc, catalog=catalog).endswith("(missing: View invoices)")
        assert "missing" not in error_message(exc)

    def test_subclass_reads_as_parent(self) -> None:
        class VendorsOwn(InvalidEmail):
            pass

        assert error_message(VendorsOwn("x")) == error_message(InvalidEmail("y"))

    def test_foreign_exception_is_not_echoed(self) -> None:
        shown = error_message(KeyError("secret internals"), "en")
        assert "secret" not in shown
        assert shown.startswith("Something went wrong.")

    def test_unknown_language_is_english(self) -> None:
        assert error_message(InvalidEmail("x"), "fr") == error_message(InvalidEmail("x"))


class TestPermissionDescriptions:
    """The default catalog describes each permission in German too."""

    def test_every_default_permission(self) -> None:
        for perm in Catalog.default():
            assert perm.description_for("de")
            assert perm.description_for("de") != perm.description
            assert perm.description_for("en") == perm.description

    def test_vendor_permission_without_german_falls_back(self) -> None:
        perm = Catalog([teamaccess.Permission("x.y", "X", description="Does X")])["x.y"]
        assert perm.description_for("de") == "Does X"
