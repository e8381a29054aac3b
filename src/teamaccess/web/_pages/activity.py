"""The account's activity: the audit trail, a page at a time."""

from __future__ import annotations

from .._core import Render, Request, Result
from .._view import describe_event
from .base import _PageBase

__all__ = ["ActivityPage"]


class ActivityPage(_PageBase):
    """The account's activity: the audit trail, a page at a time."""

    def _activity(self, request: Request, account_id: str) -> Result:
        _, account, me = self._membership(request, account_id)
        lang = request.language
        self._require_page(me, account, "users.manage", lang)
        try:
            page = max(1, int(request.arg("page") or "1"))
        except ValueError:
            page = 1
        start = (page - 1) * self.page_size
        # One more than the page holds tells whether a next page exists.
        events = self.team.audit_log(account_id, limit=start + self.page_size + 1)
        # Events name members, contacts and invitations by id; show their addresses.
        emails = self._emails(account_id)
        emails.update((c.id, c.email) for c in self.team.contacts(account_id))
        emails.update((i.id, i.email) for i in self.team.invitations(account_id))
        shown = events[start : start + self.page_size]
        context = self._base(account, me, "activity")
        context.update(
            events=[describe_event(e, emails, lang) for e in shown],
            page=page,
            has_next=len(events) > start + self.page_size,
        )
        return Render("teamaccess/activity.html", context)
