"""Privacy use cases: record who collected a profile, grant and withdraw consents, and decide
what of a member a partner sees. Never commits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tally.audit import service as audit
from tally.errors import UnknownPartner, UnknownPurpose
from tally.members import service as members
from tally.partners.models import Partner
from tally.privacy import repository
from tally.privacy.domain import (
    CONSOLE,
    MERGE,
    Collection,
    CollectionMethod,
    ConsentAct,
    Disclosure,
    Purpose,
    Viewer,
    Window,
    carried_acts,
    carried_windows,
    changes,
    disclosure,
    is_channel,
    next_version,
    standing,
)
from tally.programme.domain import Programme


@dataclass(frozen=True, slots=True)
class SeenMember:
    """A member as one viewer may see it: identities narrowed, the profile or ``None``."""

    member: members.MemberView
    profile: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PartnerRef:
    id: int
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Consents:
    """A member's consents as one viewer may see them: standing states, acts, collections."""

    member_id: int
    standing: list[ConsentAct]
    history: list[ConsentAct]
    collections: list[Collection]
    partners: dict[int, PartnerRef]


def collected(
    session: Session,
    member_id: int,
    partner_id: int,
    method: CollectionMethod,
    namespace: str,
    now: datetime,
) -> None:
    """Record that ``partner_id`` enrolled the member or linked an identity in ``namespace``."""
    repository.record_collection(session, member_id, partner_id, method, namespace, now)


def presented(
    session: Session, member_id: int, partner_id: int, now: datetime, window: timedelta
) -> None:
    """Record that the member showed its member code to ``partner_id`` at ``now``: the partner
    may spend its points for ``window`` (the checkout window) from then."""
    repository.record_presentation(session, member_id, partner_id, now, window)


def disclosure_for(
    session: Session, member_id: int, viewer: Viewer, programme: Programme
) -> Disclosure:
    """What ``viewer`` may see of the member (see :func:`tally.privacy.domain.disclosure`)."""
    if viewer.is_operator_channel:
        return disclosure(viewer, programme, [], consented=False)
    consent = repository.latest_act(session, member_id, viewer.partner_id, Purpose.PROFILE)
    return disclosure(
        viewer,
        programme,
        repository.collections(session, member_id, viewer.partner_id),
        consented=consent is not None and consent.is_granted,
    )


def seen_member(
    session: Session, member_id: int, viewer: Viewer, programme: Programme
) -> SeenMember:
    """The member as ``viewer`` may see it, or ``not_found``."""
    view = members.view(session, member_id)
    shown = disclosure_for(session, member_id, viewer, programme)
    narrowed = replace(
        view, identities=[item for item in view.identities if shown.shows(item.namespace)]
    )
    return SeenMember(narrowed, view.profile if shown.profile else None)


def purpose_of(text: str) -> Purpose:
    """The purpose named ``text``, or ``unknown_purpose``."""
    try:
        return Purpose(text)
    except ValueError:
        known = ", ".join(item.value for item in Purpose)
        raise UnknownPurpose(
            f"No consent purpose {text!r}; known: {known}.", purpose=text
        ) from None


def partner_named(session: Session, code: str) -> PartnerRef:
    """The active partner with ``code``, or ``unknown_partner``."""
    found = session.scalar(select(Partner).where(Partner.code == code, Partner.is_active))
    if found is None:
        raise UnknownPartner(f"No active partner {code!r}.", partner=code)
    return PartnerRef(found.id, found.code, found.name)


def record(
    session: Session,
    member_id: int,
    partner_code: str,
    purpose_name: str,
    *,
    grant: bool,
    channel: str,
    actor: str,
    now: datetime,
    address: str | None = None,
    recorded_by: int | None = None,
) -> bool:
    """Grant or withdraw the member's consent for a partner and purpose; ``True`` when this
    changed the state (an act is recorded, and audited as done by ``actor``, only then:
    repeating one is a no-op). An act in the console names the staff member (``recorded_by``);
    only a merge carries acts over (:func:`carry_over`)."""
    if not is_channel(channel) or channel == MERGE:
        raise ValueError(f"not a consent channel: {channel!r}")
    if (channel == CONSOLE) != (recorded_by is not None):
        raise ValueError("an act in the console, and only one, names the staff member")
    purpose = purpose_of(purpose_name)
    partner = partner_named(session, partner_code)
    members.require_usable(session, member_id, allow_frozen=True)
    current = repository.latest_act(session, member_id, partner.id, purpose)
    if not changes(current, grant=grant):
        return False
    act = ConsentAct(partner.id, purpose, next_version(current), grant, channel, now, recorded_by)
    repository.insert_act(session, member_id, act)
    audit.record(
        session,
        actor=actor,
        action="consent.grant" if grant else "consent.withdraw",
        member_id=member_id,
        details={"partner": partner.code, "purpose": purpose.value, "channel": channel},
        address=address,
        now=now,
    )
    return True


def carry_over(
    session: Session, merged_id: int, survivor_id: int, staff_id: int | None, now: datetime
) -> dict[str, Any]:
    """At a merge, write the merged member's ties on the survivor, so the partners tied to it
    (and its consents) are honoured for the survivor with the survivor's rows alone:

    - its collection records become the survivor's too (each keeps its date);
    - its consents carry over as new acts (channel ``merge``) by
      :func:`tally.privacy.domain.carried_acts` — never broader than what the survivor said;
    - its open checkout windows become the survivor's
      (:func:`tally.privacy.domain.carried_windows`).

    The merged member's own rows stay as they are. Returns what was added, for the merge
    record, so that :func:`take_back` removes exactly that."""
    collections = repository.copy_collections(session, merged_id, survivor_id)
    ours = standing(repository.acts(session, survivor_id))
    theirs = standing(repository.acts(session, merged_id))
    consents = [
        repository.insert_act(session, survivor_id, act)
        for act in carried_acts(ours, theirs, now=now, staff_id=staff_id)
    ]
    mine = repository.presentations(session, survivor_id)
    windows = carried_windows(mine, repository.presentations(session, merged_id), now=now)
    presentations = []
    for partner_id, window in windows.items():
        repository.put_presentation(session, survivor_id, partner_id, window)
        presentations.append(
            {
                "partner_id": partner_id,
                "before": _window_text(mine.get(partner_id)),
                "after": _window_text(window),
            }
        )
    return {"collections": collections, "consents": consents, "presentations": presentations}


def take_back(session: Session, survivor_id: int, added: Mapping[str, Any]) -> None:
    """At an unmerge, remove from the survivor what :func:`carry_over` added: its collection
    records and consent acts (acts recorded on the survivor since stay), and each checkout
    window it wrote, unless the survivor has shown its code to that partner again since (that
    window is the survivor's own)."""
    ids = [int(item) for item in added.get("collections", [])]
    repository.delete_collections(session, survivor_id, ids)
    repository.delete_acts(session, survivor_id, [int(item) for item in added.get("consents", [])])
    current = repository.presentations(session, survivor_id)
    for item in added.get("presentations", []):
        partner_id = int(item["partner_id"])
        if current.get(partner_id) == _window_of(item["after"]):
            before = _window_of(item["before"])
            repository.put_presentation(session, survivor_id, partner_id, before)


def _window_text(window: Window | None) -> list[str] | None:
    return None if window is None else [moment.isoformat() for moment in window]


def _window_of(text: list[str] | None) -> Window | None:
    if text is None:
        return None
    presented_at, valid_until = (datetime.fromisoformat(item) for item in text)
    return presented_at, valid_until


def consents(session: Session, member_id: int, viewer: Viewer | None = None) -> Consents:
    """The member's consents and collections: all of them for the member itself and the
    operator's channels (``viewer`` ``None`` or an operator channel), a partner's own else."""
    members.get(session, member_id)
    only = None if viewer is None or viewer.is_operator_channel else viewer.partner_id
    history = repository.acts(session, member_id, partner_id=only)
    found = repository.collections(session, member_id, only)
    ids = {act.partner_id for act in history} | {item.partner_id for item in found}
    return Consents(
        member_id=member_id,
        standing=sorted(standing(history).values(), key=lambda act: (act.partner_id, act.purpose)),
        history=history,
        collections=found,
        partners=partner_refs(session, ids),
    )


def partner_refs(session: Session, ids: set[int] | None = None) -> dict[int, PartnerRef]:
    """The partners with these ids (every partner when ``None``), by id."""
    query = select(Partner).order_by(Partner.id)
    if ids is not None:
        if not ids:
            return {}
        query = query.where(Partner.id.in_(ids))
    return {row.id: PartnerRef(row.id, row.code, row.name) for row in session.scalars(query)}
