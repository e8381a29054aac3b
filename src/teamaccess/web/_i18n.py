"""The pages' words in German; the English text is the key.

A test reads every ``_("...")`` in the templates and every ``translate("...")`` in the
handlers and fails when one has no German here.
"""

from __future__ import annotations

__all__ = ["GERMAN", "translate"]

GERMAN: dict[str, str] = {
    # layout and navigation
    "Customer center": "Kundencenter",
    "Customer account": "Kundenkonto",
    "Hello, {name}": "Hallo, {name}",
    "Users": "Benutzerverwaltung",
    "Contacts": "Kontakte",
    "Activity": "Aktivität",
    "Skip to content": "Zum Inhalt springen",
    "Pages": "Seiten",
    "My customer accounts": "Meine Kundenkonten",
    "To my customer accounts": "Zu meinen Kundenkonten",
    "You are not a user of any customer account yet. When someone invites you, open the link "
    "in their email.": "Sie sind noch in keinem Kundenkonto Benutzer. Wenn Sie jemand "
    "einlädt, öffnen Sie den Link in der E-Mail.",
    # catalog groups of the default catalog
    "Account": "Konto",
    "Billing": "Rechnungen",
    "Orders": "Bestellungen",
    "Services": "Dienste",
    "Support": "Support",
    "Contracts": "Verträge",
    "Other": "Sonstiges",
    # users
    "User": "Benutzer",
    "Account owner": "Kontoinhaber",
    "Permissions": "Berechtigungen",
    "Since": "Seit",
    "since {date}": "seit {date}",
    "Actions": "Aktionen",
    "you": "Sie",
    "Edit": "Bearbeiten",
    "Remove": "Entfernen",
    "Leave account": "Konto verlassen",
    "You can see who has access to this account. Inviting and changing users needs the "
    "permission “Manage users”.": "Sie sehen, wer Zugriff auf dieses Konto hat. Zum "
    "Einladen und Ändern von Benutzern brauchen Sie die Berechtigung „Benutzer verwalten“.",
    "All permissions": "Alle Berechtigungen",
    "No permissions": "Keine Berechtigungen",
    "Select permissions": "Berechtigungen auswählen",
    "Full access, including permissions added later.": "Vollzugriff, auch auf später "
    "hinzukommende Berechtigungen.",
    "Only the functions you tick.": "Nur die Funktionen, die Sie anhaken.",
    "Open invitations": "Offene Einladungen",
    "No open invitations.": "Keine offenen Einladungen.",
    "Email address": "E-Mail-Adresse",
    "Sent": "Versendet",
    "sent {count} times": "{count}-mal versendet",
    "Valid until": "Gültig bis",
    "without an end": "ohne Ende",
    "until {when}": "bis {when}",
    "The access of {email} lasts beyond your own, which ends on {own}. Give it an end on "
    "that day or before it under “Access” first, then grant more permissions.": "Der "
    "Zugang von {email} reicht über Ihren eigenen hinaus, der am {own} endet. Geben Sie ihm "
    "zuerst unter „Zugriff“ ein Ende an diesem Tag oder davor, dann weitere "
    "Berechtigungen.",
    "You cannot send this invitation again: it gives access {given}, and your own access "
    "ends on {own}. Revoke it and send a new invitation with an end on that day or before, "
    "or ask the account owner to send it again.": "Sie können diese Einladung nicht erneut "
    "senden: Sie gibt Zugang {given}, Ihr eigener Zugang endet aber am {own}. Ziehen Sie sie "
    "zurück und senden Sie eine neue Einladung mit einem Ende an diesem Tag oder davor, oder "
    "bitten Sie den Kontoinhaber, sie erneut zu senden.",
    "You cannot send this invitation again: it grants permissions you do not hold yourself "
    "({missing}). Ask the account owner to send it again, or revoke it and invite again with "
    "permissions you hold.": "Sie können diese Einladung nicht erneut senden: Sie gibt "
    "Berechtigungen, die Sie selbst nicht haben ({missing}). Bitten Sie den Kontoinhaber, sie "
    "erneut zu senden, oder ziehen Sie sie zurück und laden Sie erneut mit Berechtigungen "
    "ein, die Sie haben.",
    "invited by {who}": "eingeladen von {who}",
    "Resend": "Erneut senden",
    "Show the open invitation": "Die offene Einladung zeigen",
    "Revoke": "Zurückziehen",
    "Invite a new user": "Neuen Benutzer einladen",
    "The person receives an email with a link, logs in or registers, and from then on works "
    "in this account with their own login.": "Die Person erhält eine E-Mail mit einem Link, "
    "meldet sich an oder registriert sich und arbeitet dann mit eigenen Zugangsdaten in "
    "diesem Konto.",
    "Send invitation": "Einladung versenden",
    "All users": "Alle Benutzer",
    "Save changes": "Änderungen speichern",
    "The account owner always has every permission, and nobody changes their own "
    "permissions.": "Der Kontoinhaber hat immer alle Berechtigungen, und niemand ändert "
    "seine eigenen Berechtigungen.",
    "Please enter the email address to invite.": "Bitte geben Sie die E-Mail-Adresse ein, "
    "die Sie einladen möchten.",
    "Choose at least one permission, or give all permissions.": "Wählen Sie mindestens eine "
    "Berechtigung, oder geben Sie alle Berechtigungen.",
    "The invitation to {email} is on its way.": "Die Einladung an {email} ist unterwegs.",
    "The permissions of {email} are saved.": "Die Berechtigungen von {email} sind gespeichert.",
    "You have left {account}.": "Sie haben {account} verlassen.",
    "{email} was removed.": "{email} wurde entfernt.",
    "The invitation to {email} was sent again.": "Die Einladung an {email} wurde erneut versendet.",
    "The invitation to {email} was revoked.": "Die Einladung an {email} wurde zurückgezogen.",
    "The invitation to {email} had already expired, so its link no longer worked. It is now "
    "revoked as well and cannot be sent again.": "Die Einladung an {email} war bereits "
    "abgelaufen, ihr Link funktionierte also nicht mehr. Sie ist jetzt auch zurückgezogen "
    "und kann nicht erneut gesendet werden.",
    "The invitation to {email} was already revoked.": "Die Einladung an {email} wurde bereits "
    "zurückgezogen.",
    "The invitation to {email} was already accepted.": "Die Einladung an {email} wurde "
    "bereits angenommen.",
    "The invitation to {email} was already declined.": "Die Einladung an {email} wurde "
    "bereits abgelehnt.",
    "This user was already removed.": "Diese Person wurde bereits entfernt.",
    # members over time: states, end dates, presets, notes, single resources
    "suspended": "gesperrt",
    "access ended": "Zugriff beendet",
    "access ends {when}": "Zugriff endet {when}",
    "access ended {when}": "Zugriff endete {when}",
    "only on {resources}": "nur für {resources}",
    "Personal note and end date (optional)": "Persönliche Nachricht und Enddatum (optional)",
    "Personal note in the mail": "Persönliche Nachricht in der E-Mail",
    "Access ends on": "Zugriff endet am",
    "At the start of that day (UTC). Leave it empty for no end.": "Zu Beginn dieses Tages "
    "(UTC). Leer lassen für kein Ende.",
    "At the start of that day (UTC). Your own access ends on {when}: choose that day or an "
    "earlier one.": "Zu Beginn dieses Tages (UTC). Ihr eigener Zugang endet am {when}: "
    "Wählen Sie diesen Tag oder einen früheren.",
    "Please enter a date such as 2026-12-31.": "Bitte geben Sie ein Datum wie 2026-12-31 ein.",
    "Choose a day in the future.": "Wählen Sie einen Tag in der Zukunft.",
    "On single resources": "Für einzelne Ressourcen",
    "These grants are kept when you save.": "Diese Freigaben bleiben beim Speichern erhalten.",
    "Where “{permission}” applies": "Wofür „{permission}“ gilt",
    "On the whole account": "Im ganzen Konto",
    "Only on the services ticked below": "Nur für die unten angekreuzten Dienste",
    "A service added later is not included.": "Ein später hinzugekommener Dienst ist nicht "
    "enthalten.",
    "This account has no services to choose from.": "Dieses Konto hat keine Dienste zur Auswahl.",
    "Choose at least one service for “{label}”, or give it on the whole account.": "Wählen "
    "Sie mindestens einen Dienst für „{label}“ oder geben Sie es im ganzen Konto.",
    "“{label}” names a service this account does not have. Reload the page and choose "
    "again.": "„{label}“ nennt einen Dienst, den dieses Konto nicht hat. Laden Sie die Seite "
    "neu und wählen Sie erneut.",
    "Nobody changes their own permissions or access. Ask the account owner or another user "
    "who manages users.": "Niemand ändert seine eigenen Berechtigungen oder seinen eigenen "
    "Zugriff. Bitten Sie den Kontoinhaber oder eine andere Person, die Benutzer verwaltet.",
    "Choose at least one kind of mail this contact receives.": "Wählen Sie mindestens eine "
    "Art von E-Mails, die dieser Kontakt erhält.",
    "The chosen set of permissions is no longer offered. Reload the page and choose "
    "again.": "Die gewählte Zusammenstellung von Berechtigungen wird nicht mehr angeboten. "
    "Laden Sie die Seite neu und wählen Sie erneut.",
    "The services of this customer account could not be listed, so nothing was changed. "
    "Please try again later; if it keeps happening, contact support.": "Die Dienste dieses "
    "Kundenkontos konnten nicht aufgelistet werden, daher wurde nichts geändert. Bitte "
    "versuchen Sie es später erneut; wenn es wieder passiert, wenden Sie sich an den Support.",
    "The services of this customer account cannot be listed right now, so this page cannot "
    "be shown. Please try again later; if it keeps happening, contact support.": "Die "
    "Dienste dieses Kundenkontos können gerade nicht aufgelistet werden, daher kann diese "
    "Seite nicht angezeigt werden. Bitte versuchen Sie es später erneut; wenn es wieder "
    "passiert, wenden Sie sich an den Support.",
    "“{label}” is held on single services, which it can no longer be limited to, so these "
    "permissions cannot be saved. Please contact support.": "„{label}“ ist auf einzelne "
    "Dienste beschränkt vergeben, was für diese Berechtigung nicht mehr möglich ist; daher "
    "können diese Berechtigungen nicht gespeichert werden. Bitte wenden Sie sich an den "
    "Support.",
    "Access": "Zugriff",
    "This user is suspended: their permissions are kept, but they can use none of them.": (
        "Dieser Benutzer ist gesperrt: seine Berechtigungen bleiben erhalten, aber er kann "
        "keine davon nutzen."
    ),
    "Suspending keeps the permissions but stops their use at once, until you reactivate "
    "the user.": "Sperren behält die Berechtigungen, beendet aber sofort ihre Nutzung, bis "
    "Sie den Benutzer wieder freischalten.",
    "Suspend": "Sperren",
    "Reactivate": "Wieder freischalten",
    "End date": "Enddatum",
    "The access ends on {when}.": "Der Zugriff endet am {when}.",
    "The access ended on {when}.": "Der Zugriff endete am {when}.",
    "Save end date": "Enddatum speichern",
    "Remove end date": "Enddatum entfernen",
    "{email} is suspended: their permissions are kept but unusable until you reactivate "
    "them.": "{email} ist gesperrt: die Berechtigungen bleiben erhalten, sind aber bis zur "
    "Freischaltung nicht nutzbar.",
    "{email} is active again.": "{email} ist wieder aktiv.",
    "The access of {email} no longer ends.": "Der Zugriff von {email} endet nicht mehr.",
    "The access of {email} ends on {day}.": "Der Zugriff von {email} endet am {day}.",
    # the pages that ask before removing, leaving or suspending
    "Cancel": "Abbrechen",
    "Remove user": "Benutzer entfernen",
    "Remove {email} from {account}?": "{email} aus {account} entfernen?",
    "They lose access to this customer account, and every permission in it, at once.": (
        "Der Benutzer verliert sofort den Zugriff auf dieses Kundenkonto und jede "
        "Berechtigung darin."
    ),
    "Open invitations they sent are revoked: their links stop working.": (
        "Offene Einladungen, die er versendet hat, werden zurückgezogen: ihre Links "
        "funktionieren nicht mehr."
    ),
    "To give them access again, send a new invitation.": "Um ihm wieder Zugriff zu geben, "
    "senden Sie eine neue Einladung.",
    "Leave {account}?": "{account} verlassen?",
    "You lose access to this customer account, and every permission in it, at once.": (
        "Sie verlieren sofort den Zugriff auf dieses Kundenkonto und jede Berechtigung darin."
    ),
    "Open invitations you sent are revoked: their links stop working.": (
        "Offene Einladungen, die Sie versendet haben, werden zurückgezogen: ihre Links "
        "funktionieren nicht mehr."
    ),
    "To come back, you need a new invitation.": "Um zurückzukommen, brauchen Sie eine neue "
    "Einladung.",
    "Suspend user": "Benutzer sperren",
    "Suspend {email} in {account}?": "{email} in {account} sperren?",
    "From now on they can use none of their permissions; the permissions are kept.": (
        "Ab sofort kann der Benutzer keine seiner Berechtigungen nutzen; die "
        "Berechtigungen bleiben erhalten."
    ),
    "While they are suspended, open invitations they sent cannot be accepted: an attempt "
    "revokes the invitation.": "Solange der Benutzer gesperrt ist, können offene "
    "Einladungen, die er versendet hat, nicht angenommen werden: ein Versuch zieht die "
    "Einladung zurück.",
    "You can reactivate them on their page at any time.": "Sie können den Benutzer "
    "jederzeit auf seiner Seite wieder freischalten.",
    "Remove contact": "Kontakt entfernen",
    "Remove the contact {name} ({email}) from {account}?": "Den Kontakt {name} ({email}) "
    "aus {account} entfernen?",
    "{name} no longer receives the emails of this customer account ({categories}).": (
        "{name} erhält keine E-Mails dieses Kundenkontos mehr ({categories})."
    ),
    "Emails already waiting to be sent to {email} still go out.": "E-Mails, die bereits "
    "auf den Versand an {email} warten, gehen noch hinaus.",
    "A contact has no login, so nothing else changes.": "Ein Kontakt hat keine "
    "Zugangsdaten; sonst ändert sich nichts.",
    # the invitation link
    "Invitation": "Einladung",
    "{inviter} invites you to work in the customer account “{account}”.": "{inviter} lädt "
    "Sie ein, im Kundenkonto „{account}“ mitzuarbeiten.",
    "Invited address": "Eingeladene Adresse",
    "To accept, log in with {email}, or register with it if you have no login yet.": "Um "
    "anzunehmen, melden Sie sich mit {email} an, oder registrieren Sie sich damit, wenn Sie "
    "noch keine Zugangsdaten haben.",
    "Log in": "Anmelden",
    "Register": "Registrieren",
    "Log out": "Abmelden",
    "You are logged in as {current}, but this invitation is for {invited}.": "Sie sind als "
    "{current} angemeldet, aber diese Einladung gilt für {invited}.",
    "Log out, then log in or register with {invited} and open the link again. To use "
    "{current} instead, ask {inviter} to invite that address.": "Melden Sie sich ab, melden "
    "Sie sich dann mit {invited} an (oder registrieren Sie sich damit) und öffnen Sie den "
    "Link erneut. Um {current} zu verwenden, bitten Sie {inviter}, diese Adresse einzuladen.",
    "You are already a user of this customer account.": "Sie sind bereits Benutzer dieses "
    "Kundenkontos.",
    "Accept invitation": "Einladung annehmen",
    "Decline invitation": "Einladung ablehnen",
    "Invitation declined": "Einladung abgelehnt",
    "You declined the invitation to “{account}”. The link no longer works.": "Sie haben die "
    "Einladung zu „{account}“ abgelehnt. Der Link funktioniert nicht mehr.",
    "Welcome to {account}.": "Willkommen bei {account}.",
    "This page needs the link from the invitation mail.": "Diese Seite braucht den Link aus "
    "der Einladungs-E-Mail.",
    "You are a user of {account}.": "Sie sind Benutzer von {account}.",
    "You declined this invitation, so the link no longer works. To join the account after "
    "all, ask for a new invitation.": "Sie haben diese Einladung abgelehnt, daher funktioniert "
    "der Link nicht mehr. Um dem Konto doch beizutreten, bitten Sie um eine neue Einladung.",
    "Decline the invitation to “{account}”?": "Die Einladung zu „{account}“ ablehnen?",
    "The link stops working, for good.": "Der Link funktioniert danach nicht mehr, endgültig.",
    "To join the account later, you need a new invitation.": "Um dem Konto später "
    "beizutreten, brauchen Sie eine neue Einladung.",
    "At most {limit} characters, please.": "Bitte höchstens {limit} Zeichen.",
    # contacts
    "Contacts never log in. They receive the chosen kinds of email, for example invoices for "
    "your bookkeeping.": "Kontakte melden sich nie an. Sie erhalten die gewählten E-Mails, "
    "zum Beispiel Rechnungen für Ihre Buchhaltung.",
    "Name": "Name",
    "Receives": "Erhält",
    "nothing": "nichts",
    "No contacts yet.": "Noch keine Kontakte.",
    "Add a contact": "Neuen Kontakt anlegen",
    "All contacts": "Alle Kontakte",
    "Contact details": "Kontaktdetails",
    "Company (optional)": "Firma (optional)",
    "Phone (optional)": "Telefon (optional)",
    "Role (optional)": "Funktion (optional)",
    "For example: bookkeeping, tax adviser": "Zum Beispiel: Buchhaltung, Steuerberatung",
    "Email settings": "E-Mail-Einstellungen",
    "The contact receives these emails in addition to the account owner.": "Der Kontakt "
    "erhält diese E-Mails zusätzlich zum Kontoinhaber.",
    "Please enter a name.": "Bitte geben Sie einen Namen ein.",
    "Please enter an email address.": "Bitte geben Sie eine E-Mail-Adresse ein.",
    "The contact {name} is saved.": "Der Kontakt {name} ist gespeichert.",
    "The contact {name} was removed.": "Der Kontakt {name} wurde entfernt.",
    "This contact was already removed.": "Dieser Kontakt wurde bereits entfernt.",
    # activity
    "When": "Wann",
    "Who": "Wer",
    "What": "Was",
    "Newer": "Neuer",
    "Older": "Älter",
    "Page {n}": "Seite {n}",
    "Nothing has happened yet.": "Bisher ist nichts geschehen.",
    "created the customer account": "hat das Kundenkonto angelegt",
    "renamed the customer account": "hat das Kundenkonto umbenannt",
    "transferred the ownership to {target}": "hat die Inhaberschaft an {target} übertragen",
    "changed the permissions of {target}": "hat die Berechtigungen von {target} geändert",
    "removed {target}": "hat {target} entfernt",
    "left the customer account": "hat das Kundenkonto verlassen",
    "suspended {target}": "hat {target} gesperrt",
    "reactivated {target}": "hat {target} wieder freigeschaltet",
    "set an end date for {target}": "hat ein Enddatum für {target} gesetzt",
    "removed the grants on {target}": "hat die Freigaben für {target} entfernt",
    "invited {target}": "hat {target} eingeladen",
    "sent the invitation to {target} again": "hat die Einladung an {target} erneut versendet",
    "accepted the invitation": "hat die Einladung angenommen",
    "declined the invitation for {target}": "hat die Einladung für {target} abgelehnt",
    "revoked the invitation for {target}": "hat die Einladung für {target} zurückgezogen",
    "let the invitation for {target} expire": "hat die Einladung für {target} ablaufen lassen",
    "retried the invitation mail to {target}": "hat die Einladungs-E-Mail an {target} erneut "
    "versucht",
    "added the contact {target}": "hat den Kontakt {target} angelegt",
    "changed the contact {target}": "hat den Kontakt {target} geändert",
    "removed the contact {target}": "hat den Kontakt {target} entfernt",
    "sent a notice ({target})": "hat eine Mitteilung versendet ({target})",
    "stopped the mail to {target}: the mail server refused it for good": "hat die E-Mail an "
    "{target} eingestellt: der Mailserver lehnt sie endgültig ab",
    "stopped the mail to {target}: it waited too long to be delivered": "hat die E-Mail an "
    "{target} eingestellt: sie wartete zu lange auf die Zustellung",
    "erased the personal data of {target}": "hat die personenbezogenen Daten von {target} gelöscht",
    # errors
    "Not allowed": "Nicht erlaubt",
    "Not found": "Nicht gefunden",
    "Invitation not valid": "Einladung nicht gültig",
    "That did not work": "Das hat nicht geklappt",
    "This form has expired": "Dieses Formular ist abgelaufen",
    "The form was open too long or came from another site. Reload the page and try again.": (
        "Das Formular war zu lange geöffnet oder kam von einer anderen Seite. Laden Sie die "
        "Seite neu und versuchen Sie es erneut."
    ),
    "This page needs the permission “{label}”. Ask the account owner to grant it.": "Diese "
    "Seite braucht die Berechtigung „{label}“. Bitten Sie den Kontoinhaber, sie Ihnen zu "
    "geben.",
    "Your access to {account} is suspended. The account owner can reactivate it.": "Ihr "
    "Zugriff auf {account} ist gesperrt. Der Kontoinhaber kann ihn wieder freischalten.",
    "Your access to {account} ended on {when}. The account owner can extend it.": "Ihr "
    "Zugriff auf {account} endete am {when}. Der Kontoinhaber kann ihn verlängern.",
}


def translate(text: str, language: str) -> str:
    """*text* in *language*; English (the key itself) when there is no translation."""
    if language == "de":
        return GERMAN.get(text, text)
    return text
