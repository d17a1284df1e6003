"""A short, human-readable summary of a User-Agent header, such as "Firefox on Linux".

The summary only helps a user recognise their own sessions; nothing decides
on it. Browsers are checked in an order where the more specific token wins
(Edge and Opera also send "Chrome", Chrome also sends "Safari").
"""

from __future__ import annotations

MAX_SUMMARY_LENGTH = 80

BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def summarize_user_agent(header: str | None) -> str:
    """Return "<browser> on <system>", or the header's start when neither is known."""
    if not header:
        return ""
    browser = _first_match(header, BROWSERS)
    system = _first_match(header, SYSTEMS)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system
    printable = "".join(char for char in header if char.isprintable())
    return printable[:MAX_SUMMARY_LENGTH]


def _first_match(header: str, table: tuple[tuple[str, str], ...]) -> str:
    for token, name in table:
        if token in header:
            return name
    return ""
