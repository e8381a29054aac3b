"""Faster paths of sending an invitation held to the code they replaced.

The default templates fill each text from pieces read once instead of calling
``Template.safe_substitute()``; the delivery path knows a ``BatchMailer`` by its class
instead of asking the runtime protocol check every time. Each is compared with the
former way, which stays here as the oracle, on hostile input.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from string import Template
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from teamaccess import (
    BatchMailer,
    DefaultTemplates,
    InvitationContext,
    MemoryMailer,
    NotificationContext,
    SmtpMailer,
)
from teamaccess._mail.templates import _fill, _pieces, _when
from teamaccess._service.delivery_rules import _is_batch_mailer

# Text a vendor's strings may hold: placeholders of both forms, "$$", a "$" before
# something that is no name, braces, names that are only nearly the known ones.
_NAMES = ["inviter", "account", "brand", "expires", "until", "x", "_", "A1", "é", "inviter_"]
_TEMPLATE_BITS = st.sampled_from(
    ["$", "$$", "${", "}", "{", "$$$", "${}", "$1", "$ ", "$-", "\n", "<b>", "&amp;", "é", " "]
    + [f"${n}" for n in _NAMES]
    + [f"${{{n}}}" for n in _NAMES]
    + [f"${{{n}" for n in _NAMES]
)
template_texts = st.lists(st.one_of(_TEMPLATE_BITS, st.text(max_size=6)), max_size=12).map("".join)
values = st.dictionaries(
    st.sampled_from(_NAMES), st.one_of(st.text(max_size=8), _TEMPLATE_BITS), max_size=6
)


class TestFillAsSafeSubstitute:
    @settings(max_examples=500)
    @given(template_texts, values)
    @example("$inviter$$inviter${inviter}${inviter $ $1 $$$x", {"inviter": "$x", "x": "${x}"})
    @example("${é} $é ${A1}$A1x ${_}", {"A1": "1", "_": "u"})
    @example("$", {})
    @example("", {})
    def test_the_same_text(self, text: str, given_values: dict[str, str]) -> None:
        template = Template(text)
        assert _fill(_pieces(template), given_values) == template.safe_substitute(given_values)

    def test_a_subclass_pattern_is_followed(self) -> None:
        class Percent(Template):
            delimiter = "%"

        for text in ("%a %% $a %{a} %", "100%% of %b", "%{a"):
            template = Percent(text)
            assert _fill(_pieces(template), {"a": "1"}) == template.safe_substitute({"a": "1"})

    def test_values_are_not_read_again(self) -> None:
        # A value holding a placeholder stays as it is, as safe_substitute() leaves it.
        pieces = _pieces(Template("$a and $b"))
        assert _fill(pieces, {"a": "$b", "b": "${a}"}) == "$b and ${a}"


_FORMAT_PIECES = ["%Y", "%m", "%d", "%H", "%M", "%S", "%f", "%%", "%", "%-d", "%Om", "%EY"]
_FORMAT_PIECES += ["%Z", "%z", "%a", "%B", "%p", "%c", "%y", "%j", " ", "-", ".", ":", "(UTC)"]
_FORMAT_PIECES += ["é", "%%Y", "%%%M"]
_FORMAT_BITS = st.sampled_from(_FORMAT_PIECES)
date_formats = st.lists(_FORMAT_BITS, max_size=8).map("".join)
_zoned_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([timezone(timedelta(hours=5, minutes=30)), UTC]),
)


class TestWhenAsStrftime:
    @settings(max_examples=500)
    @given(st.lists(st.tuples(_zoned_times, date_formats), max_size=6))
    @example([(datetime(2026, 1, 1, 12, 0, 1, tzinfo=UTC), "%H:%M:%S")] * 2)
    @example([(datetime(999, 1, 1, tzinfo=UTC), "%Y-%m-%d")])
    def test_the_same_text(self, values: list[tuple[datetime, str]]) -> None:
        for value, date_format in values:
            expected = value.astimezone(UTC).strftime(date_format)
            assert _when(value, date_format) == expected
            # the same minute a second later: from the memo where the format allows
            later = value + timedelta(seconds=1, microseconds=1)
            assert _when(later, date_format) == later.astimezone(UTC).strftime(date_format)


class _OldTemplates(DefaultTemplates):
    """DefaultTemplates as it filled texts before: ``Template.safe_substitute()``."""

    def _t(self, language: str, key: str, values: Mapping[str, str]) -> str:
        text = self._strings.get(language, self._strings["en"])[key]
        return Template(text).safe_substitute(values) if "$" in text else text


_hostile = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "' onmouseover='x",
            "&amp; &lt;",
            "$inviter ${account} $$",
            "=?utf-8?q?a=0D=0ABcc:_x@y?=",
            "a\u2028b",
        ]
    ),
)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def invitation_contexts(draw: st.DrawFn) -> InvitationContext:
    return InvitationContext(
        language=draw(st.sampled_from(["en", "de", "fr"])),
        brand=draw(_hostile),
        account_name=draw(_hostile),
        inviter_email=draw(_hostile),
        invitee_email=draw(_hostile),
        accept_url=draw(_hostile),
        expires_at=draw(_times),
        all_permissions=draw(st.booleans()),
        permission_labels=draw(st.lists(_hostile, max_size=3)),
        scoped_permissions=draw(
            st.lists(st.tuples(_hostile, st.lists(_hostile, max_size=3)), max_size=2)
        ),
        note=draw(_hostile),
        access_until=draw(st.none() | _times),
    )


vendor_strings = st.dictionaries(
    st.sampled_from(["en", "de", "fr"]),
    st.dictionaries(
        st.sampled_from(
            [
                "invitation.subject",
                "invitation.body",
                "invitation.scoped",
                "invitation.note",
                "invitation.until",
                "invitation.action",
                "invitation.expires",
                "notification.footer",
                "brand",
                "date.format",
            ]
        ),
        st.one_of(template_texts, _hostile, date_formats),
        max_size=4,
    ),
    max_size=2,
)


class TestDefaultTemplatesAsBefore:
    """Every mail the default templates write is the one they wrote before, byte for
    byte, escaping included, with the vendor's own strings too."""

    @settings(max_examples=300, deadline=None)
    @given(invitation_contexts(), vendor_strings, st.none() | _hostile)
    def test_invitation(
        self, context: InvitationContext, strings: dict[str, dict[str, str]], brand: str | None
    ) -> None:
        new = DefaultTemplates(brand=brand, strings=strings)
        old = _OldTemplates(brand=brand, strings=strings)
        # twice: the first call reads each text, the second uses what it read
        assert new.invitation(context) == old.invitation(context)
        assert new.invitation(context) == old.invitation(context)

    @settings(max_examples=200, deadline=None)
    @given(
        st.sampled_from(["en", "de", "fr"]),
        _hostile,
        _hostile,
        _hostile,
        st.none() | _hostile,
        vendor_strings,
    )
    def test_notification(
        self,
        language: str,
        account: str,
        label: str,
        text: str,
        html: str | None,
        strings: dict[str, dict[str, str]],
    ) -> None:
        context = NotificationContext(
            language=language,
            brand="",
            account_name=account,
            category="billing",
            category_label=label,
            recipient="a@example.com",
            subject="s",
            text=text,
            html=html,
        )
        new = DefaultTemplates(strings=strings)
        old = _OldTemplates(strings=strings)
        assert new.notification(context) == old.notification(context)

    def test_shipped_invitation_escapes(self) -> None:
        context = InvitationContext(
            language="en",
            brand="",
            account_name='<b>"Acme" & Co</b>',
            inviter_email="x@example.com",
            invitee_email="y@example.com",
            accept_url='https://p.example/a?token=t"><script>',
            expires_at=datetime(2026, 1, 1, tzinfo=UTC),
            all_permissions=False,
            permission_labels=["<i>View</i>"],
            access_until=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=3),
        )
        mail = DefaultTemplates().invitation(context)
        assert "&lt;b&gt;&quot;Acme&quot; &amp; Co&lt;/b&gt;" in mail.html
        assert "&lt;i&gt;View&lt;/i&gt;" in mail.html
        assert 'token=t&quot;&gt;&lt;script&gt;"' in mail.html
        assert "<script>" not in mail.html
        assert "<b>" not in mail.html
        assert mail == _OldTemplates().invitation(context)


class _WithBatch:
    def send(self, message: EmailMessage) -> None:
        pass

    def batch(self) -> AbstractContextManager[Any]:
        return nullcontext(self)


class _BlockedBatch(_WithBatch):
    batch = None  # type: ignore[assignment]


class _Registered:
    def send(self, message: EmailMessage) -> None:
        pass


BatchMailer.register(_Registered)


class _Dynamic:
    """A proxy whose batch() comes and goes with its target."""

    def __init__(self, target: object) -> None:
        self.target = target

    def send(self, message: EmailMessage) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


class TestBatchMailerByClass:
    def test_as_the_runtime_check(self) -> None:
        on_instance = MemoryMailer()
        on_instance.batch = lambda: nullcontext(on_instance)  # type: ignore[attr-defined]
        blocked = _WithBatch()
        blocked.batch = None  # type: ignore[assignment, method-assign]
        proxy = _Dynamic(_WithBatch())
        mailers: list[Any] = [
            SmtpMailer("localhost"),
            MemoryMailer(),
            _WithBatch(),
            _BlockedBatch(),
            _Registered(),
            on_instance,
            blocked,
            proxy,
            _Dynamic(MemoryMailer()),
        ]
        for _ in range(3):  # the second and third ask what the first may have kept
            for mailer in mailers:
                assert _is_batch_mailer(mailer) == isinstance(mailer, BatchMailer), mailer
        proxy.target = MemoryMailer()
        assert not _is_batch_mailer(proxy)
        assert not isinstance(proxy, BatchMailer)
