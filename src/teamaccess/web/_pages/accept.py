"""The page the invitation link opens: accept or decline, logged in or not."""

from __future__ import annotations

from ... import (
    Conflict,
    Invitation,
    InvitationError,
    InvitationExpired,
    InvitationRevoked,
    InvitationUsed,
    ValidationError,
    error_message,
    normalize_email,
)
from .._core import Redirect, Render, Request, Result
from .._i18n import translate
from .._view import permission_groups, person
from .base import _Forbidden, _PageBase, _status, _with_query

__all__ = ["AcceptPage"]


class AcceptPage(_PageBase):
    """The page the invitation link opens: accept or decline, logged in or not."""

    def _accept(self, request: Request) -> Result:
        lang = request.language
        token = request.value("token") if request.method == "POST" else request.arg("token")
        if not token:
            raise _Forbidden(translate("This page needs the link from the invitation mail.", lang))
        inv = self.team.inspect_invitation(token)
        user = request.user
        if inv.status != "pending":
            return self._closed(request, inv)
        account = self.team.get_account(inv.account_id)
        emails = self._emails(inv.account_id)
        state = "login"
        if user is not None:
            if self.team.require_email_match and (
                normalize_email(user.email).key != normalize_email(inv.email).key
            ):
                state = "mismatch"
            elif user.id in emails:
                state = "member"
            else:
                state = "ready"
        error = ""
        status = 200
        if request.method == "POST":
            action = request.value("action")
            if action == "decline":
                if request.value("confirm") != "yes":
                    return self._confirm_decline(request, token, account.name)
                self.team.decline_invitation(token)
                return Render("teamaccess/declined.html", {"account_name": account.name})
            if user is None:
                # Back to this invitation after the login: the POST's path has no token.
                back = _with_query(request.path, token=token)
                return Redirect(location=self._hook(self.login_url, back))
            try:
                member = self.team.accept_invitation(token, user_id=user.id, email=user.email)
            except (InvitationError, Conflict, ValidationError) as exc:
                error = error_message(exc, lang)
                status = _status(exc)
            else:
                notice = translate("Welcome to {account}.", lang).format(account=account.name)
                return self._welcome(member.account_id, notice)
        # Sent back here after the login; the URL already holds the token.
        back = request.path
        context = {
            "invitation": inv,
            "token": token,
            "account_name": account.name,
            "inviter": person(inv.invited_by, emails, lang)
            if inv.invited_by in emails
            else account.owner_email,
            "all": inv.permissions.is_all,
            "groups": permission_groups(self.team.catalog, lang, only=inv.permissions),
            "state": state,
            "error": error,
            "login_url": self._hook(self.login_url, back),
            "register_url": self._hook(self.register_url, back) if self.register_url else "",
            "logout_url": self.logout_url or "",
        }
        return Render("teamaccess/accept.html", context, status)

    def _closed(self, request: Request, inv: Invitation) -> Result:
        """The link of an invitation that is no longer open."""
        lang = request.language
        user = request.user
        if inv.status == "accepted":
            if user is not None and user.id in self._emails(inv.account_id):
                # A second click on "Accept" (or Back after it): the user is in, so there
                # is nothing to refuse; take them where the first click went.
                account = self.team.get_account(inv.account_id)
                notice = translate("You are a user of {account}.", lang)
                return self._welcome(inv.account_id, notice.format(account=account.name))
            raise InvitationUsed("already accepted")
        if inv.status == "expired":
            raise InvitationExpired("expired")
        if inv.status == "declined":
            # Not "withdrawn": the invitee declined it, on this link.
            return self._message(request, 410, "Invitation not valid", translate(
                "You declined this invitation, so the link no longer works. To join the "
                "account after all, ask for a new invitation.", lang))  # fmt: skip
        raise InvitationRevoked(inv.status)

    def _welcome(self, account_id: str, notice: str) -> Redirect:
        if self.home_url is not None:
            return Redirect(location=self.home_url(account_id), notice=notice)
        return Redirect("users", {"account_id": account_id}, notice=notice)

    def _confirm_decline(self, request: Request, token: str, account_name: str) -> Render:
        """Declining cannot be undone: the page asks first, as removing a member does."""
        lang = request.language
        return Render(
            "teamaccess/confirm.html",
            {"confirm": {
                "title": translate("Decline invitation", lang),
                "question": translate("Decline the invitation to “{account}”?", lang).format(
                    account=account_name),
                "effects": [
                    translate("The link stops working, for good.", lang),
                    translate("To join the account later, you need a new invitation.", lang),
                ],
                "button": translate("Decline invitation", lang),
                "endpoint": "accept",
                "params": {},
                "fields": {"token": token, "action": "decline"},
                "cancel": "accept",
                "cancel_params": {"token": token},
            }},
        )  # fmt: skip
