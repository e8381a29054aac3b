"""The contacts page words the two contact rules at the field they concern, in English
and German: no mail category ticked, and an address another contact has."""

import pytest

flask = pytest.importorskip("flask", reason="pip install -e '.[test]' installs the web extra")

from tests.web_panel import Panel, errors, panel  # noqa: E402

__all__ = ["panel"]  # the fixture, imported for pytest

NONE_TICKED = {
    "en": "Choose at least one kind of mail this contact receives.",
    "de": "Wählen Sie mindestens eine Art von E-Mails, die dieser Kontakt erhält.",
}
TAKEN = {
    "en": "This address is already a contact of this customer account.",
    "de": "Diese Adresse ist bereits ein Kontakt dieses Kundenkontos.",
}


@pytest.mark.parametrize("language", ["en", "de"])
def test_no_category_ticked(panel: Panel, language: str) -> None:
    page = f"/team/accounts/{panel.account}/contacts"
    status, body, _ = panel.post(
        "max", page, {"name": "Klein", "email": "k@steuer.example"}, language
    )
    assert status == 400
    assert errors(body) == [NONE_TICKED[language]]
    assert 'id="ta-categories-error"' in body
    assert panel.team.contacts(panel.account) == []
    contact = panel.team.add_contact(panel.account, actor_id="max", name="Klein",
                                     email="k@steuer.example", categories=["billing"])  # fmt: skip
    status, body, _ = panel.post(
        "max", f"{page}/{contact.id}", {"name": "Klein", "email": "k@steuer.example"}, language
    )
    assert status == 400
    assert errors(body) == [NONE_TICKED[language]]
    assert panel.team.get_contact(contact.id) == contact


@pytest.mark.parametrize("language", ["en", "de"])
def test_an_address_another_contact_has(panel: Panel, language: str) -> None:
    page = f"/team/accounts/{panel.account}/contacts"
    first = panel.team.add_contact(panel.account, actor_id="max", name="Klein",
                                   email="k@steuer.example", categories=["billing"])  # fmt: skip
    status, body, _ = panel.post("max", page, {
        "name": "Klein again", "email": "K@Steuer.example", "category": ["support"],
    }, language)  # fmt: skip
    assert status == 400
    (said,) = errors(body)
    assert said.startswith(TAKEN[language])
    assert 'id="ta-email-error"' in body  # said at the address field
    assert first.id not in said
    assert panel.team.contacts(panel.account) == [first]
