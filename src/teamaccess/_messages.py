"""Customer-facing messages for every error, in English and German.

``str(exc)`` is written for the developer: it names ids, arguments and the method to call
instead. A page shows :func:`error_message` instead, which says in the customer's language
what happened and what to do, and never contains an id, a Python name or a token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import (
    AccountNotFound,
    AlreadyContact,
    AlreadyInvited,
    AlreadyMember,
    ClockError,
    Conflict,
    ContactNotFound,
    DeliveryFailed,
    DeliveryRefused,
    EmailMismatch,
    ImportInterrupted,
    InvalidEmail,
    InvalidImport,
    InvalidInvitation,
    InvitationError,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    InvitationUsed,
    MemberNotFound,
    NotFound,
    OwnershipRequired,
    PermissionDenied,
    RateLimited,
    ScrubFailed,
    StorageError,
    TeamAccessError,
    UnknownCategory,
    UnknownPermission,
    ValidationError,
)

if TYPE_CHECKING:
    from ._permissions import Catalog

__all__ = ["LANGUAGES", "error_message"]

#: the languages of :func:`error_message`, the invitation mail and ``teamaccess.web``
LANGUAGES = ("en", "de")

#: class -> (English, German); looked up along the class's MRO, so a vendor's subclass
#: reads as its nearest parent. A test checks that every class of the tree has its own entry.
_MESSAGES: dict[type[TeamAccessError], tuple[str, str]] = {
    TeamAccessError: (
        "Something went wrong. Please try again; if it keeps happening, contact support.",
        "Etwas ist schiefgegangen. Bitte versuchen Sie es erneut; wenn es wieder passiert, "
        "wenden Sie sich an den Support.",
    ),
    ValidationError: (
        "Please check your input: each field takes a single line of text and must not be empty.",
        "Bitte prüfen Sie Ihre Eingabe: jedes Feld nimmt eine Zeile Text und darf nicht leer sein.",
    ),
    InvalidEmail: (
        "This is not a valid email address. Please check it (for example name@example.com).",
        "Das ist keine gültige E-Mail-Adresse. Bitte prüfen Sie sie (zum Beispiel "
        "name@beispiel.de).",
    ),
    UnknownPermission: (
        "One of the chosen permissions does not exist (any more). Please reload the page and "
        "choose again.",
        "Eine der gewählten Berechtigungen gibt es nicht (mehr). Bitte laden Sie die Seite neu "
        "und wählen Sie erneut.",
    ),
    UnknownCategory: (
        "One of the chosen mail categories does not exist (any more). Please reload the page "
        "and choose again.",
        "Eine der gewählten E-Mail-Kategorien gibt es nicht (mehr). Bitte laden Sie die Seite "
        "neu und wählen Sie erneut.",
    ),
    NotFound: (
        "This no longer exists. Please reload the page.",
        "Das gibt es nicht mehr. Bitte laden Sie die Seite neu.",
    ),
    AccountNotFound: (
        "This customer account does not exist, or you have no access to it.",
        "Dieses Kundenkonto gibt es nicht, oder Sie haben keinen Zugriff darauf.",
    ),
    MemberNotFound: (
        "This user is not (or no longer) a user of this customer account.",
        "Diese Person ist kein Benutzer (mehr) dieses Kundenkontos.",
    ),
    InvitationNotFound: (
        "This invitation no longer exists. Please reload the page.",
        "Diese Einladung gibt es nicht mehr. Bitte laden Sie die Seite neu.",
    ),
    ContactNotFound: (
        "This contact no longer exists. Please reload the page.",
        "Diesen Kontakt gibt es nicht mehr. Bitte laden Sie die Seite neu.",
    ),
    PermissionDenied: (
        "You do not have the permission for this. Ask the account owner to grant it.",
        "Dafür fehlt Ihnen die Berechtigung. Bitten Sie den Kontoinhaber, sie Ihnen zu geben.",
    ),
    Conflict: (
        "This clashes with a change made meanwhile. Please reload the page.",
        "Das passt nicht zu einer zwischenzeitlichen Änderung. Bitte laden Sie die Seite neu.",
    ),
    AlreadyMember: (
        "This person is already a user of this customer account. Change their permissions "
        "in the list of users instead.",
        "Diese Person ist bereits Benutzer dieses Kundenkontos. Ändern Sie stattdessen ihre "
        "Berechtigungen in der Benutzerliste.",
    ),
    AlreadyInvited: (
        "This address already has an open invitation. Resend or revoke it in the list of "
        "open invitations.",
        "Für diese Adresse gibt es bereits eine offene Einladung. Senden Sie sie in der Liste "
        "der offenen Einladungen erneut oder ziehen Sie sie zurück.",
    ),
    AlreadyContact: (
        "This address is already a contact of this customer account. Choose the kinds of "
        "mail it receives on that contact instead.",
        "Diese Adresse ist bereits ein Kontakt dieses Kundenkontos. Wählen Sie stattdessen "
        "bei diesem Kontakt, welche E-Mails er erhält.",
    ),
    OwnershipRequired: (
        "Only the account owner may do this, and the owner always keeps every permission and "
        "cannot be removed. Transfer the ownership first.",
        "Das darf nur der Kontoinhaber, und der Kontoinhaber behält immer alle Berechtigungen "
        "und kann nicht entfernt werden. Übertragen Sie zuerst die Inhaberschaft.",
    ),
    InvitationError: (
        "This invitation cannot be used. Ask the account owner for a new one.",
        "Diese Einladung kann nicht verwendet werden. Bitten Sie den Kontoinhaber um eine neue.",
    ),
    InvalidInvitation: (
        "This invitation link is no longer valid: a newer invitation mail replaced it, or it "
        "was withdrawn. Use the link in the newest mail or ask for a new invitation.",
        "Dieser Einladungslink ist nicht mehr gültig: eine neuere Einladungs-E-Mail hat ihn "
        "ersetzt, oder er wurde zurückgezogen. Verwenden Sie den Link aus der neuesten E-Mail "
        "oder bitten Sie um eine neue Einladung.",
    ),
    InvitationExpired: (
        "This invitation has expired. Ask the account owner to send it again.",
        "Diese Einladung ist abgelaufen. Bitten Sie den Kontoinhaber, sie erneut zu senden.",
    ),
    InvitationRevoked: (
        "This invitation was withdrawn. Ask the account owner for a new invitation.",
        "Diese Einladung wurde zurückgezogen. Bitten Sie den Kontoinhaber um eine neue Einladung.",
    ),
    InvitationUsed: (
        "This invitation has already been accepted. Simply log in.",
        "Diese Einladung wurde bereits angenommen. Melden Sie sich einfach an.",
    ),
    EmailMismatch: (
        "This invitation was sent to another email address than the one you are logged in "
        "with. Log in with the invited address, or ask the account owner to invite yours.",
        "Diese Einladung ging an eine andere E-Mail-Adresse als die, mit der Sie angemeldet "
        "sind. Melden Sie sich mit der eingeladenen Adresse an, oder bitten Sie den "
        "Kontoinhaber, Ihre Adresse einzuladen.",
    ),
    RateLimited: (
        "Too many invitations were sent for this account in a short time. Please try again later.",
        "Für dieses Konto wurden in kurzer Zeit zu viele Einladungen versendet. Bitte "
        "versuchen Sie es später erneut.",
    ),
    DeliveryFailed: (
        "The change was saved, but its email could not be sent yet. It is sent again "
        "automatically; you need not do anything.",
        "Die Änderung wurde gespeichert, aber die E-Mail konnte noch nicht versendet werden. "
        "Sie wird automatisch erneut versendet; Sie müssen nichts tun.",
    ),
    DeliveryRefused: (
        "The mail server refused the email to this address. Please check the address.",
        "Der Mailserver hat die E-Mail an diese Adresse abgelehnt. Bitte prüfen Sie die Adresse.",
    ),
    StorageError: (
        "The service is briefly unavailable; nothing was changed. Please try again in a moment.",
        "Der Dienst ist kurz nicht erreichbar; es wurde nichts geändert. Bitte versuchen Sie "
        "es gleich noch einmal.",
    ),
    ClockError: (
        "Something is wrong with the settings of this service; nothing was changed. "
        "Please contact support.",
        "Bei den Einstellungen dieses Dienstes stimmt etwas nicht; es wurde nichts "
        "geändert. Bitte wenden Sie sich an den Support.",
    ),
    InvalidImport: (
        "The import file has errors; nothing was imported. Please correct the rows listed "
        "and import the file again.",
        "Die Importdatei enthält Fehler; es wurde nichts importiert. Bitte korrigieren Sie "
        "die genannten Zeilen und importieren Sie die Datei erneut.",
    ),
    ScrubFailed: (
        "Your request was carried out and the data is deleted; a clean-up step afterwards "
        "did not finish. Please do not repeat the request; the operator completes it.",
        "Ihre Anfrage wurde ausgeführt und die Daten sind gelöscht; ein Aufräumschritt "
        "danach wurde nicht abgeschlossen. Bitte wiederholen Sie die Anfrage nicht; der "
        "Betreiber schließt ihn ab.",
    ),
    ImportInterrupted: (
        "The import stopped partway; the accounts imported so far are kept. Please run the "
        "import again to add the rest.",
        "Der Import wurde unterbrochen; die bis dahin importierten Konten bleiben erhalten. "
        "Bitte starten Sie den Import erneut, um den Rest zu übernehmen.",
    ),
}


def error_message(
    exc: BaseException, language: str = "en", *, catalog: Catalog | None = None
) -> str:
    """What to tell a customer about *exc*, in *language* (``"en"`` or ``"de"``).

    Any exception is accepted: one that is not a ``TeamAccessError`` reads as the root's
    "something went wrong", never as its own text. With *catalog*, a ``PermissionDenied``
    names the missing permission's label; one about time (``access_until`` set) names the
    actor's own end, which the access it gives must not outlast.

    >>> from teamaccess import InvitationExpired
    >>> error_message(InvitationExpired("expired on 2026-05-01"), "de")
    'Diese Einladung ist abgelaufen. Bitten Sie den Kontoinhaber, sie erneut zu senden.'
    """
    index = 1 if language == "de" else 0
    text = _MESSAGES[TeamAccessError][index]
    for cls in type(exc).__mro__:
        if cls in _MESSAGES:
            text = _MESSAGES[cls][index]
            break
    # getattr: a subclass that skipped __init__ must still get its message.
    at = getattr(exc, "retry_after", None)
    if isinstance(exc, RateLimited) and at is not None:
        if language == "de":
            text = text.replace("später erneut.", f"nach {at:%d.%m.%Y, %H:%M} Uhr UTC erneut.")
        else:
            text = text.replace("later.", f"after {at:%Y-%m-%d %H:%M} UTC.")
    own = getattr(exc, "access_until", None)
    if isinstance(exc, PermissionDenied) and own is not None:
        # Escalation in time: the access given would outlast the actor's own.
        if language == "de":
            return (
                f"Ihr eigener Zugang endet am {own:%d.%m.%Y, %H:%M} Uhr UTC; der Zugang, den "
                "Sie geben, endet spätestens dann. Wählen Sie ein Ende an diesem Tag oder davor."
            )
        return (
            f"Your own access ends on {own:%Y-%m-%d %H:%M} UTC, and the access you give ends "
            "no later. Choose an end on that day or before it."
        )
    permission = getattr(exc, "permission", None)
    if isinstance(exc, PermissionDenied) and catalog is not None and permission in catalog:
        label = catalog[str(permission)].label_for(language)
        text += f" ({'fehlt' if language == 'de' else 'missing'}: {label})"
    return text
