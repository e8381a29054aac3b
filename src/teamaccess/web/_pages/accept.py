"""The page the invitation link opens: accept or decline, logged in or not."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime

import attrs

from ... import (
    Conflict,
    Invitation,
    InvitationError,
    InvitationExpired,
    InvitationRevoked,
    InvitationUsed,
    MemberNotFound,
    ValidationError,
    error_message,
    normalize_email,
)
from .._core import (
    _KEPT_INVITATIONS,
    INVITATION_COOKIE_MAX_AGE,
    Redirect,
    Render,
    Request,
    Result,
)
from .._i18n import translate
from .._view import permission_groups, person
from .base import _Forbidden, _PageBase, _status, _with_query

__all__ = ["AcceptPage"]


def _slot(invitation_id: str) -> str:
    """The name of an invitation in the page's clean URL (``?invitation=``): one per
    invitation, so two open in one browser stay apart. A hash of its id, not of the token:
    it tells nothing about the token, and once the token is gone from the browser (the
    invitation accepted) the page still finds the invitation among the member's own."""
    data = b"teamaccess.web.invitation-link\0" + invitation_id.encode("utf-8", "replace")
    return hashlib.sha256(data).hexdigest()[:16]


#: what _slot() writes; any other ``?invitation=`` names no invitation
_SLOT = re.compile(r"[0-9a-f]{16}")


def _keep(kept: Mapping[str, str], slot: str, value: str) -> dict[str, str]:
    """*kept* with *value* in *slot*, as the newest; the oldest dropped beyond the limit."""
    others = [(s, t) for s, t in kept.items() if s != slot][-(_KEPT_INVITATIONS - 1) :]
    return {**dict(others), slot: value}


def _life(inv: Invitation, now: datetime) -> int:
    """How long the browser keeps the link of *inv*: an hour at most, and never past the
    invitation's own end (its expiry, or the end of the access it offers). A link no
    longer open is kept a minute, for the redirect to the page that says so."""
    if inv.status != "pending":
        return _CLOSED_LIFE
    return max(1, min(INVITATION_COOKIE_MAX_AGE, int((_end(inv) - now).total_seconds())))


def _end(inv: Invitation) -> datetime:
    """When *inv* is over: its expiry, or the end of the access it offers if sooner."""
    return inv.expires_at if inv.access_until is None else min(inv.expires_at, inv.access_until)


#: seconds a browser keeps the link of an invitation that is no longer open
_CLOSED_LIFE = 60


class AcceptPage(_PageBase):
    """The page the invitation link opens: accept or decline, logged in or not."""

    def _accept(self, request: Request) -> Result:
        lang = request.language
        if request.method == "POST":
            token = request.value("token")
        elif request.arg("token"):
            # The link from the mail: the only request whose URL holds the token. It goes
            # into a cookie for this page alone and the browser on to the clean URL, so the
            # token is in no login link's `next`, access log or history from here on. A bad
            # link gets its error page here, and no cookie.
            token = request.arg("token")
            inv = self.team.inspect_invitation(token)
            slot = _slot(inv.id)
            kept, kept_life = self._kept(request.invitations, slot, token, inv)
            return Redirect("accept", {"invitation": slot}, invitations=kept,
                            invitations_max_age=kept_life)  # fmt: skip
        else:
            token = request.invitations.get(request.arg("invitation"), "")
            if not token:
                return self._accepted_before(request, request.arg("invitation"))
        if not token:
            raise _Forbidden(translate("This page needs the link from the invitation mail.", lang))
        inv = self.team.inspect_invitation(token)
        user = request.user
        slot = _slot(inv.id)
        # Kept (again) if this browser does not hold it: an expired cookie, a form posted
        # from a page opened before, so "Cancel" and the way back from the login work.
        keep: dict[str, str] | None = None
        life = None
        if request.invitations.get(slot) != token:
            keep, life = self._kept(request.invitations, slot, token, inv)
        # Answered (accepted or declined): the token leaves the browser, and nothing takes
        # its place; Back to the link finds the invitation by the slot among the member's.
        answered, answered_life = self._kept(request.invitations, slot, None, inv)
        if inv.status != "pending":
            closed = self._closed(request, inv)
            if isinstance(closed, Redirect):
                return attrs.evolve(closed, invitations=answered, invitations_max_age=answered_life)
            return closed
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
                    page = self._confirm_decline(request, token, slot, account.name)
                    return attrs.evolve(page, invitations=keep, invitations_max_age=life)
                self.team.decline_invitation(token)
                return Render(
                    "teamaccess/declined.html", {"account_name": account.name},
                    invitations=answered, invitations_max_age=answered_life,
                )  # fmt: skip
            if user is None:
                # Back to this invitation after the login, by its clean URL.
                back = _with_query(request.path.partition("?")[0], invitation=slot)
                return Redirect(location=self._hook(self.login_url, back), invitations=keep,
                                invitations_max_age=life)  # fmt: skip
            try:
                member = self.team.accept_invitation(token, user_id=user.id, email=user.email)
            except (InvitationError, Conflict, ValidationError) as exc:
                error = error_message(exc, lang)
                status = _status(exc)
            else:
                notice = translate("Welcome to {account}.", lang).format(account=account.name)
                return attrs.evolve(
                    self._welcome(member.account_id, notice),
                    invitations=answered, invitations_max_age=answered_life,
                )  # fmt: skip
        # Sent back here after the login, by the clean URL: the token is in no `next`.
        back = _with_query(request.path.partition("?")[0], invitation=slot)
        logout = self._hook(self.logout_url, back) if self.logout_url else ""
        context = {
            "invitation": inv,
            "token": token,
            "account_name": account.name,
            "inviter": person(inv.invited_by, emails, lang)
            if inv.invited_by in emails
            else account.owner_email,
            "all": inv.permissions.is_all,
            "groups": permission_groups(self.team.catalog, lang, only=inv.permissions),
            # grants on single services: without them an invitation to some servers only
            # read "No permissions"; by the names the vendor's hook gives them
            "scopes": self._scopes(inv.permissions, lang, self._invitee_names(inv)),
            "state": state,
            "error": error,
            "login_url": self._hook(self.login_url, back),
            "register_url": self._hook(self.register_url, back) if self.register_url else "",
            "logout_url": logout,
            # The pages' CSRF token, the session's secret, goes to a path of this site
            # only: a logout on another origin (a single sign-on) has its own protection.
            "logout_token": _on_this_site(logout),
        }
        return Render("teamaccess/accept.html", context, status, invitations=keep,
                      invitations_max_age=life)  # fmt: skip

    def _invitee_names(self, inv: Invitation) -> dict[str, str] | None:
        """The display names of the services *inv* grants on, for the invitee's page.

        The vendor's hook is asked only for an invitation with such grants, and one that
        lists ids no grant can be on leaves them named by id: the invitee cannot mend
        the hook and must still be able to accept (the owner's pages name the fault).
        """
        if not inv.permissions.scopes:
            return None
        try:
            return self._resource_names(inv.account_id)
        except ValidationError:
            return None

    def _kept(
        self, kept: Mapping[str, str], slot: str, token: str | None, inv: Invitation
    ) -> tuple[dict[str, str], int]:
        """The browser's links with *token* (of *inv*) in *slot*, or without *slot* when
        *token* is ``None`` (answered), and how long the cookie holding them lives: as long
        as the longest-lived of them, so opening a second link does not cut the first
        one's life short. Another link whose invitation is over (answered, revoked,
        expired, or no longer readable) leaves the cookie."""
        from ... import TeamAccessError

        now = self.team.now()
        lives = {} if token is None else {slot: _life(inv, now)}
        for other, other_token in kept.items():
            if other == slot:
                continue
            try:
                other_inv = self.team.inspect_invitation(other_token)
            except TeamAccessError:  # no longer readable: a key rotated away, say
                continue
            if other_inv.status == "pending" and _end(other_inv) > now:
                lives[other] = _life(other_inv, now)
        links = _keep(kept, slot, token) if token is not None else kept
        keep = {s: t for s, t in links.items() if s in lives}
        return keep, max((lives[s] for s in keep), default=0)

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

    def _accepted_before(self, request: Request, slot: str) -> Result:
        """The clean URL without a kept token: Back to a link accepted in this browser
        leads its member into the account, found by *slot* among the invitations the
        logged-in user accepted; anyone else needs the link from the mail.

        Anyone logged in can send any *slot*, so its cost must not grow with the input
        or with the user's accounts: one that _slot() cannot have written is refused
        before any read, and a well-formed one reads the user's own acceptances only."""
        user = request.user
        if user is not None and _SLOT.fullmatch(slot):
            for inv in self.team.invitations_accepted_by(user.id):
                if _slot(inv.id) == slot:
                    try:  # still a user there (one who left needs a new invitation)
                        self.team.get_member(inv.account_id, user.id)
                    except MemberNotFound:
                        break
                    account = self.team.get_account(inv.account_id)
                    notice = translate("You are a user of {account}.", request.language)
                    return self._welcome(account.id, notice.format(account=account.name))
        raise _Forbidden(
            translate("This page needs the link from the invitation mail.", request.language)
        )

    def _welcome(self, account_id: str, notice: str) -> Redirect:
        if self.home_url is not None:
            return Redirect(location=self.home_url(account_id), notice=notice)
        return Redirect("users", {"account_id": account_id}, notice=notice)

    def _confirm_decline(
        self, request: Request, token: str, slot: str, account_name: str
    ) -> Render:
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
                "cancel_params": {"invitation": slot},
            }},
        )  # fmt: skip


def _on_this_site(url: str) -> bool:
    """Whether *url* is a path of this site: a ``/`` not followed by ``/`` or ``\\``,
    printable ASCII only (a browser drops a tab, and reads ``\\`` as ``/``)."""
    return re.fullmatch(r"/(?![/\\])[\x21-\x7e]*", url) is not None and "\\" not in url
