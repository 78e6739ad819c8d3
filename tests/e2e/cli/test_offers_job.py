"""``tally jobs offers`` on both databases: it keeps the offers' signals as of a moment, a dry
run reports the same and writes nothing, and a second run changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from e2e.cli.clikit import run
from support.mall import Mall, open_mall
from tally.config import Settings, get_settings
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.offers.models import OfferPopularity, OfferRefresh, OfferSimilarity


@pytest.fixture
def mall(database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mall]:
    monkeypatch.setenv("TALLY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TALLY_SECRET_KEY", settings.secret_key)
    get_settings.cache_clear()
    yield open_mall(database)
    get_settings.cache_clear()


def _rows(mall: Mall) -> tuple[int, int, int]:
    with mall.db.read() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (OfferSimilarity, OfferPopularity, OfferRefresh)
        )


def test_the_offers_job_keeps_the_signals_and_a_dry_run_writes_nothing(mall: Mall) -> None:
    mall.item("BOOK", points=10)
    mall.item("TRIP", points=10)
    for _ in range(2):
        member = mall.member(100)
        mall.place(member, "BOOK")
        mall.place(member, "TRIP")
    as_of = utcnow().isoformat()

    preview = json.loads(run("jobs", "offers", "--as-of", as_of, "--dry-run").output)
    assert preview == {
        "as_of": preview["as_of"],
        "dry_run": True,
        "pairs": 4,
        "similarities": 2,
        "popularity": 4,
    }
    assert _rows(mall) == (0, 0, 0)

    done = json.loads(run("jobs", "offers", "--as-of", as_of).output)
    assert {key: done[key] for key in ("pairs", "similarities", "popularity")} == {
        "pairs": 4,
        "similarities": 2,
        "popularity": 4,
    }
    assert _rows(mall) == (2, 4, 1)
    again = json.loads(run("jobs", "offers", "--as-of", as_of).output)
    assert again == done
    assert _rows(mall) == (2, 4, 1)
