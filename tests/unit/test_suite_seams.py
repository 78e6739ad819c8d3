"""What ``tests/support/fast.py`` does for speed leaves production as it is and checks the same.

The suite hashes staff passwords cheaply: production's hasher is checked here instead. The
catalog and template caches give back what a fresh compile gives, and see a changed file; apps
that share FastAPI's analysis of a route still answer, validate and override on their own.
"""

from __future__ import annotations

import os
from pathlib import Path

import argon2
from jinja2 import DictLoader, Environment, FileSystemLoader

from support.fast import PRODUCTION, MemoryBytecodeCache, cached_translations
from tally.staff import service as staff_service
from tally.web import i18n


def test_production_hashes_staff_passwords_with_argon2id_at_full_cost() -> None:
    hasher = PRODUCTION["hasher"]
    stored = hasher.hash("correct horse battery")
    parameters = argon2.extract_parameters(stored)
    # RFC 9106's second recommended option, argon2-cffi's default: 64 MiB, 3 passes, 4 lanes.
    assert parameters.type is argon2.Type.ID
    assert parameters.memory_cost >= 65536
    assert parameters.time_cost >= 3
    assert hasher.verify(stored, "correct horse battery")
    # An unknown user is checked against a dummy hash made by the same hasher: same timing.
    assert argon2.extract_parameters(PRODUCTION["dummy_hash"]) == parameters


def test_the_suite_hashes_with_argon2id_and_refuses_wrong_passwords() -> None:
    stored = staff_service._hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert staff_service._hasher.verify(stored, "correct horse battery")
    try:
        staff_service._hasher.verify(stored, "wrong horse battery")
    except argon2.exceptions.VerifyMismatchError:
        pass
    else:
        raise AssertionError("a wrong password was accepted")


def _environment(loader: object, cache: MemoryBytecodeCache, **options: object) -> Environment:
    return Environment(loader=loader, bytecode_cache=cache, **options)  # type: ignore[arg-type]


def test_compiled_templates_are_shared_and_recompiled_when_the_source_changes(
    tmp_path: Path,
) -> None:
    cache = MemoryBytecodeCache()
    page = tmp_path / "page.html"
    page.write_text("one {{ x }}", encoding="utf-8")
    first = _environment(FileSystemLoader(tmp_path), cache)
    assert first.get_template("page.html").render(x=1) == "one 1"
    # Another environment (another app) takes the compiled code, and renders the same.
    second = _environment(FileSystemLoader(tmp_path), cache)
    assert second.get_template("page.html").render(x=2) == "one 2"
    page.write_text("two {{ x }}", encoding="utf-8")
    third = _environment(FileSystemLoader(tmp_path), cache)
    assert third.get_template("page.html").render(x=3) == "two 3"


def test_compiled_templates_are_not_shared_between_different_syntax_options() -> None:
    cache = MemoryBytecodeCache()
    source = {"t.html": "  {% if true %}\nyes\n  {% endif %}\n"}
    plain = _environment(DictLoader(source), cache)
    trimmed = _environment(DictLoader(source), cache, trim_blocks=True, lstrip_blocks=True)
    assert plain.get_template("t.html").render() == "  \nyes\n  "
    assert trimmed.get_template("t.html").render() == "yes\n"


def test_catalogs_are_compiled_once_and_again_when_a_file_changes(tmp_path: Path) -> None:
    for locale in i18n.SUPPORTED:
        source = i18n.catalog_path(locale)
        target = i18n.catalog_path(locale, tmp_path)
        target.parent.mkdir(parents=True)
        target.write_bytes(source.read_bytes())
    load = cached_translations(i18n.load_translations)
    first = load(tmp_path)
    assert load(tmp_path) is first
    english = i18n.catalog_path("en", tmp_path)
    english.write_bytes(english.read_bytes() + b'\nmsgid "A new line"\nmsgstr "A new line!"\n')
    stat = english.stat()
    os.utime(english, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = load(tmp_path)
    assert again is not first
    assert again["en"].gettext("A new line") == "A new line!"
    assert first["en"].gettext("A new line") == "A new line"


def test_apps_sharing_analysed_routes_keep_their_own_dependency_overrides() -> None:
    from fastapi import APIRouter, Depends, FastAPI
    from fastapi.testclient import TestClient

    def who() -> str:
        return "real"

    router = APIRouter()

    @router.get("/who")
    def answer(name: str = Depends(who), times: int = 1) -> dict[str, object]:
        return {"name": name, "times": times}

    first, second = FastAPI(), FastAPI()
    first.include_router(router, prefix="/v1")
    second.include_router(router, prefix="/v1")
    second.dependency_overrides[who] = lambda: "override"
    with TestClient(first) as one, TestClient(second) as two:
        assert one.get("/v1/who", params={"times": 2}).json() == {"name": "real", "times": 2}
        assert two.get("/v1/who").json() == {"name": "override", "times": 1}
        assert one.get("/v1/who").json() == {"name": "real", "times": 1}
        assert two.get("/v1/who", params={"times": "x"}).status_code == 422
