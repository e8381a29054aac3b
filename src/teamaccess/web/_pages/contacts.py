"""The contacts page (Kontakte): add, change and remove contacts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ... import (
    AlreadyContact,
    Conflict,
    ContactNotFound,
    InvalidEmail,
    PermissionDenied,
    TeamAccessError,
    UnknownCategory,
    ValidationError,
    error_message,
    normalize_email,
)
from ... import Contact as _Contact
from ..._emails import NAME_LIMIT
from .._core import Redirect, Render, Request, Result
from .._i18n import translate
from .base import _PageBase

__all__ = ["ContactPages"]


class ContactPages(_PageBase):
    """The contacts page (Kontakte): add, change and remove contacts."""

    def _contact_form(self, request: Request) -> dict[str, Any]:
        # Any: the values are strings, "categories" a list; the library checks them.
        return {
            "name": request.value("name").strip(),
            "email": request.value("email").strip(),
            "company": request.value("company").strip(),
            "phone": request.value("phone").strip(),
            "role": request.value("role").strip(),
            "categories": request.values("category"),
        }

    def _saved_already(self, account_id: str, form: dict[str, Any]) -> bool:
        """Whether the account has a contact with exactly these details."""
        try:
            key = normalize_email(form["email"]).key
        except ValidationError:
            return False  # the library words the error
        return any(
            c.name == form["name"]
            and normalize_email(c.email).key == key
            and c.categories == frozenset(form["categories"])
            and (c.company, c.phone, c.role) == (form["company"], form["phone"], form["role"])
            for c in self.team.contacts(account_id)
        )

    def _contact_errors(self, form: dict[str, Any], lang: str) -> dict[str, str]:
        errors = {}
        if not form["name"]:
            errors["name"] = translate("Please enter a name.", lang)
        if not form["email"]:
            errors["email"] = translate("Please enter an email address.", lang)
        if not form["categories"]:
            # Said at the boxes: a contact receives only the mail ticked here.
            errors["categories"] = translate(
                "Choose at least one kind of mail this contact receives.", lang
            )
        for field in ("name", "company", "phone", "role"):
            if len(form[field]) > NAME_LIMIT:
                # Said at the field, with the limit: the library's error names no field.
                errors[field] = translate("At most {limit} characters, please.", lang).format(
                    limit=NAME_LIMIT
                )
        return errors

    @staticmethod
    def _contact_field(exc: TeamAccessError) -> str:
        if isinstance(exc, InvalidEmail | AlreadyContact):
            return "email"
        if isinstance(exc, UnknownCategory):
            return "categories"
        return "form"

    def _categories(self, lang: str, checked: Iterable[str]) -> list[dict[str, Any]]:
        chosen = set(checked)
        return [
            {"name": c.name, "label": c.label_for(lang), "checked": c.name in chosen}
            for c in self.team.categories
        ]

    def _contacts(self, request: Request, account_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        lang = request.language
        context = self._base(account, me, "contacts")
        form: dict[str, Any] = {"name": "", "email": "", "company": "", "phone": "",
                                "role": "", "categories": ["general"]}  # fmt: skip
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            self._require_page(me, account, "contacts.manage", lang)
            form = self._contact_form(request)
            errors = self._contact_errors(form, lang)
            if not errors and self._saved_already(account_id, form):
                # The form sent twice (a double click): the first one saved it.
                notice = translate("The contact {name} is saved.", lang)
                return Redirect("contacts", {"account_id": account_id},
                                notice=notice.format(name=form["name"]))  # fmt: skip
            if not errors:
                try:
                    contact = self.team.add_contact(
                        account_id, actor_id=user.id, name=form["name"], email=form["email"],
                        categories=form["categories"], company=form["company"],
                        phone=form["phone"], role=form["role"],
                    )  # fmt: skip
                except (ValidationError, Conflict, PermissionDenied) as exc:
                    errors[self._contact_field(exc)] = error_message(exc, lang)
                else:
                    notice = translate("The contact {name} is saved.", lang)
                    return Redirect("contacts", {"account_id": account_id},
                                    notice=notice.format(name=contact.name))  # fmt: skip
            status = 400
        labels = {c.name: c.label_for(lang) for c in self.team.categories}
        context.update(
            contacts=[
                {"contact": c, "categories": [labels.get(n, n) for n in sorted(c.categories)]}
                for c in self.team.contacts(account_id)
            ],
            form=form,
            errors=errors,
            categories=self._categories(lang, form["categories"]),
            text_max=NAME_LIMIT,
        )
        return Render("teamaccess/contacts.html", context, status)

    def _contact(self, request: Request, account_id: str, contact_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        lang = request.language
        self._require_page(me, account, "contacts.manage", lang)
        contact = self._own_contact(account_id, contact_id)
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            form = self._contact_form(request)
            errors = self._contact_errors(form, lang)
            if not errors:
                try:
                    self.team.update_contact(
                        contact_id, actor_id=user.id, name=form["name"], email=form["email"],
                        categories=form["categories"], company=form["company"],
                        phone=form["phone"], role=form["role"],
                    )  # fmt: skip
                except (ValidationError, Conflict, PermissionDenied) as exc:
                    errors[self._contact_field(exc)] = error_message(exc, lang)
                else:
                    notice = translate("The contact {name} is saved.", lang)
                    return Redirect("contacts", {"account_id": account_id},
                                    notice=notice.format(name=form["name"]))  # fmt: skip
            status = 400
        else:
            form = {
                "name": contact.name, "email": contact.email, "company": contact.company,
                "phone": contact.phone, "role": contact.role,
                "categories": sorted(contact.categories),
            }  # fmt: skip
        context = self._base(account, me, "contacts")
        context.update(
            contact=contact,
            form=form,
            errors=errors,
            categories=self._categories(lang, form["categories"]),
            text_max=NAME_LIMIT,
        )
        return Render("teamaccess/contact.html", context, status)

    def _remove_contact(self, request: Request, account_id: str, contact_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        try:
            contact = self._own_contact(account_id, contact_id)
        except ContactNotFound:
            if not self._confirmed(request):
                raise
            # Confirmed twice (two tabs, a double click): the first one removed it, and
            # this one lands where that one did.
            self._require_page(me, account, "contacts.manage", request.language)
            if not self._removed_lately(account_id, ("contact.removed",), contact_id):
                raise
            notice = translate("This contact was already removed.", request.language)
            return Redirect("contacts", {"account_id": account_id}, notice=notice)
        if not self._confirmed(request):
            lang = request.language
            self._require_page(me, account, "contacts.manage", lang)
            labels = [c.label_for(lang) for c in self.team.categories
                      if c.name in contact.categories]  # fmt: skip
            effects = [
                translate("{name} no longer receives the emails of this customer account "
                          "({categories}).", lang).format(
                    name=contact.name, categories=", ".join(labels))
                if labels else "",
                translate("Emails already waiting to be sent to {email} still go out.",
                          lang).format(email=contact.email),
                translate("A contact has no login, so nothing else changes.", lang),
            ]  # fmt: skip
            back = {"account_id": account_id}
            return self._confirm(
                request, account, me, "contacts",
                title=translate("Remove contact", lang),
                question=translate("Remove the contact {name} ({email}) from {account}?",
                                   lang).format(
                    name=contact.name, email=contact.email, account=account.name),
                effects=[e for e in effects if e],
                button=translate("Remove contact", lang),
                action=("remove_contact", {**back, "contact_id": contact_id}),
                cancel=("contacts", back),
            )  # fmt: skip
        self.team.remove_contact(contact_id, actor_id=user.id)
        notice = translate("The contact {name} was removed.", request.language)
        return Redirect("contacts", {"account_id": account_id},
                        notice=notice.format(name=contact.name))  # fmt: skip

    def _own_contact(self, account_id: str, contact_id: str) -> _Contact:
        contact = self.team.get_contact(contact_id)
        if contact.account_id != account_id:
            raise ContactNotFound(f"no contact {contact_id!r} in this account")
        return contact
