"""The users page (Benutzerverwaltung): the list of users, the invite form and the
rows of open invitations (resend, revoke); the account chooser.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ... import (
    NOTE_MAX_LENGTH,
    AlreadyInvited,
    Conflict,
    DeliveryFailed,
    InvalidEmail,
    Invitation,
    InvitationNotFound,
    InvitationRevoked,
    InvitationUsed,
    Member,
    PermissionDenied,
    PermissionSet,
    RateLimited,
    TeamAccessError,
    UnknownPermission,
    ValidationError,
    error_message,
)
from .._core import Redirect, Render, Request, Result
from .._i18n import translate
from .._view import format_datetime, permission_groups, person
from .base import _BadChoice, _PageBase

__all__ = ["UsersPages"]

#: how long after an invitation the same form posted again counts as a double click
_DOUBLE_SUBMIT = timedelta(minutes=2)

#: how an invitation is left once its invitee answered it
_ANSWERED = ("accepted", "declined")


class UsersPages(_PageBase):
    """The users page (Benutzerverwaltung): the list of users, the invite form and the"""

    # -- accounts ---------------------------------------------------------------------

    def _index(self, request: Request) -> Result:
        user = self._user(request)
        accounts = self.team.accounts_for(user.id)
        # Not for a suspended or expired member: their account's page says why, and its
        # "To my customer accounts" would lead straight back to it.
        if (
            len(accounts) == 1
            and not request.notices
            and self.team.get_member(accounts[0].id, user.id).status == "active"
        ):
            return Redirect("users", {"account_id": accounts[0].id})
        return Render("teamaccess/index.html", {"accounts": accounts})

    # -- users --------------------------------------------------------------------------

    def _users(
        self,
        request: Request,
        account_id: str,
        *,
        form: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Result:
        _, account, me = self._membership(request, account_id)
        lang = request.language
        context = self._base(account, me, "users")
        manage = context["can_manage_users"]
        emails = self._emails(account_id)
        names = self._resource_names(account_id)
        members = []
        for member in self.team.members(account_id):
            is_me = member.user_id == me.user_id
            members.append(
                {
                    "member": member,
                    "is_me": is_me,
                    "all": member.permissions.is_all,
                    "groups": permission_groups(self.team.catalog, lang, only=member.permissions),
                    "scopes": self._scopes(member.permissions, lang, names),
                    # A hint for the buttons only: the library decides on the POST.
                    "manageable": manage
                    and not is_me
                    and not member.is_owner
                    and member.permissions.issubset(me.permissions),
                    "can_leave": is_me and not member.is_owner,
                }
            )
        invitations = [
            {
                "invitation": inv,
                "all": inv.permissions.is_all,
                "groups": permission_groups(self.team.catalog, lang, only=inv.permissions),
                "scopes": self._scopes(inv.permissions, lang, names),
                "inviter": person(inv.invited_by, emails, lang),
            }
            for inv in (self.team.pending_invitations(account_id) if manage else [])
        ]
        form = form or {"email": "", "scope": "all", "selected": (), "note": "", "until": ""}
        context.update(
            members=members,
            invitations=invitations,
            form=form,
            errors=errors or {},
            chooser=self._chooser(
                me,
                lang,
                scope=form["scope"],
                selected=form["selected"],
                resources=names,
                picked=form.get("picked"),
            ),
            note_max=NOTE_MAX_LENGTH,
        )
        return Render("teamaccess/users.html", context, status)

    def _invite(self, request: Request, account_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        lang = request.language
        self._require_page(me, account, "users.manage", lang)
        form: dict[str, Any] = {
            "email": request.value("email").strip(),
            "scope": self._scope(request),
            "selected": request.values("permission"),
            "note": request.value("note"),
            "until": request.value("until").strip(),
            "picked": self._picked(request),
        }
        errors: dict[str, str] = {}
        names = self._resource_names(account_id)
        chosen = PermissionSet.none()
        try:
            until = self._day(form["until"])
        except ValueError:
            errors["until"] = translate("Please enter a date such as 2026-12-31.", lang)
        if not form["email"]:
            errors["email"] = translate("Please enter the email address to invite.", lang)
        elif self._nothing_chosen(request):
            errors["permissions"] = translate(
                "Choose at least one permission, or give all permissions.", lang
            )
        else:
            try:
                chosen = self._chosen(request, names)
            except _BadChoice as exc:
                errors["permissions"] = str(exc)
            except ValidationError as exc:
                # A preset gone since the form was shown: the form comes back, not a
                # page that loses what was typed.
                errors["permissions"] = error_message(exc, lang, catalog=self.team.catalog)
        if not errors:
            extra: dict[str, Any] = {}
            if form["note"].strip():
                extra["note"] = form["note"]
            if until is not None:
                extra["access_until"] = until
            try:
                inv = self.team.invite(
                    account_id,
                    actor_id=user.id,
                    email=form["email"],
                    permissions=chosen,
                    language=lang,
                    **extra,
                )
            except DeliveryFailed:
                # Stored; the mail waits in the outbox and is retried.
                return Redirect(
                    "users",
                    {"account_id": account_id},
                    notice=error_message(DeliveryFailed(""), lang),
                )
            except (InvalidEmail, ValidationError, Conflict, RateLimited, PermissionDenied) as exc:
                if isinstance(exc, AlreadyInvited) and self._just_sent(exc, user.id, chosen):
                    # The form sent twice (a double click): the first one did the work.
                    notice = translate("The invitation to {email} is on its way.", lang)
                    return Redirect("users", {"account_id": account_id},
                                    notice=notice.format(email=form["email"]))  # fmt: skip
                field = self._invite_field(exc, form)
                errors[field] = error_message(exc, lang, catalog=self.team.catalog)
                if field == "until" and isinstance(exc, ValidationError):
                    errors[field] = translate("Choose a day in the future.", lang)
                if isinstance(exc, AlreadyInvited) and exc.invitation_id:
                    form["pending_id"] = exc.invitation_id  # the page links to its row
            else:
                notice = translate("The invitation to {email} is on its way.", lang)
                return Redirect(
                    "users", {"account_id": account_id}, notice=notice.format(email=inv.email)
                )
        return self._users(request, account_id, form=form, errors=errors, status=400)

    def _just_sent(self, exc: AlreadyInvited, actor_id: str, chosen: PermissionSet) -> bool:
        """Whether the open invitation is this form's own, sent moments ago: the same
        inviter, the same permissions, sent once, within the last two minutes."""
        if not exc.invitation_id:
            return False
        inv = self.team.get_invitation(exc.invitation_id)
        return (
            inv.status == "pending"
            and inv.invited_by == actor_id
            and inv.sent_count == 1
            and self.team.now() - inv.created_at <= _DOUBLE_SUBMIT
            and inv.permissions == chosen
        )

    @staticmethod
    def _invite_field(exc: TeamAccessError, form: dict[str, Any]) -> str:
        """Which field of the invite form an error belongs next to."""
        if isinstance(exc, PermissionDenied) and exc.access_until is not None:
            return "until"  # an end later than the actor's own, or none
        if isinstance(exc, (UnknownPermission, PermissionDenied)):
            # A grant beyond the actor's own (a tampered form, or the actor's own
            # permissions changed meanwhile): the chooser is what to fix.
            return "permissions"
        if isinstance(exc, ValidationError) and not isinstance(exc, InvalidEmail):
            text = str(exc)
            if text.startswith("note"):
                return "note"
            if text.startswith("access_until"):
                return "until"
        return "email"

    def _resend(self, request: Request, account_id: str, invitation_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        lang = request.language
        self._require_page(me, account, "users.manage", lang)
        inv = self._own_invitation(account_id, invitation_id)
        notice = translate("The invitation to {email} was sent again.", lang)
        seen = request.value("sent_count")
        if seen and seen != str(inv.sent_count):
            # Sent again since this page showed it: a double click, or a second tab. One
            # more mail would only kill the link the person was just sent.
            return Redirect(
                "users", {"account_id": account_id}, notice=notice.format(email=inv.email)
            )
        try:
            self.team.resend_invitation(inv.id, actor_id=user.id)
        except DeliveryFailed:
            return Redirect("users", {"account_id": account_id},
                            notice=error_message(DeliveryFailed(""), lang))  # fmt: skip
        except PermissionDenied as exc:
            why = self._resend_refused(exc, inv, me, lang)
            if why is None:
                raise  # users.manage itself gone meanwhile: the general page says so
            # At the invitation's row, saying why: a resend gives what the invitation
            # gives, which this member may not give (a general "not allowed" said neither).
            errors = {f"invitation-{inv.id}": why}
            return self._users(request, account_id, errors=errors, status=403)
        return Redirect("users", {"account_id": account_id}, notice=notice.format(email=inv.email))

    def _resend_refused(
        self, exc: PermissionDenied, inv: Invitation, me: Member, lang: str
    ) -> str | None:
        """Why *me* may not resend *inv*, in *lang*: the access it gives outlasts the
        member's own, or it grants permissions the member lacks; None for another cause."""
        if exc.access_until is not None:
            if inv.access_until is None:
                given = translate("without an end", lang)
            else:
                given = translate("until {when}", lang).format(
                    when=format_datetime(inv.access_until, lang)
                )
            return translate(
                "You cannot send this invitation again: it gives access {given}, and your own "
                "access ends on {own}. Revoke it and send a new invitation with an end on that "
                "day or before, or ask the account owner to send it again.",
                lang,
            ).format(given=given, own=format_datetime(exc.access_until, lang))
        if inv.permissions.issubset(me.permissions):
            return None
        if inv.permissions.is_all:
            missing = translate("All permissions", lang)
        else:
            catalog = self.team.catalog
            missing = ", ".join(
                catalog[name].label_for(lang) if name in catalog else name
                for name in sorted(
                    {p.partition("@")[0] for p in (inv.permissions - me.permissions).to_list()}
                )
            )
        return translate(
            "You cannot send this invitation again: it grants permissions you do not hold "
            "yourself ({missing}). Ask the account owner to send it again, or revoke it and "
            "invite again with permissions you hold.",
            lang,
        ).format(missing=missing)

    def _revoke(self, request: Request, account_id: str, invitation_id: str) -> Result:
        user, _, _ = self._membership(request, account_id)
        inv = self._own_invitation(account_id, invitation_id)
        if inv.status == "revoked":
            # Sent twice (two tabs, a double click): say so, rather than "was revoked" again.
            notice = translate("The invitation to {email} was already revoked.", request.language)
            return Redirect(
                "users", {"account_id": account_id}, notice=notice.format(email=inv.email)
            )
        if inv.status in _ANSWERED:
            return self._answered_meanwhile(request, inv)
        # Past its lifetime while the page was open: its link already no longer worked,
        # which the notice says rather than claim the click stopped it.
        expired = inv.status == "expired"
        try:
            self.team.revoke_invitation(inv.id, actor_id=user.id)
        except (InvitationUsed, InvitationRevoked):
            # Answered between the read above and the revoke: the same notice.
            inv = self._own_invitation(account_id, invitation_id)
            if inv.status not in _ANSWERED:
                raise
            return self._answered_meanwhile(request, inv)
        if expired:
            notice = translate(
                "The invitation to {email} had already expired, so its link no longer "
                "worked. It is now revoked as well and cannot be sent again.",
                request.language,
            )
        else:
            notice = translate("The invitation to {email} was revoked.", request.language)
        return Redirect("users", {"account_id": account_id}, notice=notice.format(email=inv.email))

    @staticmethod
    def _answered_meanwhile(request: Request, inv: Invitation) -> Redirect:
        """The page showed "Revoke" on an invitation its invitee has answered since (two
        tabs): the users page says how it was answered, instead of an error page."""
        if inv.status == "accepted":
            notice = translate("The invitation to {email} was already accepted.", request.language)
        else:
            notice = translate("The invitation to {email} was already declined.", request.language)
        return Redirect(
            "users", {"account_id": inv.account_id}, notice=notice.format(email=inv.email)
        )

    def _own_invitation(self, account_id: str, invitation_id: str) -> Invitation:
        inv = self.team.get_invitation(invitation_id)
        if inv.account_id != account_id:
            # An id from another account in this account's URL: as if it did not exist.
            raise InvitationNotFound(f"no invitation {invitation_id!r} in this account")
        return inv
