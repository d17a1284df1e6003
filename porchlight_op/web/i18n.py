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
