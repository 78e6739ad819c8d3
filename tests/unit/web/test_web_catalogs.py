"""The gettext catalogs: complete in both languages, and in step with the code and templates."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir

from tally.errors import ALL_ERRORS
from tally.web import i18n
from tally.web.errors import HTTP_CODES, MESSAGES

WEB = Path(i18n.__file__).parent
KEYWORDS = {"_": None, "gettext": None, "N_": None}
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true"}}


def used_messages() -> dict[str, str]:
    """Every string the web code and templates pass to ``_``, ``gettext`` or ``N_``."""
    found: dict[str, str] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
        WEB, METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        assert isinstance(message, str), f"{filename}:{line}: plural forms are not used"
        found.setdefault(message, f"{filename}:{line}")
    return found


def catalog(locale: str) -> Catalog:
    return i18n.read_catalog(locale)


def test_the_extractor_sees_templates_and_python() -> None:
    used = used_messages()
    assert "Find a member" in used  # a template
    assert "Wrong username or password." in used  # Python, through N_
    assert len(used) > 100


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_every_used_string_is_in_the_catalog(locale: str) -> None:
    known = {message.id for message in catalog(locale) if message.id}
    missing = {text: where for text, where in used_messages().items() if text not in known}
    assert not missing, f"add to {i18n.catalog_path(locale)}: {missing}"


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_every_catalog_entry_is_used(locale: str) -> None:
    used = used_messages()
    stale = [message.id for message in catalog(locale) if message.id and message.id not in used]
    assert not stale, f"remove from {i18n.catalog_path(locale)}: {stale}"


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_every_entry_is_translated_and_well_formed(locale: str) -> None:
    entries = [message for message in catalog(locale) if message.id]
    untranslated = [message.id for message in entries if not message.string]
    fuzzy = [message.id for message in entries if message.fuzzy]
    assert not untranslated, untranslated
    assert not fuzzy, fuzzy
    problems = [(message.id, errors) for message, errors in catalog(locale).check() if errors]
    assert not problems, problems  # e.g. a %(name)s placeholder lost in translation


def test_both_catalogs_hold_the_same_messages() -> None:
    ids = [{message.id for message in catalog(locale) if message.id} for locale in i18n.SUPPORTED]
    assert ids[0] == ids[1]


def test_the_chinese_catalog_is_really_chinese() -> None:
    chinese = catalog("zh-CN")
    same = [m.id for m in chinese if m.id and m.string == m.id and any(c.isalpha() for c in m.id)]
    assert not same, f"copied, not translated: {same}"


def test_catalogs_compile_in_memory() -> None:
    translations = i18n.load_translations()
    assert translations["zh-CN"].gettext("Find a member") == "查找会员"
    assert translations["en"].gettext("Find a member") == "Find a member"


def test_every_error_code_has_a_friendly_message() -> None:
    codes = {error.code for error in ALL_ERRORS} | set(HTTP_CODES.values())
    codes |= {"csrf_failed", "internal_error"}
    assert codes <= set(MESSAGES), codes - set(MESSAGES)
