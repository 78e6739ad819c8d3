"""The console's coupons: every template with its use, one template with its latest codes and
redemptions, a form to create a template and one to issue codes (staff with the ``campaigns``
permission, once per form, audited)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.audit import service as audit
from tally.coupons import domain
from tally.coupons import service as coupons
from tally.coupons.domain import Kind, Scope
from tally.coupons.models import CouponTemplate
from tally.errors import NotFound, TallyError, ValidationFailed
from tally.programme.domain import CURRENCY_EXPONENTS, Money
from tally.staff.service import Permission
from tally.web.console import once
from tally.web.console.auth import Staff, require
from tally.web.console.pages import error_flash, flash, page
from tally.web.coupon_views import terms_text
from tally.web.http import gettext, programme_in_force, redirect
from tally.web.i18n import N_
from tally.web.sessions import Flash, client_of, now

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.VIEW))]
Operator = Annotated[Staff, Depends(require(Permission.CAMPAIGNS))]
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_]{0,63}$")]
Short = Annotated[str, Form(max_length=100)]
Long = Annotated[str, Form(max_length=2000)]
CREATE_FORM, ISSUE_FORM = "coupon-template", "coupon-issue"
MAX_CONSOLE_ISSUE = 10_000


def _url(code: str) -> str:
    return f"/console/coupons/{code}"


def masked(code: str) -> str:
    """A code as the console lists it: only its last four characters (the whole code is shown
    once, to whoever issued it)."""
    shown = domain.formatted(code)
    return "".join("•" if char.isalnum() else char for char in shown[:-4]) + shown[-4:]


def _list(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part for part in re.split(r"[,\s]+", text.strip()) if part))


def _minor(text: str, currency: str, field: str) -> int | None:
    """``"15.00"`` → 1500 minor units (refused: more decimals than the currency has)."""
    cleaned = text.strip().replace(",", "")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValidationFailed(f"{field} is an amount like 15.00.", field=field) from None
    minor = value.scaleb(CURRENCY_EXPONENTS[currency])
    if minor <= 0 or minor != minor.to_integral_value():
        raise ValidationFailed(f"{field} is a positive amount like 15.00.", field=field)
    return int(minor)


def _basis_points(text: str) -> int:
    """``"12.5"`` (percent) → 1250 basis points."""
    try:
        value = Decimal(text.strip()) * 100
    except InvalidOperation:
        raise ValidationFailed("A percent is like 15 or 12.5.", field="value") from None
    if value != value.to_integral_value() or not 1 <= value <= domain.BASIS_POINTS:
        raise ValidationFailed("A percent is from 0.01 to 100.", field="value")
    return int(value)


def _whole(text: str, field: str) -> int | None:
    cleaned = text.strip()
    if not cleaned:
        return None
    if not re.fullmatch(r"[1-9][0-9]{0,8}", cleaned):
        raise ValidationFailed(f"{field} is a whole number above 0.", field=field)
    return int(cleaned)


def _day(text: str, zone: ZoneInfo, field: str, *, end: bool) -> datetime | None:
    """A date typed in the form: the start of that day in the programme's zone, or (``end``)
    the start of the next, when it is no longer valid."""
    if not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{field} is a date like 2027-06-30.", field=field) from None
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=zone)


def _templates(
    request: Request, staff: Staff, *, status: int = 200, flashes: list[Flash] | None = None
) -> Response:
    with database(request).read() as session:
        rows = coupons.templates(session)
        currency = programme_in_force(request, session).currency.point_value.currency
    context = {
        "templates": [(row, terms_text(row)) for row in rows],
        "currency": currency,
        "nonce": once.issue(request, CREATE_FORM) if staff.can(Permission.CAMPAIGNS) else "",
        "section": "coupons",
        "page_url": "/console/coupons",
    }
    return page(request, "console/coupons.html", staff, context, status=status, flashes=flashes)


@router.get("/coupons")
def coupons_page(request: Request, staff: Viewer) -> Response:
    """Every coupon template with its counts, and the form to create one."""
    return _templates(request, staff)


@router.post("/coupons")
def create(
    request: Request,
    staff: Operator,
    code: Short = "",
    kind: Short = "amount",
    value: Short = "",
    cap: Short = "",
    min_spend: Short = "",
    name_zh: Short = "",
    name_en: Short = "",
    categories: Long = "",
    skus: Long = "",
    partners: Long = "",
    total: Short = "",
    per_member: Short = "",
    valid_from: Short = "",
    valid_until: Short = "",
    shared_code: Short = "",
    nonce: Short = "",
) -> Response:
    """Create a template (once per form)."""

    def work(session: Session) -> tuple[CouponTemplate, dict[str, object]]:
        found = programme_in_force(request, session)
        currency = found.currency.point_value.currency
        if kind not in ("amount", "percent"):
            raise ValidationFailed("Choose amount or percent.", field="kind")
        if not name_zh.strip() or not name_en.strip():
            raise ValidationFailed("Give the names in both languages.", field="names")
        spec = coupons.TemplateSpec(
            code=code.strip().upper(),
            kind=Kind(kind),
            value=(_minor(value, currency, "value") or 0)
            if kind == "amount"
            else _basis_points(value),
            names={"zh-CN": name_zh.strip(), "en": name_en.strip()},
            cap=_minor(cap, currency, "cap"),
            min_spend=_minor(min_spend, currency, "min_spend"),
            scope=Scope(_list(categories), _list(skus), _list(partners)),
            total_limit=_whole(total, "total"),
            per_member_limit=_whole(per_member, "per_member"),
            valid_from=_day(valid_from, found.zone, "valid_from", end=False),
            valid_until=_day(valid_until, found.zone, "valid_until", end=True),
            shared_code=shared_code == "yes",
        )
        if spec.value <= 0 or not re.fullmatch(r"[A-Z0-9][A-Z0-9_]{1,63}", spec.code):
            raise ValidationFailed("A code is 2 to 64 letters, digits or '_'.", field="code")
        row = coupons.create_template(session, spec, currency, now(request), staff_id=staff.id)
        audit.record(
            session,
            actor=staff.actor,
            action="coupon.template_create",
            details={"template": row.code, "kind": row.kind.value, "value": row.value},
            address=client_of(request).address,
            now=now(request),
        )
        return row, {"template": row.code}

    try:
        form = once.checked(request, staff, CREATE_FORM, nonce)
        outcome = once.run(database(request), form, work)
    except TallyError as error:
        return _templates(
            request, staff, status=error.status, flashes=[error_flash(request, error)]
        )
    if isinstance(outcome, once.Done):
        flash(request, "info", N_("This form was already sent; nothing was repeated."))
        return redirect(request, "/console/coupons")
    flash(request, "success", N_("The coupon template is created."))
    return redirect(request, _url(outcome.code))


def _template_page(
    request: Request,
    staff: Staff,
    code: str,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
    issued: list[str] | None = None,
) -> Response:
    with database(request).read() as session:
        row = coupons.template(session, code)
        use = coupons.usage(session, row)
    context = {
        "template": row,
        "terms": terms_text(row),
        "use": use,
        "issued": issued or [],
        "masked": masked,
        "money": lambda minor: Money(minor, row.currency),
        "nonce": once.issue(request, ISSUE_FORM) if staff.can(Permission.CAMPAIGNS) else "",
        "section": "coupons",
        "page_url": _url(row.code),
    }
    return page(request, "console/coupon.html", staff, context, status=status, flashes=flashes)


@router.get("/coupons/{code}")
def show(request: Request, staff: Viewer, code: Code) -> Response:
    """One template: its terms, its use, its latest codes and redemptions."""
    try:
        return _template_page(request, staff, code)
    except NotFound:
        flash(request, "error", N_("No such coupon template."))
        return redirect(request, "/console/coupons")


@router.post("/coupons/{code}/issue")
def issue(
    request: Request,
    staff: Operator,
    code: Code,
    members: Long = "",
    count: Short = "",
    nonce: Short = "",
) -> Response:
    """Issue codes: one to each member listed (ids, separated by commas or spaces), or a count
    of unassigned codes (shown once on the page that follows)."""

    def work(session: Session) -> tuple[list[str], dict[str, object]]:
        row = coupons.template(session, code)
        try:
            member_ids = [int(item) for item in _list(members)]
        except ValueError:
            raise ValidationFailed("Members are Tally ids.", field="members") from None
        how_many = _whole(count, "count")
        if how_many is not None and how_many > MAX_CONSOLE_ISSUE:
            raise ValidationFailed(f"At most {MAX_CONSOLE_ISSUE} codes at once.", field="count")
        done = coupons.issue(
            session,
            row,
            coupons.Issuer(staff_id=staff.id),
            now(request),
            member_ids=member_ids,
            count=how_many,
        )
        audit.record(
            session,
            actor=staff.actor,
            action="coupon.issue",
            details={"template": row.code, "codes": len(done), "members": len(member_ids)},
            address=client_of(request).address,
            now=now(request),
        )
        return [domain.formatted(text) for _id, text, member in done if member is None], {
            "issued": len(done)
        }

    try:
        form = once.checked(request, staff, ISSUE_FORM, nonce)
        outcome = once.run(database(request), form, work)
    except NotFound:
        flash(request, "error", N_("No such coupon template."))
        return redirect(request, "/console/coupons")
    except TallyError as error:
        return _template_page(
            request, staff, code, status=error.status, flashes=[error_flash(request, error)]
        )
    if isinstance(outcome, once.Done):
        flash(request, "info", N_("This form was already sent; nothing was repeated."))
        return redirect(request, _url(code))
    shown = [Flash("success", _issued_message(request, outcome))]
    return _template_page(request, staff, code, flashes=shown, issued=outcome)


def _issued_message(request: Request, unassigned: list[str]) -> str:
    if unassigned:
        return gettext(
            request,
            N_("%(count)s codes are issued. Copy them now: they are shown once."),
            count=len(unassigned),
        )
    return gettext(request, N_("The codes are in the members' wallets."))
