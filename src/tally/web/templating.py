"""Jinja2 environments, one per locale, with formatting filters for points and dates."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from tally.kit.clock import as_utc
from tally.programme.domain import CURRENCY_EXPONENTS, Money
from tally.programme.shapes import Names
from tally.web.i18n import babel_locale

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"
MINUS = "\u2212"
MACROS = "shared/macros.html"


def static_versions(directory: Path = STATIC_DIR) -> dict[str, str]:
    """A short content hash of every static file, for cache-busting URLs."""
    return {
        path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


class Renderer:
    """Renders templates in a locale; environments share one loader and differ in language."""

    def __init__(
        self,
        translations: Mapping[str, Translations],
        zone: Callable[[], ZoneInfo],
        directory: Path = TEMPLATES_DIR,
        static_dir: Path = STATIC_DIR,
        extra_globals: Mapping[str, Any] | None = None,
    ) -> None:
        self.zone = zone
        self.extra_globals = dict(extra_globals or {})
        self.directory = directory
        self._versions = static_versions(static_dir) if static_dir.is_dir() else {}
        loader = FileSystemLoader(directory)
        self.environments = {
            locale: self._environment(loader, locale, catalog)
            for locale, catalog in translations.items()
        }

    def _environment(
        self, loader: FileSystemLoader, locale: str, translations: Translations
    ) -> Environment:
        env = Environment(
            loader=loader,
            autoescape=True,
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
        formats = Formats(locale, self.zone)
        env.filters.update(
            points=formats.points,
            signed=formats.signed,
            datetime=formats.moment,
            date=formats.day,
            long_date=formats.long_date,
            last_day=formats.last_day,
            named=formats.named,
            money=formats.money,
            multiplier=formats.multiplier,
        )
        env.globals.update(self.extra_globals)
        env.globals.update(static_url=self.static_url, locale=locale)
        # Shared macros as a global, so a block rendered on its own (htmx) can use them too.
        env.globals["ui"] = env.get_template(MACROS).module
        return env

    def static_url(self, path: str) -> str:
        """The URL of a static file, versioned by its content."""
        version = self._versions.get(path)
        suffix = f"?v={version}" if version else ""
        return f"{STATIC_PREFIX}/{path}{suffix}"

    def template(self, locale: str, name: str) -> Template:
        """A compiled template in ``locale``."""
        return self.environments[locale].get_template(name)

    def render(
        self, locale: str, name: str, context: Mapping[str, Any], block: str | None = None
    ) -> str:
        """Render a whole template, or only one of its named blocks (for htmx requests)."""
        template = self.template(locale, name)
        if block is None:
            return template.render(context)
        render_block = template.blocks[block]
        return "".join(render_block(template.new_context(dict(context))))

    def template_names(self) -> list[str]:
        """Every template, for tests and checks."""
        return sorted(
            path.relative_to(self.directory).as_posix() for path in self.directory.rglob("*.html")
        )


class Formats:
    """Locale-aware formatting of points and times (times in the programme's zone)."""

    def __init__(self, locale: str, zone: Callable[[], ZoneInfo]) -> None:
        self.code = locale
        self.locale = babel_locale(locale)
        self._zone = zone

    @property
    def zone(self) -> ZoneInfo:
        """The programme's zone now (a newly applied programme may change it)."""
        return self._zone()

    def points(self, value: int) -> str:
        """``12345`` → ``12,345``."""
        return format_decimal(value, locale=self.locale)

    def signed(self, value: int) -> str:
        """``+12`` / ``−12`` (a true minus sign) / ``0``."""
        if value > 0:
            return f"+{self.points(value)}"
        if value < 0:
            return f"{MINUS}{self.points(-value)}"
        return "0"

    def moment(self, value: datetime | None) -> str:
        """``2026-11-26 20:30`` in the programme's zone."""
        if value is None:
            return ""
        return format_datetime(
            as_utc(value), "yyyy-MM-dd HH:mm", tzinfo=self.zone, locale=self.locale
        )

    def day(self, value: date | datetime | None) -> str:
        """``2026-11-26`` (a datetime is first moved to the programme's zone)."""
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = as_utc(value).astimezone(self.zone).date()
        return value.isoformat()

    def last_day(self, value: datetime) -> date:
        """The last local day on which something that ends at ``value`` is still usable."""
        return as_utc(value - timedelta(microseconds=1)).astimezone(self.zone).date()

    def long_date(self, value: date | datetime | None) -> str:
        """``2026年11月26日`` / ``Nov 26, 2026``."""
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = as_utc(value).astimezone(self.zone).date()
        return format_date(value, "medium", locale=self.locale)

    def named(self, names: Names | Mapping[str, str] | str | None) -> str:
        """A programme name (tier, plan, currency) in this language; a bare code stays as is."""
        if names is None:
            return ""
        if isinstance(names, str):
            return names
        if isinstance(names, Names):
            return names.en if self.code == "en" else names.zh_cn
        return names.get(self.code) or next(iter(names.values()), "")

    def money(self, value: Money) -> str:
        """``Money(8800, "CNY")`` → ``¥88.00`` / ``CN¥88.00``."""
        amount = Decimal(value.minor_units).scaleb(-CURRENCY_EXPONENTS[value.currency])
        return format_currency(amount, value.currency, locale=self.locale)

    def multiplier(self, value: str) -> str:
        """A multiplier without trailing zeros: ``"1.50"`` → ``×1.5``."""
        return f"\u00d7{format(Decimal(value).normalize(), 'f')}"
