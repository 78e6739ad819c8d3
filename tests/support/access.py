"""The programme facts that relationships rest on, for tests: operator channels and extra
identity namespaces added to whatever programme is in force."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tally.config import Settings
from tally.kit.clock import utcnow
from tally.programme import loader, runtime
from tally.programme import service as programme_service
from tally.programme.domain import Programme


def with_partner(programme: Programme, code: str, *, operator_channel: bool = True) -> Programme:
    """``programme`` with partner ``code`` in it (an operator channel unless told otherwise)."""
    content = programme.dump()
    partners: list[dict[str, Any]] = [item for item in content["partners"] if item["code"] != code]
    name = next((item["name"] for item in content["partners"] if item["code"] == code), code)
    partners.append({"code": code, "name": name, "operator_channel": operator_channel})
    return Programme.model_validate({**content, "partners": partners})


def with_namespaces(programme: Programme, *specs: dict[str, Any]) -> Programme:
    """``programme`` with more namespaces, e.g. ``{"code": "wechat", "shared_with": "all"}``."""
    content = programme.dump()
    known = {item["code"] for item in content["namespaces"]}
    added = [spec for spec in specs if spec["code"] not in known]
    return Programme.model_validate({**content, "namespaces": [*content["namespaces"], *added]})


def apply(session: Session, programme: Programme) -> None:
    """Apply ``programme`` as the next version (now)."""
    programme_service.apply(session, programme, loader.dump(programme), "tests", utcnow())


#: Namespaces the suites enrol and link in besides phone and email, shared by every partner.
TEST_NAMESPACES = tuple(
    {"code": code, "shared_with": "all"} for code in ("wechat", "qq", "app", "test")
)


#: What the suites' operator channels may adjust through the API without approval (a programme
#: declares none by default: every API adjustment would be a request).
TEST_API_ADJUSTMENT_LIMIT = 100_000


def with_api_adjustment_limit(programme: Programme, limit: int) -> Programme:
    """``programme`` whose partner API may adjust ``limit`` points without approval."""
    content = programme.dump()
    staff = {**content["staff"], "api_adjustment_limit": limit}
    return Programme.model_validate({**content, "staff": staff})


def ensure_operator_channel(session: Session, code: str) -> Programme:
    """Make partner ``code`` one of the operator's channels in the programme in force (with
    the :data:`TEST_NAMESPACES` declared, and :data:`TEST_API_ADJUSTMENT_LIMIT` when it declares
    no API limit), applying a new version only when it is not one."""
    current = runtime.effective(session, Settings())
    if current.is_operator_channel(code):
        return current
    changed = with_namespaces(with_partner(current, code), *TEST_NAMESPACES)
    if not changed.staff.api_adjustment_limit:
        changed = with_api_adjustment_limit(changed, TEST_API_ADJUSTMENT_LIMIT)
    apply(session, changed)
    return changed
