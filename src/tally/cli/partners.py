"""``tally partner``: partners and their API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from tally.cli.common import emit, fail, open_database
from tally.config import get_settings
from tally.errors import TallyError
from tally.kit.clock import utcnow
from tally.partners import service as partners
from tally.programme import runtime

app = typer.Typer(
    help="Partners (business lines, brands) and their API keys.", no_args_is_help=True
)

ScopesOption = Annotated[
    str,
    typer.Option(
        "--scopes",
        help="Comma-separated: members,earn,redeem,read,admin,webhooks,events,catalog,mall,"
        "coupons; transfer only for the operator's channels (partners[].operator_channel in "
        "the programme).",
    ),
]


def _issue_key(code: str, scopes: str, register_as: str | None) -> dict[str, object]:
    """Issue a key for partner ``code`` (registering it first under ``register_as``, if given)."""
    settings = get_settings()
    parsed = partners.parse_scopes(scopes)
    with open_database(settings) as db, db.write() as session:
        if register_as is None:
            partner = partners.partner_by_code(session, code)
        else:
            partner = partners.create_partner(session, code, register_as, utcnow())
        key, plain = partners.issue_key(
            session,
            partner,
            parsed,
            settings.resolved_secret(),
            utcnow(),
            operator_channel=runtime.effective(session, settings).is_operator_channel(code),
        )
        return {
            "partner_id": partner.id,
            "code": partner.code,
            "name": partner.name,
            "api_key": plain,
            "key_prefix": key.prefix,
            "scopes": sorted(scope.value for scope in parsed),
        }


@app.command("create")
def create(
    code: Annotated[str, typer.Argument(help="Short unique code, e.g. MOBILE.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    scopes: ScopesOption = "members,earn,redeem,read",
) -> None:
    """Register a partner and print its first API key (shown once) as JSON."""
    try:
        emit(_issue_key(code, scopes, register_as=name))
    except TallyError as error:
        fail(error)


@app.command("list")
def list_partners() -> None:
    """List partners (whether each is an operator channel) and their keys (prefixes only)."""
    settings = get_settings()
    with open_database(settings) as db, db.read() as session:
        in_force = runtime.effective(session, settings)
        emit(
            [
                {
                    "partner_id": partner.id,
                    "code": partner.code,
                    "name": partner.name,
                    "is_active": partner.is_active,
                    "operator_channel": in_force.is_operator_channel(partner.code),
                    "keys": [
                        {
                            "prefix": key.prefix,
                            "scopes": key.scopes.split(","),
                            "revoked": key.revoked_at is not None,
                        }
                        for key in partners.keys_of(session, partner.id)
                    ],
                }
                for partner in partners.partners(session)
            ]
        )


@app.command("key-create")
def key_create(
    code: Annotated[str, typer.Argument(help="The partner's code.")],
    scopes: ScopesOption = "members,earn,redeem,read",
) -> None:
    """Issue another API key for a partner (shown once)."""
    try:
        issued = _issue_key(code, scopes, register_as=None)
        emit({name: issued[name] for name in ("code", "api_key", "key_prefix")})
    except TallyError as error:
        fail(error)


@app.command("key-revoke")
def key_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix, e.g. tly_ab12cd34ef56.")],
) -> None:
    """Revoke an API key; it stops working at once."""
    try:
        with open_database() as db, db.write() as session:
            partners.revoke_key(session, prefix, utcnow())
        emit({"revoked": prefix})
    except TallyError as error:
        fail(error)
