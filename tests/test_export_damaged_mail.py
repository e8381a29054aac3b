"""A person's export lists the damaged or foreign messages to others that their erasure
then cancels or drops, found with the erasure's lenient search (its bytes, every header
and part decoded; a message that cannot be read whole counts as naming them), and not
those it leaves as they were. On every backend."""

from __future__ import annotations

from teamaccess import Store
from teamaccess._mail.redact import IN_THE_BYTES, UNREADABLE
from teamaccess.testing import FrozenClock

from . import test_erasure_forms as forms
from . import test_privacy_mail as privacy_mail

PIA, PIA_EMAIL, OTHER = privacy_mail.PIA, privacy_mail.PIA_EMAIL, privacy_mail.OTHER
DAMAGED = privacy_mail.TestUnrelatedDamagedMail
#: Her address in UTF-8 in a part that says it is Latin-1: decoded as declared it reads
#: otherwise, only the stored bytes as they stand name her.
WRONG_CHARSET = privacy_mail._damaged(f"<p>{PIA_EMAIL}</p>").replace(b"utf-8", b"iso-8859-1")
_HER_WORD = "=?utf-8?q?J=C3=B6rg=2EPia=40B=C3=BCcher=2Eexample?="
NAMING = {
    **DAMAGED.NAMING,
    "wrong-charset": WRONG_CHARSET,
    # Headers named as the row's own fields: shown beside them, never in their place.
    "status-header": privacy_mail._damaged("<p>x</p>", head=f"Status: {_HER_WORD}\n"),
    "last-error-header": privacy_mail._damaged("<p>x</p>", head=f"Last_Error: {_HER_WORD}\n"),
}
#: What the export says of each row naming her: the field and what it holds.
EXPECTED = {
    "base64-her": ("html", f"<p>{PIA_EMAIL}</p>"),
    "qp-soft-break": ("html", f"<p>{PIA_EMAIL}</p>\n"),
    "header-word": ("x-note", PIA_EMAIL),
    "broken-boundary": ("message", UNREADABLE),
    "encoding-typo": ("message", UNREADABLE),
    "nested-base64": ("message", UNREADABLE),
    "wrong-charset": ("message", IN_THE_BYTES),
    "status-header": ("header status", PIA_EMAIL),
    "last-error-header": ("header last_error", PIA_EMAIL),
}


def test_the_export_lists_what_the_erasure_cancels(store: Store, clock: FrozenClock) -> None:
    team, acc, _ = privacy_mail.with_damaged_rows(store, clock, {**DAMAGED.UNRELATED, **NAMING})

    document, touched = forms._export_then_erase(store, team, [acc], user_id=PIA)

    assert forms._listed(document) == touched
    mail = {m["id"]: m["fields"] for m in document["mentions"] if m["kind"] == "mail"}
    for name in DAMAGED.UNRELATED:
        for status in ("pending", "sent"):
            assert f"msg-{name}-{status}" not in mail, name
            assert ("mail", f"msg-{name}-{status}") not in touched, name
    for name, (field, value) in EXPECTED.items():
        for status in ("pending", "sent"):
            row = f"msg-{name}-{status}"
            assert ("mail", row) in touched, name
            assert mail[row] == {"status": status, field: value}, name
    with team._store.read() as uow:
        for name in NAMING:
            pending = uow.get_outbox(f"msg-{name}-pending")
            assert pending is not None
            assert (pending.status, pending.message) == ("cancelled", None), name
