"""What keeps the suite quick without changing what it checks.

The suite builds an app, hashes a staff password or empties the PostgreSQL database in nearly
every test; done as production does them, those steps took most of its time. Here they are done
once, more cheaply or only as far as needed, with the same outcome:

* **Catalogs compiled once.** ``create_app`` parses and compiles both gettext catalogs (about
  40 ms). :func:`cached_translations` keeps the result per catalog folder and recompiles when a
  ``.po`` file changes (its size or modification time).
* **Templates compiled once.** Each app makes a Jinja environment per language and compiles every
  template it renders on first use (the macros alone, about 15 ms per environment).
  :class:`MemoryBytecodeCache` is Jinja's own bytecode cache, in memory, shared by the
  environments of every app: a template is compiled once per session and again only when its
  source changes (Jinja checks a checksum of the source) or the environment compiles differently
  (its syntax options are part of the key).
* **Cheap password hashes.** Staff passwords are argon2id with the library's defaults (64 MiB,
  3 passes, 4 lanes): 0.1–0.7 s for each hash and each sign-in here. :func:`cheap_hasher` is
  argon2id too, with minimal cost; what a test checks (a hash that starts ``$argon2``, a wrong
  password refused, a right one accepted, the throttle) holds the same. Production's parameters
  are checked by ``tests/unit/test_suite_seams.py``, against the hasher kept in
  :data:`PRODUCTION`. Django's documentation recommends the same for its test suites.
* **Route dependencies analysed once.** FastAPI (0.16x) analyses an endpoint's signature, its
  dependencies and their pydantic fields again for every app it is included in, on the app's
  first request to that router: a fifth of an API test's time. :func:`share_dependants` keeps
  that analysis (``_build_dependant_with_parameterless_dependencies``) per path, endpoint and
  dependency objects; FastAPI already shares it between all requests of one app, never
  mutating it after it is built. Each app still builds its own routes, handlers and
  dependency-override lookups. Where FastAPI has no such function, nothing is patched.
* **Emptying PostgreSQL with DELETE.** ``TRUNCATE`` of every table took 60–170 ms per test (it
  gives every table and index a new file). :func:`empty_postgres` sends one PL/pgSQL block that
  deletes every row (triggers off for the transaction: the audit log's append-only trigger, and
  foreign keys, which need no checking when everything goes) and sets every used sequence back
  to its start: the database ends as empty, with ids from 1, as ``TRUNCATE … RESTART IDENTITY``
  left it, in about 5–15 ms.

:func:`install` applies all but the last for the whole session (``tests/conftest.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from jinja2 import Environment
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy import Engine

__all__ = [
    "PRODUCTION",
    "MemoryBytecodeCache",
    "cached_translations",
    "cheap_hasher",
    "empty_postgres",
    "install",
    "share_dependants",
]

#: What :func:`install` replaced: ``"hasher"``, production's password hasher, and
#: ``"dummy_hash"``, the hash it checks unknown users against.
PRODUCTION: dict[str, Any] = {}


class MemoryBytecodeCache(BytecodeCache):
    """Jinja's compiled templates kept in memory for the session.

    The key is the template's name and file plus the environment's syntax and compile options;
    Jinja itself discards a stored entry whose source checksum differs from the template's.
    """

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def get_bucket(
        self, environment: Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        options = (
            environment.block_start_string,
            environment.block_end_string,
            environment.variable_start_string,
            environment.variable_end_string,
            environment.comment_start_string,
            environment.comment_end_string,
            environment.line_statement_prefix,
            environment.line_comment_prefix,
            environment.trim_blocks,
            environment.lstrip_blocks,
            environment.keep_trailing_newline,
            environment.newline_sequence,
            repr(environment.autoescape),
            environment.optimized,
            tuple(sorted(environment.extensions)),
            getattr(environment, "newstyle_gettext", None),
        )
        key = self.get_cache_key(name, filename) + "|" + repr(options)
        bucket = Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: Bucket) -> None:
        data = self._store.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)  # resets the bucket when the checksum differs

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()

    def clear(self) -> None:
        self._store.clear()


def _catalog_stamp(directory: Path) -> tuple[tuple[str, int, int], ...]:
    return tuple(
        (str(path), path.stat().st_mtime_ns, path.stat().st_size)
        for path in sorted(Path(directory).rglob("*.po"))
    )


def cached_translations(load: Callable[..., Any]) -> Callable[..., Any]:
    """``load`` (``i18n.load_translations``) remembered per folder and its catalogs' stamps."""
    cache: dict[tuple[Any, ...], Any] = {}

    @functools.wraps(load)
    def cached(*args: Any, **kwargs: Any) -> Any:
        directory = kwargs.get("directory", args[0] if args else None)
        if directory is None:
            from tally.web.i18n import LOCALES_DIR

            directory = LOCALES_DIR
        key = (str(directory), _catalog_stamp(directory), args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = load(*args, **kwargs)
        return cache[key]

    return cached


def cheap_hasher() -> PasswordHasher:
    """argon2id at minimal cost: the same hashes, verified the same way, in well under 1 ms."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def share_dependants(monkeypatch: pytest.MonkeyPatch) -> bool:
    """Analyse each endpoint's dependencies once for every app; False when FastAPI differs."""
    from fastapi import routing

    name = "_build_dependant_with_parameterless_dependencies"
    build = getattr(routing, name, None)
    if build is None:
        return False
    # The dependency objects are kept with the analysis, so that their ids stay theirs.
    cache: dict[tuple[Any, ...], tuple[Any, tuple[Any, ...]]] = {}

    @functools.wraps(build)
    def shared(*, path: str, call: Callable[..., Any], dependencies: Any) -> Any:
        key = (path, call, tuple(id(depends) for depends in dependencies))
        try:
            found = cache.get(key)
        except TypeError:  # an unhashable endpoint
            return build(path=path, call=call, dependencies=dependencies)
        if found is None:
            found = build(path=path, call=call, dependencies=dependencies), tuple(dependencies)
            cache[key] = found
        return found[0]

    monkeypatch.setattr(routing, name, shared)
    return True


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile catalogs and templates once, analyse routes once and hash staff passwords
    cheaply, for the session."""
    from tally.staff import service as staff_service
    from tally.web import i18n, templating

    monkeypatch.setattr(i18n, "load_translations", cached_translations(i18n.load_translations))

    bytecode = MemoryBytecodeCache()

    class CachingEnvironment(Environment):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("bytecode_cache", bytecode)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(templating, "Environment", CachingEnvironment)
    share_dependants(monkeypatch)

    PRODUCTION.update(hasher=staff_service._hasher, dummy_hash=staff_service._DUMMY_HASH)
    hasher = cheap_hasher()
    monkeypatch.setattr(staff_service, "_hasher", hasher)
    # Unknown users are checked against a dummy hash (timing reveals nothing): a cheap one too.
    monkeypatch.setattr(staff_service, "_DUMMY_HASH", hasher.hash("not-a-real-password"))


@functools.cache
def _emptying_block(tables: tuple[str, ...]) -> str:
    deletes = "\n".join(f"    DELETE FROM {_ident(name)};" for name in reversed(tables))
    return f"""DO $$
BEGIN
    SET LOCAL session_replication_role = replica;
{deletes}
    PERFORM setval(
        (quote_ident(schemaname) || '.' || quote_ident(sequencename))::regclass, start_value, false
    ) FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL;
END
$$"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def empty_postgres(engine: Engine, tables: list[str]) -> None:
    """Delete every row of ``tables`` and restart every sequence used since it was made.

    One statement, one round trip: a PL/pgSQL block that deletes with triggers off for the
    transaction (``session_replication_role``, which takes a superuser: the tests' server has
    only one role, a superuser) and sets each used sequence back to its start, so the next id
    is 1 again. ``tables`` is the schema's tables, parents first.
    """
    with engine.begin() as connection:
        connection.exec_driver_sql(_emptying_block(tuple(tables)))
