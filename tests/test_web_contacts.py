"""The contacts and activity pages, through the Flask blueprint."""

import re
from email.message import EmailMessage

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from tests.web_panel import (  # noqa: E402
    Panel,
    errors,
    panel,
)

from teamaccess import (  # noqa: E402
    DeliveryFailed,
    DeliveryRefused,
)

__all__ = ["panel"]  # the fixture, imported for pytest


class TestContacts:
    """List, add, edit, remove, with the mail categories as checkboxes."""

    def test_add_edit_remove_and_recipients_follow(self, panel: Panel) -> None:
        page = f"/team/accounts/{panel.account}/contacts"
        _, body = panel.get("max", page, "de")
        assert "Änderungen speichern" in body
        assert re.search(r'value="general" checked', body)
        status, _, location = panel.post("max", page, {
            "name": "Steuerbüro Klein", "email": "kanzlei@steuer.example",
            "company": "Klein & Co", "category": ["billing"],
        })  # fmt: skip
        assert (status, location) == (303, page)
        assert panel.team.recipients(panel.account, "billing") == [
            "chef@muster.de", "kanzlei@steuer.example",
        ]  # fmt: skip
        contact = panel.team.contacts(panel.account)[0]
        _, body = panel.get("max", page)
        assert "Klein &amp; Co" in body
        status, _, _ = panel.post("max", f"{page}/{contact.id}", {
            "name": "Steuerbüro Klein", "email": "kanzlei@steuer.example",
            "category": ["general", "support"],
        })  # fmt: skip
        assert status == 303
        assert panel.team.recipients(panel.account, "billing") == ["chef@muster.de"]
        assert "kanzlei@steuer.example" in panel.team.recipients(panel.account, "support")
        panel.post("max", f"{page}/{contact.id}/remove", {"confirm": "yes"})
        assert panel.team.contacts(panel.account) == []

    def test_errors_keep_the_input(self, panel: Panel) -> None:
        page = f"/team/accounts/{panel.account}/contacts"
        status, body, _ = panel.post("max", page, {
            "name": "", "email": "kanzlei(at)steuer", "category": ["billing"],
        }, "de")  # fmt: skip
        assert status == 400
        assert errors(body) == ["Bitte geben Sie einen Namen ein."]
        status, body, _ = panel.post("max", page, {
            "name": "Klein", "email": "kanzlei(at)steuer", "category": ["billing"],
        }, "de")  # fmt: skip
        assert errors(body)[0].startswith("Das ist keine gültige E-Mail-Adresse.")
        assert 'value="kanzlei(at)steuer"' in body
        assert 'value="Klein"' in body
        assert re.search(r'value="billing" checked', body)
        assert not re.search(r'value="general" checked', body)
        assert panel.team.contacts(panel.account) == []

    def test_read_only_without_contacts_manage(self, panel: Panel) -> None:
        panel.join("bea", "billing.view")
        page = f"/team/accounts/{panel.account}/contacts"
        status, body = panel.get("bea", page)
        assert status == 200
        assert 'name="email"' not in body
        status, _, _ = panel.post("bea", page, {"name": "x", "email": "x@y.de"})
        assert status == 403
        assert panel.team.contacts(panel.account) == []


class TestActivity:
    """The audit log, newest first, in pages."""

    def test_paged(self, panel: Panel) -> None:
        for n in range(30):
            panel.team.add_contact(panel.account, actor_id="max", name=f"C{n}",
                                   email=f"c{n}@x.de", categories=["general"])  # fmt: skip
        page = f"/team/accounts/{panel.account}/activity"
        _, first = panel.get("max", page, "de")
        assert first.count("<tr><td") == 25
        assert "hat den Kontakt c29@x.de angelegt" in first
        assert "chef@muster.de" in first
        assert "Älter" in first
        assert "Neuer" not in first
        _, second = panel.get("max", page + "?page=2", "de")
        assert second.count("<tr><td") == 6  # 5 contacts and the account's creation
        assert "hat das Kundenkonto angelegt" in second
        assert "Älter" not in second
        assert "Neuer" in second
        assert panel.get("max", page + "?page=x")[0] == 200

    def test_a_bounced_mail_is_shown(self, panel: Panel, monkeypatch: pytest.MonkeyPatch) -> None:
        send = panel.mailer.send

        def refuse(message: EmailMessage, **kwargs: object) -> None:
            if message["To"] == "weg@x.de":
                raise DeliveryRefused("550 5.1.1 no such user", code=550)
            send(message)

        monkeypatch.setattr(panel.mailer, "send", refuse)
        panel.team.give_up_after = 1
        panel.team.add_contact(panel.account, actor_id="max", name="Weg",
                               email="weg@x.de", categories=["general"])  # fmt: skip
        with pytest.raises(DeliveryFailed, match="for good"):
            panel.team.notify(panel.account, "general", subject="S", text="T")
        page = f"/team/accounts/{panel.account}/activity"
        _, english = panel.get("max", page)
        assert "stopped the mail to weg@x.de: the mail server refused it for good" in english
        _, german = panel.get("max", page, "de")
        assert "hat die E-Mail an weg@x.de eingestellt" in german
