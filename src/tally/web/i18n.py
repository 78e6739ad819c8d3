"""Languages of the web pages: gettext catalogs compiled in memory, and locale negotiation."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
#: Locale codes the pages speak (BCP 47), mapped to their catalog folders.
CATALOG_FOLDERS: dict[str, str] = {"zh-CN": "zh_CN", "en": "en"}
SUPPORTED: tuple[str, ...] = tuple(CATALOG_FOLDERS)
LANG_COOKIE = "lang"
LANG_PARAM = "lang"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def catalog_path(locale: str, directory: Path = LOCALES_DIR) -> Path:
    """The ``.po`` file of ``locale``."""
    return directory / CATALOG_FOLDERS[locale] / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(locale: str, directory: Path = LOCALES_DIR) -> Catalog:
    """Parse the ``.po`` catalog of ``locale``."""
    with catalog_path(locale, directory).open("rb") as handle:
        return read_po(handle, locale=CATALOG_FOLDERS[locale], domain=DOMAIN)


def compile_catalog(catalog: Catalog) -> Translations:
    """Compile a catalog to gettext translations in memory (no ``.mo`` build step)."""
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def load_translations(directory: Path = LOCALES_DIR) -> dict[str, Translations]:
    """Translations for every supported locale."""
    return {locale: compile_catalog(read_catalog(locale, directory)) for locale in SUPPORTED}


def normalise(code: str | None) -> str | None:
    """The supported locale for a language tag (``en-US`` → ``en``, ``zh-Hans`` → ``zh-CN``)."""
    if not code:
        return None
    tag = code.strip().replace("_", "-").lower()
    if not tag:
        return None
    primary = tag.split("-", 1)[0]
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The most preferred supported locale of an ``Accept-Language`` header."""
    if not header:
        return None
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        locale = normalise(tag)
        if locale is not None and quality > 0:
            choices.append((-quality, position, locale))
    return min(choices)[2] if choices else None


def negotiate(
    requested: str | None, cookie: str | None, accept_language: str | None, default: str
) -> str:
    """The locale: explicit request, ``lang`` cookie, browser preference, then the default."""
    return (
        normalise(requested)
        or normalise(cookie)
        or from_accept_language(accept_language)
        or normalise(default)
        or SUPPORTED[0]
    )


def babel_locale(locale: str) -> Locale:
    """The Babel locale used for number and date formats."""
    return Locale.parse(CATALOG_FOLDERS[locale])
