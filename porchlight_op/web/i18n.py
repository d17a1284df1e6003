"""Translations of the login, consent, error and logout pages.

The catalog is keyed by the English text, so a string without a translation
is shown in English. The page language comes from the request's ui_locales
(OIDC Core 3.1.2.1) when a translation exists, else from Accept-Language
(RFC 9110 12.5.4), else English.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from aiohttp import web

DEFAULT_LOCALE = "en"

# ui_locales of the authorization request that a page belongs to, set by the
# handlers that know the request.
UI_LOCALES: web.RequestKey[str] = web.RequestKey("ui_locales")

GERMAN: Mapping[str, str] = {
    # base and login pages
    "Sign in": "Anmelden",
    "Username": "Benutzername",
    "Password": "Passwort",
    "The username or password is incorrect.": (
        "Der Benutzername oder das Passwort ist falsch."
    ),
    "Signed in": "Angemeldet",
    "You are signed in": "Sie sind angemeldet",
    "Return to the application you came from to continue.": (
        "Kehren Sie zur Anwendung zurück, von der Sie kamen, um fortzufahren."
    ),
    # consent page
    "Allow access": "Zugriff erlauben",
    "%(client)s asks for access to your account.": (
        "%(client)s bittet um Zugriff auf Ihr Konto."
    ),
    "It will receive:": "Die Anwendung erhält:",
    "Allow": "Erlauben",
    "Deny": "Ablehnen",
    "You can sign in as someone else by signing out first.": (
        "Um sich als jemand anderes anzumelden, melden Sie sich zuerst ab."
    ),
    "Who you are: your account identifier on this server": (
        "Wer Sie sind: Ihre Kontokennung auf diesem Server"
    ),
    "Your name, username, picture and other profile details": (
        "Ihren Namen, Benutzernamen, Ihr Bild und weitere Profilangaben"
    ),
    "Your email address and whether it is verified": (
        "Ihre E-Mail-Adresse und ob sie bestätigt ist"
    ),
    "Your postal address": "Ihre Postanschrift",
    "Your phone number and whether it is verified": (
        "Ihre Telefonnummer und ob sie bestätigt ist"
    ),
    "Access to your account while you are not using the application": (
        "Zugriff auf Ihr Konto, auch wenn Sie die Anwendung nicht benutzen"
    ),
    "Signed in as %(username)s.": "Angemeldet als %(username)s.",
    "This consent request has expired or was already used. "
    "Go back to the application and start again.": (
        "Diese Zustimmungsanfrage ist abgelaufen oder wurde bereits verwendet. "
        "Kehren Sie zur Anwendung zurück und beginnen Sie erneut."
    ),
    "The form has no decision.": "Dem Formular fehlt eine Entscheidung.",
    "Bad Request": "Ungültige Anfrage",
    # error pages
    "Invalid request": "Ungültige Anfrage",
    "Server error": "Serverfehler",
    "Something went wrong on our side.": "Bei uns ist etwas schiefgelaufen.",
    "Temporarily unavailable": "Vorübergehend nicht verfügbar",
    "The service is briefly unavailable. Please try again in a moment.": (
        "Der Dienst ist kurz nicht verfügbar. Bitte versuchen Sie es gleich erneut."
    ),
    "Not Found": "Nicht gefunden",
    "Forbidden": "Verboten",
    "Method Not Allowed": "Methode nicht erlaubt",
    "There is no page at this address.": "Unter dieser Adresse gibt es keine Seite.",
    "This address does not accept that method.": (
        "Diese Adresse akzeptiert diese Methode nicht."
    ),
    "The request could not be processed.": (
        "Die Anfrage konnte nicht verarbeitet werden."
    ),
    "The form expired; reload the page.": (
        "Das Formular ist abgelaufen; laden Sie die Seite neu."
    ),
    "The request has no client_id.": "Der Anfrage fehlt die client_id.",
    "The client is not registered here.": "Der Client ist hier nicht registriert.",
    "The request has no redirect_uri.": "Der Anfrage fehlt die redirect_uri.",
    "The redirect_uri is not registered for this client.": (
        "Die redirect_uri ist für diesen Client nicht registriert."
    ),
    "This sign-in request has expired or was already used. "
    "Go back to the application and start again.": (
        "Diese Anmeldeanfrage ist abgelaufen oder wurde bereits verwendet. "
        "Kehren Sie zur Anwendung zurück und beginnen Sie erneut."
    ),
    # logout pages
    "Sign out": "Abmelden",
    "You are signed out": "Sie sind abgemeldet",
    "Do you want to sign out?": "Möchten Sie sich abmelden?",
    "Cancel": "Abbrechen",
    # management area navigation
    "Account": "Konto",
    "Sign-in methods": "Anmeldemethoden",
    "Profile": "Profil",
    "Sessions": "Sitzungen",
    "Administration": "Verwaltung",
    # profile claim labels
    "Full name": "Vollständiger Name",
    "Given name": "Vorname",
    "Family name": "Nachname",
    "Nickname": "Spitzname",
    "Preferred username": "Bevorzugter Benutzername",
    "Email address": "E-Mail-Adresse",
    "Phone number": "Telefonnummer",
    "Picture URL": "Bild-URL",
    "Language and region (for example en-GB)": (
        "Sprache und Region (zum Beispiel de-DE)"
    ),
    # passkeys: login, registration and sign-in methods pages, page script
    "Sign in with a passkey": "Mit einem Passkey anmelden",
    "Or sign in with your username and password:": (
        "Oder melden Sie sich mit Benutzername und Passwort an:"
    ),
    "Create account with a passkey": "Konto mit einem Passkey erstellen",
    "Or choose a password:": "Oder wählen Sie ein Passwort:",
    "The passkey request was cancelled or timed out.": (
        "Die Passkey-Anfrage wurde abgebrochen oder ist abgelaufen."
    ),
    "This passkey is registered already.": "Dieser Passkey ist bereits registriert.",
    "The browser refused the passkey request for this address.": (
        "Der Browser hat die Passkey-Anfrage für diese Adresse abgelehnt."
    ),
    "This browser does not support passkeys.": (
        "Dieser Browser unterstützt keine Passkeys."
    ),
    "The server could not be reached. Check your connection and try again.": (
        "Der Server ist nicht erreichbar. Prüfen Sie Ihre Verbindung und "
        "versuchen Sie es erneut."
    ),
    "The server refused the passkey request. Reload the page and try again.": (
        "Der Server hat die Passkey-Anfrage abgelehnt. Laden Sie die Seite neu "
        "und versuchen Sie es erneut."
    ),
    "The passkey could not be used.": "Der Passkey konnte nicht verwendet werden.",
    "The passkey request has expired. Try again.": (
        "Die Passkey-Anfrage ist abgelaufen. Versuchen Sie es erneut."
    ),
    "This passkey is not registered here.": (
        "Dieser Passkey ist hier nicht registriert."
    ),
    "The passkey response could not be verified.": (
        "Die Antwort des Passkeys konnte nicht geprüft werden."
    ),
    "This passkey was refused because its use counter went backwards.": (
        "Dieser Passkey wurde abgelehnt, weil sein Nutzungszähler zurückging."
    ),
    "This passkey cannot be used to sign in.": (
        "Mit diesem Passkey ist keine Anmeldung möglich."
    ),
    "The passkey response is missing.": "Die Antwort des Passkeys fehlt.",
    "This invitation link is no longer valid. Reload the page.": (
        "Dieser Einladungslink ist nicht mehr gültig. Laden Sie die Seite neu."
    ),
    "The passkey request expired.": "Die Passkey-Anfrage ist abgelaufen.",
    "The account could not be created. Try again.": (
        "Das Konto konnte nicht erstellt werden. Versuchen Sie es erneut."
    ),
    "Passkeys": "Passkeys",
    "Created %(date)s": "Erstellt am %(date)s",
    "Last used %(date)s": "Zuletzt verwendet am %(date)s",
    "Not used yet": "Noch nicht verwendet",
    "New name for %(name)s": "Neuer Name für %(name)s",
    "Rename": "Umbenennen",
    "Remove": "Entfernen",
    "Remove %(name)s": "%(name)s entfernen",
    "You have no passkeys yet.": "Sie haben noch keine Passkeys.",
    "Name of the new passkey (optional)": "Name des neuen Passkeys (optional)",
    "Add a passkey": "Passkey hinzufügen",
    "Adding a passkey needs JavaScript.": (
        "Zum Hinzufügen eines Passkeys wird JavaScript benötigt."
    ),
    "Set password": "Passwort festlegen",
    "Remove the password": "Passwort entfernen",
    "Current password, to confirm": "Aktuelles Passwort zur Bestätigung",
    "Remove password": "Passwort entfernen",
    "Your password was removed.": "Ihr Passwort wurde entfernt.",
    "The passkey was added.": "Der Passkey wurde hinzugefügt.",
    "The passkey was renamed.": "Der Passkey wurde umbenannt.",
    "The passkey was removed.": "Der Passkey wurde entfernt.",
    "Enter a name for the passkey.": "Geben Sie einen Namen für den Passkey ein.",
    "That passkey was not found. It may have been removed already.": (
        "Dieser Passkey wurde nicht gefunden. Vielleicht wurde er bereits entfernt."
    ),
    "This is your only way to sign in. Set a password or add another passkey"
    " before you remove it.": (
        "Dies ist Ihre einzige Anmeldemethode. Legen Sie ein Passwort fest oder "
        "fügen Sie einen weiteren Passkey hinzu, bevor Sie ihn entfernen."
    ),
    "The password is your only way to sign in. Add a passkey before you remove it.": (
        "Das Passwort ist Ihre einzige Anmeldemethode. Fügen Sie einen Passkey "
        "hinzu, bevor Sie es entfernen."
    ),
    "This passkey request belongs to another account. Reload the page.": (
        "Diese Passkey-Anfrage gehört zu einem anderen Konto. Laden Sie die Seite neu."
    ),
    "Your session has ended. Reload the page to sign in again.": (
        "Ihre Sitzung ist beendet. Laden Sie die Seite neu, um sich erneut anzumelden."
    ),
    # management area: sessions page
    "Signed-in browsers": "Angemeldete Browser",
    "Unknown browser": "Unbekannter Browser",
    "this browser": "dieser Browser",
    "Last active": "Zuletzt aktiv",
    "Address": "Adresse",
    "Sign-in method": "Anmeldemethode",
    "Sign out this browser": "Diesen Browser abmelden",
    "End session": "Sitzung beenden",
    "No browser is signed in.": "Kein Browser ist angemeldet.",
    "Applications with access": "Anwendungen mit Zugriff",
    "Access granted": "Zugriff erteilt",
    "Consent remembered": "Gespeicherte Zustimmung",
    "Last granted": "Zuletzt erteilt",
    "Revoke access": "Zugriff entziehen",
    "This is the account management you are using. "
    "End its session above to sign out.": (
        "Dies ist die Kontoverwaltung, die Sie gerade verwenden. "
        "Beenden Sie oben ihre Sitzung, um sich abzumelden."
    ),
    "No application has access to your account.": (
        "Keine Anwendung hat Zugriff auf Ihr Konto."
    ),
    "The session was ended.": "Die Sitzung wurde beendet.",
    "The application's access was revoked.": (
        "Der Zugriff der Anwendung wurde entzogen."
    ),
    "Session not found": "Sitzung nicht gefunden",
    "This session has ended already or is not one of yours. "
    "Reload the sessions page to see your current sessions.": (
        "Diese Sitzung ist bereits beendet oder gehört nicht Ihnen. "
        "Laden Sie die Sitzungsseite neu, um Ihre aktuellen Sitzungen zu sehen."
    ),
    "You ended the session of this browser. Sign in again to continue.": (
        "Sie haben die Sitzung dieses Browsers beendet. "
        "Melden Sie sich erneut an, um fortzufahren."
    ),
    "Cannot revoke this application": "Zugriff kann nicht entzogen werden",
    "This application is the account management you are using. "
    "End the session instead to sign out.": (
        "Diese Anwendung ist die Kontoverwaltung, die Sie gerade verwenden. "
        "Beenden Sie stattdessen die Sitzung, um sich abzumelden."
    ),
    "Application not found": "Anwendung nicht gefunden",
    "This application has no access to revoke, or it was revoked already. "
    "Reload the sessions page to see your current grants.": (
        "Diese Anwendung hat keinen Zugriff, der entzogen werden kann, oder er "
        "wurde bereits entzogen. Laden Sie die Sitzungsseite neu, um Ihre "
        "aktuellen Freigaben zu sehen."
    ),
    # administration pages
    "Overview": "Übersicht",
    "Users": "Benutzer",
    "Clients": "Clients",
    "Invitations": "Einladungen",
    "Users: %(users)s. Administrators: %(admins)s.": (
        "Benutzer: %(users)s. Administratoren: %(admins)s."
    ),
    "search, create, edit, disable, delete, reset credentials": (
        "suchen, anlegen, bearbeiten, sperren, löschen, Anmeldedaten zurücksetzen"
    ),
    "register relying parties, change redirect URIs, rotate secrets": (
        "Anwendungen registrieren, Redirect-URIs ändern, Secrets erneuern"
    ),
    "one-time links with which people create an account": (
        "Einmal-Links, mit denen Personen ein Konto anlegen"
    ),
    "Access denied": "Zugriff verweigert",
    "The administration pages are for members of the admin group.": (
        "Die Verwaltungsseiten sind Mitgliedern der Gruppe admin vorbehalten."
    ),
    "Form expired": "Formular abgelaufen",
    "Reload the page and try again.": (
        "Laden Sie die Seite neu und versuchen Sie es noch einmal."
    ),
    "Not confirmed": "Nicht bestätigt",
    "Tick the confirmation box to go ahead. Nothing was changed.": (
        "Setzen Sie das Häkchen zur Bestätigung, um fortzufahren."
        " Es wurde nichts geändert."
    ),
    "Not allowed": "Nicht erlaubt",
    "This is the last enabled administrator. Make another user an administrator"
    " first.": (
        "Dies ist der letzte aktive Administrator. Machen Sie zuerst einen"
        " anderen Benutzer zum Administrator."
    ),
    "Read only": "Nur lesbar",
    "The management area's own client cannot be changed or deleted.": (
        "Der eigene Client des Verwaltungsbereichs kann nicht geändert oder"
        " gelöscht werden."
    ),
    "This client is defined in the settings file. Change it there.": (
        "Dieser Client ist in der Konfigurationsdatei festgelegt. Ändern Sie ihn dort."
    ),
    "Yes, I am sure": "Ja, ich bin sicher",
    "Go back": "Zurück",
    "Link valid for": "Link gültig für",
    "A number with s, m, h or d, for example 12h or 7d.": (
        "Eine Zahl mit s, m, h oder d, zum Beispiel 12h oder 7d."
    ),
    "Search by username, user id, email or name": (
        "Suche nach Benutzername, Benutzerkennung, E-Mail-Adresse oder Name"
    ),
    "Search users": "Benutzer suchen",
    "%(count)s users found.": "%(count)s Benutzer gefunden.",
    "Pages": "Seiten",
    "Page %(page)s of %(pages)s": "Seite %(page)s von %(pages)s",
    "Previous page": "Vorige Seite",
    "Next page": "Nächste Seite",
    "administrator": "Administrator",
    "enabled": "aktiv",
    "disabled": "gesperrt",
    "Create a user": "Benutzer anlegen",
    "Create user": "Benutzer anlegen",
    "Repeat the password": "Passwort wiederholen",
    "Optional. Without one, reset the credentials to send the user a link that"
    " sets it.": (
        "Optional. Ohne Passwort setzen Sie die Anmeldedaten zurück, um dem"
        " Benutzer einen Link zu senden, mit dem er eines festlegt."
    ),
    "Groups": "Gruppen",
    "Separated by spaces or commas; the group admin makes an administrator.": (
        "Durch Leerzeichen oder Kommas getrennt; die Gruppe admin macht zum"
        " Administrator."
    ),
    "User id (sub)": "Benutzerkennung (sub)",
    "State": "Zustand",
    "set": "gesetzt",
    "not set": "nicht gesetzt",
    "Other claims": "Weitere Claims",
    "Claims": "Claims",
    "Save claims": "Claims speichern",
    "The email address is verified": "Die E-Mail-Adresse ist bestätigt",
    "The phone number is verified": "Die Telefonnummer ist bestätigt",
    "Save groups": "Gruppen speichern",
    "A disabled user cannot sign in, and their sessions and tokens are revoked"
    " at once.": (
        "Ein gesperrter Benutzer kann sich nicht anmelden, und seine Sitzungen"
        " und Tokens werden sofort widerrufen."
    ),
    "Yes, disable this user": "Ja, diesen Benutzer sperren",
    "Disable user": "Benutzer sperren",
    "Enable user": "Benutzer entsperren",
    "Reset credentials": "Anmeldedaten zurücksetzen",
    "Delete user": "Benutzer löschen",
    "The user was created.": "Der Benutzer wurde angelegt.",
    "The claims were saved.": "Die Claims wurden gespeichert.",
    "The groups were saved.": "Die Gruppen wurden gespeichert.",
    "The user was disabled. Their sessions and tokens were revoked.": (
        "Der Benutzer wurde gesperrt. Seine Sitzungen und Tokens wurden widerrufen."
    ),
    "The user was enabled.": "Der Benutzer wurde entsperrt.",
    "User deleted": "Benutzer gelöscht",
    "Credentials reset": "Anmeldedaten zurückgesetzt",
    "Enrolment link": "Registrierungslink",
    "Invalid expiry": "Ungültige Gültigkeitsdauer",
    "Register a client": "Client registrieren",
    "Register client": "Client registrieren",
    "Client id": "Client-ID",
    "Display name": "Anzeigename",
    "Redirect URIs": "Redirect-URIs",
    "One per line, matched exactly. http://127.0.0.1 and http://[::1] accept any"
    " port.": (
        "Eine pro Zeile, exakt verglichen. http://127.0.0.1 und http://[::1]"
        " erlauben jeden Port."
    ),
    "Post-logout redirect URIs": "Redirect-URIs nach dem Abmelden",
    "Scopes": "Scopes",
    "Token endpoint authentication": "Authentifizierung am Token-Endpunkt",
    "none makes a public client, which must use PKCE with S256. The others get"
    " a generated secret, shown once.": (
        "none ergibt einen öffentlichen Client, der PKCE mit S256 verwenden"
        " muss. Die anderen erhalten ein erzeugtes Secret, das einmal angezeigt"
        " wird."
    ),
    "Grant types": "Grant-Typen",
    "First party: skip the consent page": (
        "Eigene Anwendung: keine Einwilligungsseite"
    ),
    "management area, read only": "Verwaltungsbereich, nur lesbar",
    "settings file, read only": "Konfigurationsdatei, nur lesbar",
    "This is the management area's own client. It is shown read only and"
    " cannot be deleted.": (
        "Dies ist der eigene Client des Verwaltungsbereichs. Er ist nur lesbar"
        " und kann nicht gelöscht werden."
    ),
    "This client is defined in the settings file, which every start applies"
    " again. Change it there.": (
        "Dieser Client ist in der Konfigurationsdatei festgelegt, die bei jedem"
        " Start erneut gilt. Ändern Sie ihn dort."
    ),
    "Edit client": "Client bearbeiten",
    "Save client": "Client speichern",
    "The client was saved.": "Der Client wurde gespeichert.",
    "Rotate secret": "Secret erneuern",
    "Delete client": "Client löschen",
    "Client created": "Client angelegt",
    "Client saved": "Client gespeichert",
    "Secret rotated": "Secret erneuert",
    "Client secret": "Client-Secret",
    "Client deleted": "Client gelöscht",
    "No secret": "Kein Secret",
    "Invite someone": "Jemanden einladen",
    "Optional. The account gets it as its email claim, not verified.": (
        "Optional. Das Konto erhält sie als nicht bestätigten email-Claim."
    ),
    "The account joins the admin group": "Das Konto tritt der Gruppe admin bei",
    "Create invitation": "Einladung erstellen",
    "Unexpired invitations": "Nicht abgelaufene Einladungen",
    "No unexpired invitations.": "Keine nicht abgelaufenen Einladungen.",
    "pending": "offen",
    "used": "benutzt",
    "revoked": "widerrufen",
    "credential reset for %(sub)s": "Zurücksetzen der Anmeldedaten für %(sub)s",
    "expires %(time)s UTC": "läuft ab am %(time)s UTC",
    "Yes, revoke %(id)s": "Ja, %(id)s widerrufen",
    "Revoke invitation": "Einladung widerrufen",
    "Invitation created": "Einladung erstellt",
    "Invitation link": "Einladungslink",
    "Invitation not found": "Einladung nicht gefunden",
    "No unexpired invitation has this id.": (
        "Keine nicht abgelaufene Einladung hat diese Kennung."
    ),
    # registration page, for links that reset an existing account
    "Set up sign-in again": "Anmeldung neu einrichten",
    "An administrator reset the sign-in methods of this account. Choose a"
    " passkey or a new password for it.": (
        "Ein Administrator hat die Anmeldemethoden dieses Kontos zurückgesetzt."
        " Wählen Sie dafür einen Passkey oder ein neues Passwort."
    ),
    "This link is for this account only.": "Dieser Link gilt nur für dieses Konto.",
    "Use a passkey": "Passkey verwenden",
    "Sign-in method set": "Anmeldemethode festgelegt",
    "%(username)s can sign in again with the new passkey or password at the"
    " application you want to use.": (
        "%(username)s kann sich bei der gewünschten Anwendung wieder mit dem neuen"
        " Passkey oder Passwort anmelden."
    ),
    "The account this link was made for no longer exists.": (
        "Das Konto, für das dieser Link erstellt wurde, existiert nicht mehr."
    ),
    # logout confirmation, signed-out and logout-cancelled pages
    "Do you want to sign out of Porchlight?": (
        "Möchten Sie sich von Porchlight abmelden?"
    ),
    "Do you want to sign out of Porchlight and %(client)s?": (
        "Möchten Sie sich von Porchlight und %(client)s abmelden?"
    ),
    "You will be signed out of every application you signed in to from this browser.": (
        "Sie werden von allen Anwendungen abgemeldet, bei denen Sie sich in "
        "diesem Browser angemeldet haben."
    ),
    "Signed out": "Abgemeldet",
    "You can close this window, or return to the application you came from.": (
        "Sie können dieses Fenster schließen oder zur Anwendung zurückkehren, "
        "von der Sie kamen."
    ),
    "Still signed in": "Weiterhin angemeldet",
    "You are still signed in": "Sie sind weiterhin angemeldet",
    "You were not signed out.": "Sie wurden nicht abgemeldet.",
}

CATALOGS: Mapping[str, Mapping[str, str]] = {"en": {}, "de": GERMAN}


def translate(locale: str, text: str, **values: Any) -> str:
    """Return text in the locale's language, with %(name)s values filled in."""
    translated = CATALOGS.get(locale, {}).get(text, text)
    return translated % values if values else translated


def negotiate(ui_locales: str | None, accept_language: str | None) -> str:
    """Pick the page language: ui_locales first, then Accept-Language."""
    for tag in (ui_locales or "").split():
        locale = _supported(tag)
        if locale is not None:
            return locale
    for tag in _by_preference(accept_language or ""):
        locale = _supported(tag)
        if locale is not None:
            return locale
    return DEFAULT_LOCALE


def _supported(tag: str) -> str | None:
    """Map a BCP 47 tag such as de-AT to a catalog by its primary language."""
    primary = tag.split("-", 1)[0].lower()
    return primary if primary in CATALOGS else None


def _by_preference(header: str) -> list[str]:
    """Language tags of an Accept-Language header, highest q first."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, parameters = item.strip().partition(";")
        quality = _quality(parameters)
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def _quality(parameters: str) -> float:
    name, _, value = parameters.strip().partition("=")
    if name.strip() != "q":
        return 1.0
    try:
        return max(0.0, min(1.0, float(value)))
    except ValueError:
        return 0.0


def request_locale(request: web.Request) -> str:
    """Return the page language of a request, from UI_LOCALES or Accept-Language."""
    return negotiate(request.get(UI_LOCALES), request.headers.get("Accept-Language"))


@jinja2.pass_context
def page_locale(context: jinja2.runtime.Context) -> str:
    """Return the language of the page being rendered (Jinja global)."""
    request = context.get("request")
    if not isinstance(request, web.Request):
        return DEFAULT_LOCALE
    return request_locale(request)


@jinja2.pass_context
def gettext(context: jinja2.runtime.Context, text: str, **values: Any) -> str:
    """Translate text into the page's language (the Jinja global `_()`)."""
    return translate(page_locale(context), text, **values)


def setup_i18n(environment: jinja2.Environment) -> None:
    """Register `_()` and `page_locale()` in the template environment.

    They read the request from the template context, which needs
    aiohttp_jinja2.request_processor among the context processors.
    """
    environment.globals["_"] = gettext
    environment.globals["page_locale"] = page_locale
