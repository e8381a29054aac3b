# The full-width letters are the point of these tests.
# ruff: noqa: RUF001
"""Erasure finds the person's address in others' free text however it is written there:
full-width letters or "@", invisible characters inside it, JSON escapes, HTML character
references, percent-encoding, any case. On every backend, and on a real SQLite file,
whose bytes (and its WAL's) hold no form of it afterwards. A numeric user id is not a
word to look for in free text (an invoice number or a phone number may equal it)."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from teamaccess import SYSTEM, DeliveryFailed, PermissionSet, SQLiteStore, Store, TeamAccess
from teamaccess._mail.redact import Redactor
from teamaccess._privacy import PersonMatcher
from teamaccess.testing import FailingMailer, FrozenClock

from .conftest import SECRET

PIA = "user-pia-4471"
PIA_EMAIL = "pia.person@agentur.example"
ERASED = "[erased]"

#: Each way a text may write her address, and what it reads as.
FORMS = {
    "full-width": "ｐｉａ．ｐｅｒｓｏｎ＠ａｇｅｎｔｕｒ．ｅｘａｍｐｌｅ",
    "full-width @": "pia.person＠agentur.example",
    "small @": "pia.person﹫agentur.example",
    "full-width upper": "ＰＩＡ.person＠AGENTUR.example",
    "zero-width space": "pia.per\u200bson@agentur.example",
    "zero-width joiners": "pia\u200c.person@agen\u200dtur.example",
    "word joiner and BOM": "pia.person\u2060@\ufeffagentur.example",
    "soft hyphen": "pia.per\u00adson@agen\u00adtur.example",
    "JSON @": "pia.person\\u0040agentur.example",
    "JSON letters": "\\u0070ia.person\\u0040agentur\\u002Eexample",
    "decimal reference": "pia.person&#64;agentur.example",
    "hex reference": "pia.person&#x40;agentur.example",
    "upper hex reference": "PIA.PERSON&#X40;Agentur.Example",
    "named reference": "pia.person&commat;agentur.example",
    "references for letters": "&#112;ia.person&#x40;agentur&period;example",
    "percent": "pia.person%40agentur.example",
    "percent letters": "%70ia.person%40AGENTUR%2Eexample",
    "mixed case": "Pia.PERSON@Agentur.EXAMPLE",
}


def make(store: Store, clock: FrozenClock, mailer: FailingMailer) -> TeamAccess:
    return TeamAccess(
        store, mailer, secret_key=SECRET, clock=clock, pseudonym_key="k",
        accept_url="https://panel.example.net/accept?token={token}",
    )  # fmt: skip


def fill(team: TeamAccess, mailer: FailingMailer, form: str, olga: str = "olga") -> str:
    """An account of *olga*'s where others' free text names Pia in *form*; her membership."""
    acc = team.create_account(name="Shop", owner_id=olga, owner_email=f"{olga}@shop.example").id
    inv = team.invite(acc, actor_id=olga, email=PIA_EMAIL, permissions=PermissionSet.of())
    team.accept_invitation(inv.token or "", user_id=PIA, email=PIA_EMAIL)
    max_inv = team.invite(
        acc, actor_id=olga, email="max@other.example", permissions=PermissionSet.of(),
        metadata={"replaces": [f"Vertretung für {form}"]},
    )  # fmt: skip
    team.accept_invitation(max_inv.token or "", user_id="max", email="max@other.example")
    team.invite(
        acc, actor_id=olga, email="new@other.example", permissions=PermissionSet.of(),
        note=f"Frag {form} nach dem Zugang", metadata={"ticket": form},
    )  # fmt: skip
    team.add_contact(
        acc, actor_id=olga, name="Vertretung", email="deputy@other.example",
        categories=["billing"], role=f"vertritt <{form}>", company="Agentur AG",
    )  # fmt: skip
    # The vendor's subject goes into the audit log; a server's refusal quotes her.
    mailer.failing = True
    mailer.error = ConnectionError(f"550 mailbox {form} unavailable")
    with contextlib.suppress(DeliveryFailed):
        team.notify(acc, "billing", subject=f"Neu: {form}", text="Hallo")
    mailer.failing = False
    return acc


def free_texts(team: TeamAccess, acc: str) -> list[str]:
    """Every free text of others' rows where the form was written."""
    member = team.get_member(acc, "max")
    [pending] = team.pending_invitations(acc)
    [deputy] = [c for c in team.contacts(acc) if c.email == "deputy@other.example"]
    errors = [m.last_error or "" for m in team.pending_messages()]
    subjects = [
        str(e.details.get("subject")) for e in team.audit_log(acc) if "subject" in e.details
    ]
    notes = [str(e.details) for e in team.audit_log(acc)]
    return [
        json.dumps(member.metadata, ensure_ascii=False),
        pending.note or "",
        json.dumps(pending.metadata, ensure_ascii=False),
        deputy.role or "",
        *errors,
        *subjects,
        *notes,
    ]


@pytest.mark.parametrize("name", FORMS)
def test_each_form_is_found_in_free_text(store: Store, clock: FrozenClock, name: str) -> None:
    form = FORMS[name]
    mailer = FailingMailer(failing=False)
    team = make(store, clock, mailer)
    acc = fill(team, mailer, form)
    before = free_texts(team, acc)
    assert sum(form in text for text in before) >= 5

    report = team.erase_person(user_id=PIA, actor_id=SYSTEM)

    assert report.texts_redacted == 4  # max's membership and invitation, new's, the deputy
    assert report.messages_redacted >= 1  # the delivery error (and the stored notice)
    after = free_texts(team, acc)
    for text in after:
        assert form not in text
        assert not Redactor([PIA_EMAIL], [PIA]).found(text), text
    [pending] = team.pending_invitations(acc)
    assert pending.note == f"Frag {ERASED} nach dem Zugang"
    assert pending.metadata == {"ticket": ERASED}
    [deputy] = [c for c in team.contacts(acc) if c.email == "deputy@other.example"]
    assert deputy.role == f"vertritt <{ERASED}>"
    assert team.get_member(acc, "max").metadata == {"replaces": [f"Vertretung für {ERASED}"]}
    errors = {m.last_error for m in team.pending_messages()}
    assert errors == {f"ConnectionError: 550 mailbox {ERASED} unavailable"}
    [subject] = {str(e.details["subject"]) for e in team.audit_log(acc) if "subject" in e.details}
    assert subject == f"Neu: {report.pseudonym}"


def _written(form: str) -> list[bytes]:
    """The bytes a file may hold *form* as: UTF-8, in a JSON text (escaped or not), all
    lower-cased."""
    found = {form.lower(), json.dumps(form)[1:-1].lower()}
    found.add(json.dumps(form, ensure_ascii=False)[1:-1].lower())
    return sorted(f.encode() for f in found)


def test_a_sqlite_file_holds_no_form_afterwards(tmp_path: Path, clock: FrozenClock) -> None:
    path = tmp_path / "forms.db"
    store = SQLiteStore(path)
    try:
        mailer = FailingMailer(failing=False)
        team = make(store, clock, mailer)
        for i, form in enumerate(FORMS.values()):
            fill(team, mailer, form, f"olga{i}")
            clock.advance(timedelta(days=1))  # past the limit of invitations to her a day
        raw = (path.read_bytes() + Path(f"{path}-wal").read_bytes()).lower()
        for form in FORMS.values():
            assert any(b in raw for b in _written(form)), form

        team.erase_person(user_id=PIA, actor_id=SYSTEM)

        files = [path, Path(f"{path}-wal")]
        raw = b"".join(p.read_bytes() for p in files if p.exists()).lower()
        for name, form in FORMS.items():
            for written in _written(form):
                assert written not in raw, (name, written)
        assert b"pia.person" not in raw
        assert b"agentur.example" not in raw
    finally:
        store.close()


#: Another person's address that ends in Pia's: an apostrophe inside a word is part of
#: the local part (O'Connor), and HTML writes it escaped.
OTHERS = ("d'pia.person@agentur.example", "d&#x27;pia.person@agentur.example")


@pytest.mark.parametrize("other", OTHERS)
def test_another_persons_longer_address_stays(
    tmp_path: Path, clock: FrozenClock, other: str
) -> None:
    path = tmp_path / "others.db"
    store = SQLiteStore(path)
    try:
        mailer = FailingMailer(failing=False)
        team = make(store, clock, mailer)
        acc = fill(team, mailer, other)
        team.erase_person(user_id=PIA, actor_id=SYSTEM)
        texts = free_texts(team, acc)
        assert sum(other in text for text in texts) >= 5
        assert not any(ERASED in text for text in texts), texts
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        assert other.encode() in raw
    finally:
        store.close()


class TestNotErasedOnPurpose:
    def test_another_address_around_a_form_stays(self) -> None:
        redactor = Redactor([PIA_EMAIL], [PIA])
        for text in (
            "xpia.person＠agentur.example",
            "pia.person&#64;agentur.example.org",
            "ｘpia.person＠agentur.example",
            "pia.person%40agentur.examples",
            "d'pia.person@agentur.example",
            "d\u2019pia.person@agentur.example",
            "d&#x27;pia.person@agentur.example",
            "d\\u0027pia.person&#64;agentur.example",
            "x&#46;pia.person@agentur.example",
            "pia.person@agentur.example&#46;org",
            "pia.person@agentur.example%2Dshop",
        ):
            assert not redactor.found(text), text
            assert redactor.sub(text) == text

    def test_a_quote_or_an_escaped_full_stop_after_it_still_ends_it(self) -> None:
        redactor = Redactor([PIA_EMAIL], [PIA])
        for text, redacted in (
            ("write to 'pia.person@agentur.example'", f"write to '{ERASED}'"),
            ("pia.person@agentur.example's box", f"{ERASED}'s box"),
            ("&lt;pia.person@agentur.example&gt;", f"&lt;{ERASED}&gt;"),
            ("ask pia.person@agentur.example&#46; Then", f"ask {ERASED}&#46; Then"),
        ):
            assert redactor.found(text), text
            assert redactor.sub(text) == redacted

    def test_the_forms_the_docs_say_are_not_found(self) -> None:
        redactor = Redactor([PIA_EMAIL], [PIA])
        for text in (
            "pia.person&amp;#64;agentur.example",  # an escape of an escape
            "pia.person%2540agentur.example",
            "pia.person＆＃６４；agentur.example",  # a full-width escape
            "pia.person at agentur dot example",
            "pi\u0430.person@agentur.example",  # a Cyrillic a
            "pia.person@agentur\u180e.example",  # an invisible character not listed
            "pia.person@<b>agentur</b>.example",
        ):
            assert not redactor.found(text), text

    def test_the_rest_of_the_text_keeps_its_escapes(self) -> None:
        redactor = Redactor([PIA_EMAIL], [PIA])
        text = "&lt;b&gt;Frag&nbsp;pia.person&#64;agentur.example%21 \\u00e4 ＡＢＣ\u200b"
        assert redactor.sub(text) == f"&lt;b&gt;Frag&nbsp;{ERASED}%21 \\u00e4 ＡＢＣ\u200b"


def with_numeric_id(store: Store, clock: FrozenClock) -> tuple[TeamAccess, str]:
    """An account where Pia's user id is "4711000", and the number also stands in a
    contact's phone and role and in another invitation's note and metadata."""
    team = make(store, clock, FailingMailer(failing=False))
    acc = team.create_account(name="Shop", owner_id="olga", owner_email="olga@shop.example").id
    inv = team.invite(acc, actor_id="olga", email=PIA_EMAIL, permissions=PermissionSet.of())
    team.accept_invitation(inv.token or "", user_id="4711000", email=PIA_EMAIL)
    team.add_contact(
        acc, actor_id="olga", name="Buchhaltung", email="books@shop.example",
        categories=["billing"], phone="+49 30 4711000", role="Rechnung 4711000",
    )  # fmt: skip
    team.invite(
        acc, actor_id="olga", email="new@other.example", permissions=PermissionSet.of(),
        note="Kundennummer 4711000", metadata={"order": "4711000"},
    )  # fmt: skip
    return team, acc


class TestNumericIds:
    """A user id of digits alone is a number in free text, not the person."""

    def test_a_number_equal_to_the_id_stays_in_free_text(
        self, store: Store, clock: FrozenClock
    ) -> None:
        team, acc = with_numeric_id(store, clock)

        report = team.erase_person(user_id="4711000", actor_id=SYSTEM)

        assert report.memberships == 1
        assert report.texts_redacted == 0
        [contact] = team.contacts(acc)
        assert (contact.phone, contact.role) == ("+49 30 4711000", "Rechnung 4711000")
        [pending] = team.pending_invitations(acc)
        assert (pending.note, pending.metadata) == ("Kundennummer 4711000", {"order": "4711000"})
        # Where the library itself wrote the id (who acted, on whom), it is the person.
        joined = [e for e in team.audit_log(acc) if e.action == "invitation.accepted"]
        assert joined
        assert all(e.actor_id == report.pseudonym for e in joined)
        assert all("4711000" not in (e.actor_id, e.target) for e in team.audit_log(acc))

    def test_an_id_with_a_letter_is_still_a_word_to_find(self) -> None:
        redactor = Redactor([], ["4711000", "u4711000", "12-34-56-78"])
        assert redactor.sub("Nr. 4711000, u4711000, 12-34-56-78") == (
            f"Nr. 4711000, {ERASED}, 12-34-56-78"
        )
        # The structured fields still compare ids whole.
        assert PersonMatcher(["4711000"], []).replace_text("4711000", "erased:x") == "erased:x"


def _records(store: Store, accounts: list[str]) -> dict[tuple[str, str], object]:
    """Every row of *accounts* (and the whole outbox), by kind and id."""
    found: dict[tuple[str, str], object] = {}
    with store.read() as uow:
        for acc in accounts:
            found.update({("member", f"{acc}/{m.user_id}"): m for m in uow.members(acc)})
            found.update({("invitation", i.id): i for i in uow.invitations(acc)})
            found.update({("contact", c.id): c for c in uow.contacts(acc)})
            found.update({("event", e.id): e for e in uow.events(acc, limit=10_000)})
        found.update({("mail", m.id): m for m in uow.outbox()})
    return found


def _listed(document: dict[str, Any]) -> set[tuple[str, str]]:
    """The rows a person's export lists, by kind and id as :func:`_records` names them."""
    listed = {("member", f"{m['account_id']}/{m['user_id']}") for m in document["memberships"]}
    for key in ("invitations_received", "invitations_sent"):
        listed |= {("invitation", i["id"]) for i in document[key]}
    listed |= {("contact", c["id"]) for c in document["contacts"]}
    listed |= {("mail", m["id"]) for m in document["mail"]}
    listed |= {("event", e["id"]) for e in document["audit_events"]}
    for entry in document["mentions"]:
        row = entry["id"]
        listed.add(
            (entry["kind"], f"{entry['account_id']}/{row}" if entry["kind"] == "member" else row)
        )
    return listed


def _export_then_erase(
    store: Store, team: TeamAccess, accounts: list[str], **person: str
) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """The person's export, and the rows their erasure then deleted or changed."""
    document = team.export_person(**person)
    json.dumps(document)  # JSON-ready as it is
    before = _records(store, accounts)
    team.erase_person(**person, actor_id=SYSTEM)
    after = _records(store, accounts)
    return document, {key for key, row in before.items() if after.get(key) != row}


class TestExportListsWhatErasureTouches:
    """A person's export lists every row their erasure then deletes or rewrites, however
    the address is written in others' text (Art. 15 and Art. 17 agree), and no more."""

    @pytest.mark.parametrize("name", FORMS)
    def test_each_form(self, store: Store, clock: FrozenClock, name: str) -> None:
        form = FORMS[name]
        mailer = FailingMailer(failing=False)
        team = make(store, clock, mailer)
        acc = fill(team, mailer, form)

        document, touched = _export_then_erase(store, team, [acc], user_id=PIA)

        assert _listed(document) == touched
        mentions = {(m["kind"], m["id"]): m["fields"] for m in document["mentions"]}
        # max's membership and invitation, new's invitation, the deputy: as the erasure
        # counts them in texts_redacted; and the notice to the deputy (and to olga).
        [new] = team.pending_invitations(acc)
        assert mentions[("member", "max")] == {"metadata": {"replaces": [f"Vertretung für {form}"]}}
        assert mentions[("invitation", new.id)] == {
            "note": f"Frag {form} nach dem Zugang",
            "metadata": {"ticket": form},
        }
        [deputy] = [m for m in document["mentions"] if m["kind"] == "contact"]
        assert deputy["fields"] == {"role": f"vertritt <{form}>"}
        assert deputy["account_name"] == "Shop"
        mail = [m["fields"] for m in document["mentions"] if m["kind"] == "mail"]
        assert len(mail) == 2  # the notice to olga and to the deputy
        for fields in mail:
            assert fields["status"] == "pending"
            assert fields["last_error"] == f"ConnectionError: 550 mailbox {form} unavailable"
            assert Redactor([PIA_EMAIL], []).found(fields["subject"]), fields
        # The notification's event names her in the vendor's subject.
        [notified] = [e for e in document["audit_events"] if "subject" in e["details"]]
        assert notified["details"]["subject"] == f"Neu: {form}"

    @pytest.mark.parametrize("other", OTHERS)
    def test_another_persons_longer_address_is_not_listed(
        self, store: Store, clock: FrozenClock, other: str
    ) -> None:
        mailer = FailingMailer(failing=False)
        team = make(store, clock, mailer)
        acc = fill(team, mailer, other)

        document, touched = _export_then_erase(store, team, [acc], user_id=PIA)

        assert document["mentions"] == []
        assert _listed(document) == touched
        assert other not in json.dumps(document, ensure_ascii=False)
        # The audit log tells them apart too: the vendor's subject keeps the address.
        subjects = {e.details.get("subject") for e in team.audit_log(acc)} - {None}
        assert subjects == {f"Neu: {other}"}

    def test_a_numeric_id_in_free_text_is_not_listed(
        self, store: Store, clock: FrozenClock
    ) -> None:
        team, acc = with_numeric_id(store, clock)

        document, touched = _export_then_erase(store, team, [acc], user_id="4711000")

        assert document["mentions"] == []
        assert _listed(document) == touched

    def test_the_waiting_mail_of_invitations_they_sent(
        self, store: Store, clock: FrozenClock
    ) -> None:
        at_once = make(store, clock, FailingMailer(failing=False))  # its token is in the mail
        acc = at_once.create_account(name="Shop", owner_id="olga", owner_email="o@shop.example").id
        inv = at_once.invite(acc, actor_id="olga", email=PIA_EMAIL, permissions=PermissionSet.all())
        at_once.accept_invitation(inv.token or "", user_id=PIA, email=PIA_EMAIL)
        team = TeamAccess(
            store, FailingMailer(failing=False), secret_key=SECRET, clock=clock,
            pseudonym_key="k", delivery="queue",
            accept_url="https://panel.example.net/accept?token={token}",
        )  # fmt: skip
        sent = team.invite(
            acc, actor_id=PIA, email="max@other.example", permissions=PermissionSet.of()
        )
        [waiting] = [m for m in team.pending_messages() if m.invitation_id == sent.id]

        document, touched = _export_then_erase(store, team, [acc], user_id=PIA)

        # Revoked with the membership, as remove_member() does: its mail is cancelled.
        assert ("mail", waiting.id) in touched
        assert _listed(document) == touched
        [entry] = [m for m in document["mentions"] if m["id"] == waiting.id]
        assert entry["fields"] == {"status": "pending", "invitation_id": sent.id}
