"""The console's partners and their API keys (administrators): register, deactivate, create a
key (its plain text shown once, on the page that created it), revoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.errors import TallyError
from tally.flows import management
from tally.kit.clock import utcnow
from tally.partners import service as partners
from tally.partners.domain import OPERATOR_SCOPES, Scope
from tally.partners.models import Partner
from tally.staff.service import Permission
from tally.web.console import adjustment_views, once
from tally.web.console.auth import Staff, require
from tally.web.console.pages import error_flash, flash, page
from tally.web.http import gettext, programme_in_force, redirect
from tally.web.i18n import N_
from tally.web.sessions import Flash, now

router = APIRouter()
Manager = Annotated[Staff, Depends(require(Permission.MANAGE))]
PartnerCode = Annotated[str, Path(pattern=partners.CODE_PATTERN.pattern)]
KeyPrefix = Annotated[str, Path(pattern=r"^tly_[0-9a-f]{12}$")]
Text = Annotated[str, Form(max_length=200)]
Scopes = Annotated[list[str] | None, Form()]
SCOPES = tuple(scope.value for scope in Scope)
DEFAULT_SCOPES = ("members", "earn", "redeem", "read")


@dataclass(frozen=True, slots=True)
class PartnerRow:
    """A partner as the console lists it."""

    code: str
    name: str
    is_active: bool
    is_operator_channel: bool
    active_keys: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyRow:
    """An API key, by its prefix (the secret is never shown again)."""

    prefix: str
    label: str | None
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


def _url(code: str) -> str:
    return f"/console/partners/{code}"


def partners_page(
    request: Request,
    staff: Staff,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """Every partner, and the form that registers one."""
    with database(request).read() as session:
        programme = programme_in_force(request, session)
        rows = [
            PartnerRow(
                code=partner.code,
                name=partner.name,
                is_active=partner.is_active,
                is_operator_channel=programme.is_operator_channel(partner.code),
                active_keys=sum(
                    key.revoked_at is None for key in partners.keys_of(session, partner.id)
                ),
                created_at=partner.created_at,
            )
            for partner in partners.partners(session)
        ]
    context = {
        "partners": rows,
        "form": {"code": "", "name": "", **(form or {})},
        "nonce": once.issue(request, "partner"),
        "page_url": "/console/partners",
        "section": "partners",
    }
    return page(request, "console/partners.html", staff, context, status=status, flashes=flashes)


def partner_page(
    request: Request,
    staff: Staff,
    code: str,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
    new_key: str | None = None,
    chosen: list[str] | None = None,
) -> Response:
    """One partner: its keys by prefix, the form that creates one, (de)activation."""
    with database(request).read() as session:
        partner = partners.partner_by_code(session, code)
        operator = programme_in_force(request, session).is_operator_channel(partner.code)
        keys = [
            KeyRow(key.prefix, key.label, key.scopes.split(","), key.created_at, key.revoked_at)
            for key in reversed(partners.keys_of(session, partner.id))
        ]
    context = {
        "partner": partner,
        "is_operator_channel": operator,
        "keys": keys,
        "scopes": SCOPES,
        "operator_scopes": sorted(scope.value for scope in OPERATOR_SCOPES),
        "chosen": DEFAULT_SCOPES if chosen is None else chosen,
        "new_key": new_key,
        "nonce": once.issue(request, "api_key"),
        "page_url": _url(partner.code),
        "section": "partners",
    }
    return page(request, "console/partner.html", staff, context, status=status, flashes=flashes)


@router.get("/partners")
def list_partners(request: Request, staff: Manager) -> Response:
    """Every partner with its status and how many keys it holds."""
    return partners_page(request, staff)


@router.post("/partners")
def register(
    request: Request, staff: Manager, code: Text = "", name: Text = "", nonce: Text = ""
) -> Response:
    """Register a partner (once per form); its keys are created on its page."""

    def work(session: Session) -> tuple[Partner, dict[str, object]]:
        actor = adjustment_views.actor_of(request, staff)
        partner = management.register_partner(session, actor, code, name, now(request))
        return partner, {"partner": partner.code}

    try:
        form = once.checked(request, staff, "partner", nonce)
        outcome = once.run(database(request), form, work)
    except TallyError as error:
        return partners_page(
            request,
            staff,
            status=error.status,
            flashes=[_refusal(request, error)],
            form={"code": code, "name": name},
        )
    if isinstance(outcome, once.Done):
        done = str(outcome.answer.get("partner", ""))
        flash(
            request,
            "info",
            N_("This form was already sent: partner %(code)s is registered."),
            code=done,
        )
        return redirect(request, _url(done) if done else "/console/partners")
    flash(request, "success", N_("Partner %(code)s registered."), code=outcome.code)
    return redirect(request, _url(outcome.code))


@router.get("/partners/{code}")
def show_partner(request: Request, staff: Manager, code: PartnerCode) -> Response:
    """One partner and its keys."""
    return partner_page(request, staff, code)


def _set_active(request: Request, staff: Staff, code: str, active: bool) -> Response:
    try:
        with database(request).write() as session:
            actor = adjustment_views.actor_of(request, staff)
            management.set_partner_active(session, actor, code, active, utcnow())
    except TallyError as error:
        return partner_page(
            request, staff, code, status=error.status, flashes=[error_flash(request, error)]
        )
    message = (
        N_("Partner %(code)s is active again.")
        if active
        else N_("Partner %(code)s is deactivated: its keys are refused from now on.")
    )
    flash(request, "success", message, code=code)
    return redirect(request, _url(code))


@router.post("/partners/{code}/deactivate")
def deactivate(request: Request, staff: Manager, code: PartnerCode) -> Response:
    """Stop a partner: every one of its keys is refused at once."""
    return _set_active(request, staff, code, active=False)


@router.post("/partners/{code}/activate")
def activate(request: Request, staff: Manager, code: PartnerCode) -> Response:
    """Let a deactivated partner's unrevoked keys work again."""
    return _set_active(request, staff, code, active=True)


@router.post("/partners/{code}/keys")
def create_key(
    request: Request,
    staff: Manager,
    code: PartnerCode,
    scopes: Scopes = None,
    label: Text = "",
    nonce: Text = "",
) -> Response:
    """Create a key, once per form; the page that answers shows it once (it is stored only as a
    keyed hash). The same form sent again creates nothing and never shows the key again."""
    chosen = [name for name in scopes or [] if name in SCOPES]

    def work(session: Session) -> tuple[str, dict[str, object]]:
        key, plain = management.issue_key(
            session,
            adjustment_views.actor_of(request, staff),
            code,
            ",".join(chosen),
            label.strip() or None,
            programme=programme_in_force(request, session),
            secret=request.app.state.secret,
            now=now(request),
        )
        return plain, {"partner": code, "key": key.prefix}  # never the key itself

    try:
        form = once.checked(request, staff, "api_key", nonce)
        outcome = once.run(database(request), form, work)
    except TallyError as error:
        return partner_page(
            request,
            staff,
            code,
            status=error.status,
            flashes=[_key_refusal(request, error, chosen)],
            chosen=chosen,
        )
    if isinstance(outcome, once.Done):
        message = N_(
            "This form was already sent: key %(prefix)s was created then. Its secret is shown "
            "only once; if it was not copied, revoke that key and create another."
        )
        flash(request, "info", message, prefix=str(outcome.answer.get("key", "?")))
        return redirect(request, _url(code))
    shown = Flash("success", gettext(request, N_("The key was created.")))
    return partner_page(request, staff, code, status=201, flashes=[shown], new_key=outcome)


def _key_refusal(request: Request, error: TallyError, chosen: list[str]) -> Flash:
    """Why a key was refused, in the operator's words."""
    if error.extra.get("field") == "scopes":
        if not chosen:
            return Flash("error", gettext(request, N_("Choose at least one scope.")))
        reserved = ", ".join(sorted(scope.value for scope in OPERATOR_SCOPES))
        message = N_(
            "Only the operator's own channels may hold the %(scopes)s scope "
            "(operator_channel in the programme file)."
        )
        return Flash("error", gettext(request, message, scopes=reserved))
    return error_flash(request, error)


@router.post("/partners/{code}/keys/{prefix}/revoke")
def revoke(request: Request, staff: Manager, code: PartnerCode, prefix: KeyPrefix) -> Response:
    """Revoke a key: it is refused from the next request on."""
    try:
        with database(request).write() as session:
            actor = adjustment_views.actor_of(request, staff)
            management.revoke_key(session, actor, code, prefix, utcnow())
    except TallyError as error:
        return partner_page(
            request, staff, code, status=error.status, flashes=[error_flash(request, error)]
        )
    flash(request, "success", N_("Key %(prefix)s revoked."), prefix=prefix)
    return redirect(request, _url(code))


def _refusal(request: Request, error: TallyError) -> Flash:
    """Why a partner was not registered; a code already in use is said so."""
    if error.code == "conflict":
        return Flash("error", gettext(request, N_("That partner code is taken.")))
    return error_flash(request, error)
