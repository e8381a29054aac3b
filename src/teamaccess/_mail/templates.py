"""Mail templates a vendor can replace: text and HTML, English and German.

A template set is any object with ``invitation(context)`` and ``notification(context)``
methods returning a :class:`RenderedMail`. :class:`DefaultTemplates` ships English and
German; pass ``strings=`` to change its wording or ``brand=`` to name the panel, or
subclass it, or write your own. Values are escaped for HTML here, once, so a template
cannot forget it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol

import attrs

from .._repr import attrs_repr, eq_hash

if TYPE_CHECKING:
    from string import Template

__all__ = [
    "DefaultTemplates",
    "InvitationContext",
    "NotificationContext",
    "RenderedMail",
    "Templates",
]


@eq_hash  # attrs' equality and hashing, built without compiling (_repr)
@attrs.frozen(eq=False)
class InvitationContext:
    """What an invitation mail may say."""

    __repr__ = attrs_repr  # what attrs prints, without compiling it when the module loads

    language: str
    brand: str
    account_name: str
    inviter_email: str
    invitee_email: str
    #: holds the token: kept out of repr() so a template that logs its context leaks nothing
    accept_url: str = attrs.field(repr=False)
    expires_at: datetime
    all_permissions: bool
    #: labels of the granted permissions, in the mail's language, catalog order
    permission_labels: Sequence[str]
    #: (label, resource ids) of each permission granted on single resources only
    scoped_permissions: Sequence[tuple[str, Sequence[str]]] = ()
    #: the inviter's personal note ("" for none); plain text, escaped by the template
    note: str = ""
    #: when the member's access will end, if it does
    access_until: datetime | None = None


@eq_hash  # attrs' equality and hashing, built without compiling (_repr)
@attrs.frozen(eq=False)
class NotificationContext:
    """What a notification to the owner and the category's contacts may say."""

    __repr__ = attrs_repr  # what attrs prints, without compiling it when the module loads

    language: str
    brand: str
    account_name: str
    category: str
    category_label: str
    recipient: str
    subject: str
    text: str
    html: str | None


@eq_hash  # attrs' equality and hashing, built without compiling (_repr)
@attrs.frozen(eq=False)
class RenderedMail:
    """What a template returns: the mail's ``subject``, ``text`` and ``html``."""

    __repr__ = attrs_repr  # what attrs prints, without compiling it when the module loads

    subject: str
    # An invitation's text and HTML hold the accept link with its token: kept out of
    # repr(), as InvitationContext.accept_url is, so a template that logs or raises with
    # what it rendered leaks no live link.
    text: str = attrs.field(repr=False)
    html: str = attrs.field(repr=False)


def _escape(value: str, quote: bool = True) -> str:
    # html (and html.entities with it) loads on the first mail, not with teamaccess: a
    # few ms of the import-time budget. Bound once: "from html import" is a call into
    # importlib on every use (html is a package), some 0.5 us of each of a mail's values.
    global _html_escape
    if _html_escape is None:
        from html import escape

        _html_escape = escape
    return _html_escape(value, quote)


_html_escape: Callable[[str, bool], str] | None = None


# A text as Template.safe_substitute() reads it, once: its literal runs, and for each
# placeholder its name and the text it stands for (kept if the name has no value).
_Pieces = tuple[str | tuple[str, str], ...]


def _pieces(template: Template) -> _Pieces:
    """*template* split as ``safe_substitute()`` splits it: with the template's own
    pattern, ``$$`` as ``$``, a ``$`` that starts no placeholder kept as it is."""
    pieces: list[str | tuple[str, str]] = []
    text = template.template
    at = 0
    for match in template.pattern.finditer(text):
        if match.start() > at:
            pieces.append(text[at : match.start()])
        named = match.group("named") or match.group("braced")
        if named is not None:
            pieces.append((named, match.group()))
        elif match.group("escaped") is not None:
            pieces.append(template.delimiter)
        else:  # "invalid": safe_substitute() keeps it
            pieces.append(match.group())
        at = match.end()
    if at < len(text):
        pieces.append(text[at:])
    return tuple(pieces)


def _fill(pieces: _Pieces, values: Mapping[str, str]) -> str:
    """``safe_substitute(values)`` of the template *pieces* were read from: one join
    instead of a regular expression with a Python callback per placeholder."""
    out = []
    for piece in pieces:
        if type(piece) is str:
            out.append(piece)
        else:
            try:
                out.append(str(values[piece[0]]))
            except KeyError:
                out.append(piece[1])
    return "".join(out)


def _when(value: datetime, date_format: str) -> str:
    """``value.astimezone(UTC).strftime(date_format)``, each minute in each format written
    once: ``strftime()`` costs some 5 us, and the times a mail shows are to the minute.
    A format with any directive but the year, month, day, hour and minute (seconds,
    names of days, anything locale- or platform-specific) is written every time."""
    utc = value.astimezone(UTC)
    if _OTHER_DIRECTIVE.search(date_format) is not None:
        return utc.strftime(date_format)
    key = (date_format, utc.year, utc.month, utc.day, utc.hour, utc.minute)
    found = _WHEN.get(key)
    if found is None:
        found = utc.strftime(date_format)
        if len(_WHEN) >= 64:
            _WHEN.clear()
        _WHEN[key] = found
    return found


_WHEN: dict[tuple[str, int, int, int, int, int], str] = {}
# "%" then anything but Y, m, d, H, M or a second "%" ("%%" is a literal "%").
_OTHER_DIRECTIVE: Final = re.compile(r"%[^YmdHM%]|%$")


class Templates(Protocol):
    def invitation(self, context: InvitationContext) -> RenderedMail: ...
    def notification(self, context: NotificationContext) -> RenderedMail: ...


_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "brand": "customer center",
        "date.format": "%Y-%m-%d %H:%M",
        "invitation.subject": "$inviter invites you to $account",
        "invitation.greeting": "Hello,",
        "invitation.body": ("$inviter has invited you to the account $account in the $brand."),
        "invitation.all": "You will have all permissions.",
        "invitation.some": "You will be allowed to:",
        "invitation.none": "You will be able to log in, with no further permissions yet.",
        "invitation.scoped": "$permission, only for: $resources",
        "invitation.note": "$inviter adds a personal note:",
        "invitation.until": "Your access will end on $until (UTC).",
        "invitation.action": "Accept invitation",
        "invitation.expires": "The invitation is valid until $expires (UTC).",
        "invitation.ignore": (
            "If you did not expect this invitation, ignore this mail; nothing happens."
        ),
        "invitation.private": (
            "The link is personal: open it yourself, ideally in a private browser window, "
            "and do not forward it."
        ),
        "notification.footer": (
            "You receive this mail as a contact of $account for the category $category."
        ),
    },
    "de": {
        "brand": "Kundencenter",
        "date.format": "%d.%m.%Y %H:%M",
        "invitation.subject": "$inviter lädt Sie zu $account ein",
        "invitation.greeting": "Guten Tag,",
        "invitation.body": ("$inviter hat Sie zum Kundenkonto $account im $brand eingeladen."),
        "invitation.all": "Sie erhalten alle Berechtigungen.",
        "invitation.some": "Sie erhalten folgende Berechtigungen:",
        "invitation.none": "Sie können sich anmelden, erhalten aber noch keine Berechtigungen.",
        "invitation.scoped": "$permission, nur für: $resources",
        "invitation.note": "Persönliche Nachricht von $inviter:",
        "invitation.until": "Ihr Zugang endet am $until (UTC).",
        "invitation.action": "Einladung annehmen",
        "invitation.expires": "Die Einladung ist gültig bis $expires (UTC).",
        "invitation.ignore": (
            "Falls Sie diese Einladung nicht erwartet haben, ignorieren Sie diese E-Mail; "
            "es passiert nichts."
        ),
        "invitation.private": (
            "Der Link ist persönlich: Öffnen Sie ihn selbst, am besten in einem "
            "Inkognito-Fenster Ihres Browsers, und leiten Sie ihn nicht weiter."
        ),
        "notification.footer": (
            "Sie erhalten diese E-Mail als Kontakt von $account für die Kategorie $category."
        ),
    },
}

LANGUAGES = tuple(_STRINGS)


class DefaultTemplates:
    """The shipped English and German mails.

    >>> t = DefaultTemplates(brand="HostPress", strings={"en": {"invitation.action": "Join"}})
    """

    def __init__(
        self,
        *,
        brand: str | None = None,
        strings: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        #: the panel's name; ``None`` says "customer center" / "Kundencenter"
        self.brand = brand
        merged = {lang: dict(texts) for lang, texts in _STRINGS.items()}
        for lang, texts in (strings or {}).items():
            merged.setdefault(lang, dict(_STRINGS["en"])).update(texts)
        self._strings = merged
        self._compiled: dict[tuple[str, str], str | _Pieces] = {}

    def languages(self) -> tuple[str, ...]:
        """The languages these templates write: ``en``, ``de`` and any *strings* added."""
        return tuple(self._strings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(brand={self.brand!r}, languages={self.languages()!r})"

    def _t(self, language: str, key: str, values: Mapping[str, str]) -> str:
        # Each text read as a Template once per language and key, and one without a
        # placeholder kept as it is: a mail fills some fifteen of them.
        template = self._compiled.get((language, key))
        if template is None:
            from string import Template  # loads on the first mail: import time

            text = self._strings.get(language, self._strings["en"])[key]
            template = _pieces(Template(text)) if "$" in text else text
            self._compiled[(language, key)] = template
        return template if isinstance(template, str) else _fill(template, values)

    def invitation(self, context: InvitationContext) -> RenderedMail:
        lang = context.language
        texts = self._strings.get(lang, self._strings["en"])
        # The text says "(UTC)", so the time is shown in UTC whatever the clock's zone.
        expires = _when(context.expires_at, texts["date.format"])
        until = context.access_until
        raw = {
            "inviter": context.inviter_email,
            "account": context.account_name,
            "brand": context.brand or texts["brand"],
            "expires": expires,
            "until": "" if until is None else _when(until, texts["date.format"]),
        }
        esc = {k: _escape(v) for k, v in raw.items()}

        def t(key: str) -> str:
            return self._t(lang, key, raw)

        def h(key: str) -> str:
            # The template text is the vendor's; only the values are escaped into it.
            return self._t(lang, key, esc)

        # Each scoped grant as "Manage services, only for: srv-1, srv-2", values escaped
        # for the HTML part like every other value.
        scoped_text = [
            self._t(lang, "invitation.scoped", {"permission": label, "resources": ", ".join(ids)})
            for label, ids in context.scoped_permissions
        ]
        scoped_html = [
            self._t(
                lang,
                "invitation.scoped",
                {"permission": _escape(label), "resources": _escape(", ".join(ids))},
            )
            for label, ids in context.scoped_permissions
        ]
        if context.all_permissions:
            grants_text, grants_html = t("invitation.all"), f"<p>{h('invitation.all')}</p>"
        elif context.permission_labels or scoped_text:
            items = context.permission_labels
            grants_text = (
                t("invitation.some") + "\n" + "\n".join(f"  - {i}" for i in [*items, *scoped_text])
            )
            grants_html = (
                f"<p>{h('invitation.some')}</p><ul>"
                + "".join(f"<li>{_escape(i)}</li>" for i in items)
                + "".join(f"<li>{i}</li>" for i in scoped_html)
                + "</ul>"
            )
        else:
            grants_text, grants_html = t("invitation.none"), f"<p>{h('invitation.none')}</p>"

        extra_text: list[str] = []
        extra_html: list[str] = []
        if until is not None:
            extra_text.append(t("invitation.until"))
            extra_html.append(f"<p>{h('invitation.until')}</p>")
        if context.note:
            # Quoted, so the reader sees where the inviter's own words begin and end.
            quoted = "\n".join(f"> {line}".rstrip() for line in context.note.splitlines())
            extra_text.append(f"{t('invitation.note')}\n{quoted}")
            note_html = "<br>".join(_escape(line) for line in context.note.splitlines())
            extra_html.append(
                f"<p>{h('invitation.note')}</p>"
                f'<blockquote style="border-left:3px solid #ccc;margin:0;padding-left:10px">'
                f"{note_html}</blockquote>"
            )
        text = "\n\n".join(
            [
                t("invitation.greeting"),
                t("invitation.body"),
                grants_text,
                *extra_text,
                f"{t('invitation.action')}:\n{context.accept_url}",
                t("invitation.expires"),
                t("invitation.private"),
                t("invitation.ignore"),
            ]
        )
        url = _escape(context.accept_url, quote=True)
        body = "\n".join(
            [
                f"<p>{h('invitation.greeting')}</p>",
                f"<p>{h('invitation.body')}</p>",
                grants_html,
                *extra_html,
                f'<p><a href="{url}" style="display:inline-block;padding:10px 18px;'
                f'background:#1f6feb;color:#fff;text-decoration:none;border-radius:4px">'
                f"{h('invitation.action')}</a></p>",
                f"<p>{h('invitation.expires')}</p>",
                f"<p><small>{h('invitation.private')}<br>{h('invitation.ignore')}</small></p>",
            ]
        )
        return RenderedMail(t("invitation.subject"), text + "\n", _page(lang, body))

    def notification(self, context: NotificationContext) -> RenderedMail:
        raw = {"account": context.account_name, "category": context.category_label}
        esc = {k: _escape(v) for k, v in raw.items()}
        footer = self._t(context.language, "notification.footer", raw)
        footer_html = self._t(context.language, "notification.footer", esc)
        text = f"{context.text.rstrip()}\n\n-- \n{footer}\n"
        if context.html is not None:
            # Caller-supplied HTML is the vendor's own markup, sent as given.
            main = context.html
        else:
            main = "".join(
                f"<p>{_escape(par).replace(chr(10), '<br>')}</p>"
                for par in context.text.split("\n\n")
            )
        body = f"{main}\n<hr><p><small>{footer_html}</small></p>"
        return RenderedMail(context.subject, text, _page(context.language, body))


def _page(language: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{_escape(language)}"><head><meta charset="utf-8">'
        f"</head>\n<body>\n{body}\n</body></html>\n"
    )
