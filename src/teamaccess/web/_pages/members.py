"""One member's pages: permissions, suspend and reactivate, the end date, remove
and leave (each asking first where it cannot be undone).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import attrs

from ... import (
    Account,
    ClockError,
    Conflict,
    Member,
    MemberNotFound,
    OwnershipRequired,
    PermissionDenied,
    PermissionSet,
    ValidationError,
    error_message,
)
from .._core import Redirect, Render, Request, Result
from .._i18n import translate
from .._view import format_datetime
from .base import _BadChoice, _Forbidden, _PageBase

__all__ = ["MemberPages"]


class MemberPages(_PageBase):
    """One member's pages: permissions, suspend and reactivate, the end date, remove"""

    # -- one member ------------------------------------------------------------------

    def _member(self, request: Request, account_id: str, user_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        lang = request.language
        self._require_page(me, account, "users.manage", lang)
        target = self.team.get_member(account_id, user_id)
        names = self._resource_names(account_id)
        # Grants on resources the form does not show (without the vendor's hook, all of
        # them; with it, those on resources it does not list) are kept on save.
        kept = self._unshown(target, names)
        error = ""
        status = 200
        if request.method == "POST":
            self._not_mine(user_id, me, lang)
            # Of the ids the form showed, not of those the hook lists now: a service
            # listed again meanwhile must not drop a grant the page said it keeps, nor
            # one gone from the list keep a grant the user took away. (A changed field
            # only keeps or drops the member's existing grants, which the user, holding
            # them all, may take away with the member anyway; it grants nothing.)
            showed = request.values("listed")
            if names is not None and showed:
                kept = self._unshown(target, {r for r in showed if r})
            if self._nothing_chosen(request):
                error = translate("Choose at least one permission, or give all permissions.", lang)
            else:
                try:
                    chosen = self._chosen(request, names) | kept
                    self.team.set_permissions(account_id, user_id, chosen, actor_id=user.id)
                except _BadChoice as exc:
                    error = str(exc)
                except PermissionDenied as exc:
                    error = self._unlimitable(kept, lang) or self._grant_refused(exc, target, lang)
                except (ValidationError, Conflict) as exc:
                    error = self._unlimitable(kept, lang) or error_message(
                        exc, lang, catalog=self.team.catalog
                    )
                else:
                    notice = translate("The permissions of {email} are saved.", lang)
                    return Redirect(
                        "users",
                        {"account_id": account_id},
                        notice=notice.format(email=target.email),
                    )
            status = 400
            scope = self._scope(request)
            selected: Iterable[str] = request.values("permission")
            picked = self._picked(request)
        else:
            scope = "all" if target.permissions.is_all else "selected"
            selected = target.permissions.resolve(self.team.catalog)
            if names is not None:
                shown = {p for p, _ in target.permissions.scopes - kept.scopes}
                selected = selected | shown
            # only the grants the form shows: one on an unlisted id is kept, not "picked"
            picked = self._picked_from(
                PermissionSet(scopes=target.permissions.scopes - kept.scopes)
            )
        context = self._base(account, me, "users")
        context.update(
            target=target,
            error=error,
            editable=not target.is_owner and target.user_id != me.user_id,
            chooser=self._chooser(
                me, lang, scope=scope, selected=selected, resources=names, picked=picked
            ),
            scopes=self._scopes(self._unshown(target, names), lang),
            # the ids this form shows, sent back with it (the empty one says it is sent)
            listed=None if names is None else ["", *names],
            until=request.value("until") if request.method == "POST" else "",
            until_error="",
        )
        return Render("teamaccess/member.html", context, status)

    def _grant_refused(self, exc: PermissionDenied, target: Member, lang: str) -> str:
        """Why a save of *target*'s permissions was refused; for access that would outlast
        the actor's, what to do first: this form has no end date, the "Access" one does."""
        if exc.access_until is None:
            return error_message(exc, lang, catalog=self.team.catalog)
        text = translate(
            "The access of {email} lasts beyond your own, which ends on {own}. Give it an "
            "end on that day or before it under “Access” first, then grant more "
            "permissions.",
            lang,
        )
        return text.format(email=target.email, own=format_datetime(exc.access_until, lang))

    def _unshown(self, target: Member, shown: Collection[str] | None) -> PermissionSet:
        """The member's grants on resources a form that shows *shown* does not show
        (``None``: the form shows none). A grant on a permission the catalog no longer
        marks ``scoped`` is among them: the form would show its box ticked without a
        "where", so saving the page as shown made it account-wide."""
        catalog = self.team.catalog
        return PermissionSet(
            scopes=frozenset(
                (p, r)
                for p, r in target.permissions.scopes
                if shown is None or r not in shown or p not in catalog or not catalog[p].scoped
            )
        )

    def _unlimitable(self, kept: PermissionSet, lang: str) -> str:
        """Why a save that keeps *kept* fails, if the reason is a kept grant on single
        services of a permission the vendor's catalog no longer lets be limited to them
        (the library refuses such a grant, and the form cannot take it away)."""
        catalog = self.team.catalog
        for name in sorted({p for p, _ in kept.scopes}):
            if name in catalog and not catalog[name].scoped:
                return translate(
                    "“{label}” is held on single services, which it can no longer be limited "
                    "to, so these permissions cannot be saved. Please contact support.",
                    lang,
                ).format(label=catalog[name].label_for(lang))
        return ""

    @staticmethod
    def _not_mine(user_id: str, me: Member, lang: str) -> None:
        """Refuse a form about the user's own membership, as the library does: the
        member page offers no form for it (a posted one was written by hand). The owner's
        own is the library's ``OwnershipRequired``, as before."""
        if user_id == me.user_id and not me.is_owner:
            raise _Forbidden(translate(
                "Nobody changes their own permissions or access. Ask the account owner or "
                "another user who manages users.", lang))  # fmt: skip

    def _suspend(self, request: Request, account_id: str, user_id: str) -> Result:
        user, account, me = self._membership(request, account_id)
        self._not_mine(user_id, me, request.language)
        if not self._confirmed(request):
            lang = request.language
            target = self._changeable(me, account, user_id, lang)
            back = {"account_id": account_id, "user_id": user_id}
            if target.status == "suspended":
                return Redirect("member", back)  # nothing to confirm
            return self._confirm(
                request, account, me, "users",
                title=translate("Suspend user", lang),
                question=translate("Suspend {email} in {account}?", lang).format(
                    email=target.email, account=account.name),
                effects=[
                    translate("From now on they can use none of their permissions; the "
                              "permissions are kept.", lang),
                    translate("While they are suspended, open invitations they sent cannot "
                              "be accepted: an attempt revokes the invitation.", lang),
                    translate("You can reactivate them on their page at any time.", lang),
                ],
                button=translate("Suspend user", lang),
                action=("suspend", back),
                cancel=("member", back),
            )  # fmt: skip
        member = self.team.suspend_member(account_id, user_id, actor_id=user.id)
        notice = translate("{email} is suspended: their permissions are kept but unusable "
                           "until you reactivate them.", request.language)  # fmt: skip
        return Redirect("member", {"account_id": account_id, "user_id": user_id},
                        notice=notice.format(email=member.email))  # fmt: skip

    def _reactivate(self, request: Request, account_id: str, user_id: str) -> Result:
        user, _, me = self._membership(request, account_id)
        self._not_mine(user_id, me, request.language)
        try:
            member = self.team.reactivate_member(account_id, user_id, actor_id=user.id)
        except PermissionDenied as exc:
            if exc.access_until is None:
                raise
            # The member's access outlasts the actor's: the end date is what to fix first.
            return self._until_refused(request, account_id, user_id, "", exc)
        notice = translate("{email} is active again.", request.language)
        return Redirect("member", {"account_id": account_id, "user_id": user_id},
                        notice=notice.format(email=member.email))  # fmt: skip

    def _access_until(self, request: Request, account_id: str, user_id: str) -> Result:
        user, _, me = self._membership(request, account_id)
        lang = request.language
        self._not_mine(user_id, me, lang)
        raw = "" if request.value("action") == "clear" else request.value("until")
        try:
            until = self._day(raw)
            member = self.team.set_access_until(account_id, user_id, until, actor_id=user.id)
        except ClockError:
            raise  # a ValueError too, but the service's fault, not the form's
        except PermissionDenied as exc:
            if exc.access_until is None:
                raise
            # An end later than the actor's own, or none: said at the field.
            return self._until_refused(request, account_id, user_id, raw, exc)
        except ValueError as exc:
            # A date the form could not read, or one the library refuses (not in the future).
            return self._until_refused(request, account_id, user_id, raw, exc)
        if member.access_until is None:
            notice = translate("The access of {email} no longer ends.", lang)
        else:
            notice = translate("The access of {email} ends on {day}.", lang)
        day = format_datetime(member.access_until, lang)
        return Redirect("member", {"account_id": account_id, "user_id": user_id},
                        notice=notice.format(email=member.email, day=day))  # fmt: skip

    def _until_refused(
        self, request: Request, account_id: str, user_id: str, raw: str, exc: Exception
    ) -> Result:
        """The member page again, with why the end date (as typed: *raw*) was refused
        next to its field."""
        lang = request.language
        if isinstance(exc, PermissionDenied):
            text = error_message(exc, lang)
        elif isinstance(exc, ValidationError):
            text = translate("Choose a day in the future.", lang)
        else:
            text = translate("Please enter a date such as 2026-12-31.", lang)
        page = self._member(attrs.evolve(request, method="GET"), account_id, user_id)
        if isinstance(page, Render):
            page.context.update(until=raw, until_error=text)
            return attrs.evolve(page, status=400)
        return page

    def _remove_member(self, request: Request, account_id: str, user_id: str) -> Result:
        leaving = request.user is not None and user_id == request.user.id
        user, account, me = self._membership(request, account_id, leaving=leaving)
        lang = request.language
        if not self._confirmed(request):
            return self._confirm_removal(request, account, me, user_id)
        try:
            target = self.team.get_member(account_id, user_id)
            self.team.remove_member(account_id, user_id, actor_id=user.id)
        except MemberNotFound:
            # Confirmed twice (two tabs, a double click): the first one removed them, and
            # this one lands where that one did.
            self._require_page(me, account, "users.manage", lang)
            if not self._removed_lately(account_id, ("member.removed", "member.left"), user_id):
                raise
            notice = translate("This user was already removed.", lang)
            return Redirect("users", {"account_id": account_id}, notice=notice)
        if user_id == user.id:
            notice = translate("You have left {account}.", lang)
            account = self.team.get_account(account_id)
            return Redirect("index", notice=notice.format(account=account.name))
        notice = translate("{email} was removed.", lang).format(email=target.email)
        return Redirect("users", {"account_id": account_id}, notice=notice)

    def _confirm_removal(
        self, request: Request, account: Account, me: Member, user_id: str
    ) -> Render:
        """The page that asks before removing *user_id* (or before *me* leaves)."""
        lang = request.language
        back = {"account_id": account.id}
        action = ("remove_member", {"account_id": account.id, "user_id": user_id})
        if user_id == me.user_id:
            if me.is_owner:
                raise OwnershipRequired("the owner cannot leave; transfer ownership first")
            return self._confirm(
                request, account, me, "users",
                title=translate("Leave account", lang),
                question=translate("Leave {account}?", lang).format(account=account.name),
                effects=[
                    translate("You lose access to this customer account, and every "
                              "permission in it, at once.", lang),
                    translate("Open invitations you sent are revoked: their links stop "
                              "working.", lang),
                    translate("To come back, you need a new invitation.", lang),
                ],
                button=translate("Leave account", lang),
                action=action,
                cancel=("users", back),
            )  # fmt: skip
        target = self._changeable(me, account, user_id, lang)
        return self._confirm(
            request, account, me, "users",
            title=translate("Remove user", lang),
            question=translate("Remove {email} from {account}?", lang).format(
                email=target.email, account=account.name),
            effects=[
                translate("They lose access to this customer account, and every permission "
                          "in it, at once.", lang),
                translate("Open invitations they sent are revoked: their links stop "
                          "working.", lang),
                translate("To give them access again, send a new invitation.", lang),
            ],
            button=translate("Remove user", lang),
            action=action,
            cancel=("users", back),
        )  # fmt: skip
