"""Pure rules of profile visibility and consents: who sees what of a member, and what an act
of consent changes. No database here."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tally.programme.domain import Programme


class CollectionMethod(enum.StrEnum):
    """How a partner came to hold a member's data."""

    ENROL = "enrol"  # it enrolled the member (the identity and the profile came from it)
    LINK = "link"  # it linked one of its identities to the member


class Purpose(enum.StrEnum):
    """What a member lets a partner use its profile for."""

    PROFILE = "profile"  # see the member's personal data in the member resource
    MARKETING = "marketing"  # contact the member with offers (recorded; not used yet)


#: The channel of an act a member did on its own pages.
MEMBER_PAGES = "member_pages"
#: The channel of an act staff recorded in the console (the staff member is ``recorded_by``).
CONSOLE = "console"
#: The channel of an act a merge carried from the merged member to the survivor
#: (``recorded_by``: the staff member who merged).
MERGE = "merge"
_CHANNEL = re.compile(r"member_pages|console|merge|api:[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class Viewer(Protocol):
    """Whoever reads a member: a partner, known by its id and code, maybe an operator channel."""

    @property
    def partner_id(self) -> int: ...

    @property
    def partner_code(self) -> str: ...

    @property
    def is_operator_channel(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Collection:
    """A partner collected a member's data (enrolled it, or linked an identity in ``namespace``)."""

    partner_id: int
    method: CollectionMethod
    namespace: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsentAct:
    """A grant or a withdrawal, as recorded."""

    partner_id: int
    purpose: Purpose
    version: int
    is_granted: bool
    channel: str
    created_at: datetime
    recorded_by: int | None = None  # the staff member, for the console's and merges' acts


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What one viewer may see of one member: the profile or not, and which identities."""

    profile: bool
    namespaces: frozenset[str] | None  # ``None``: every namespace

    def shows(self, namespace: str) -> bool:
        """Whether identities in ``namespace`` are shown."""
        return self.namespaces is None or namespace in self.namespaces


EVERYTHING = Disclosure(profile=True, namespaces=None)


def api_channel(partner_code: str) -> str:
    """The channel of an act recorded through the API by partner ``partner_code``."""
    return f"api:{partner_code}"


def is_channel(text: str) -> bool:
    """Whether ``text`` names a channel (``member_pages``, ``api:<code>``, ``console``,
    ``merge``)."""
    return _CHANNEL.fullmatch(text) is not None


def standing(acts: Iterable[ConsentAct]) -> dict[tuple[int, Purpose], ConsentAct]:
    """The latest act of each (partner, purpose): the consent's current state."""
    latest: dict[tuple[int, Purpose], ConsentAct] = {}
    for act in acts:
        key = (act.partner_id, act.purpose)
        if key not in latest or act.version > latest[key].version:
            latest[key] = act
    return latest


def changes(current: ConsentAct | None, *, grant: bool) -> bool:
    """Whether granting (or withdrawing) changes the state: repeating an act records nothing,
    and withdrawing a consent never granted is already the state."""
    is_granted = current is not None and current.is_granted
    return is_granted != grant


def next_version(current: ConsentAct | None) -> int:
    """The version the next act of a (member, partner, purpose) takes."""
    return 1 if current is None else current.version + 1


def carried_acts(
    survivor: Mapping[tuple[int, Purpose], ConsentAct],
    merged: Mapping[tuple[int, Purpose], ConsentAct],
    *,
    now: datetime,
    staff_id: int | None,
) -> list[ConsentAct]:
    """The acts a merge appends to the survivor, given both members' standing acts
    (:func:`standing`): never broader than what the survivor itself said.

    - The survivor has no record for a (partner, purpose): the merged member's latest act
      carries over (a grant or a withdrawal).
    - The survivor withdrew (or its latest act is a withdrawal): it stays withdrawn.
    - The survivor granted, and the merged member withdrew *after* that grant: the withdrawal
      carries over (the person's latest word, and narrower); a withdrawal before the grant does
      not undo it.

    Each carried act is new (channel :data:`MERGE`, at ``now``, recorded by ``staff_id``), with
    the version after the survivor's; old rows are never changed. Ordered by partner, purpose.
    """
    carried = []
    for key in sorted(merged, key=lambda item: (item[0], item[1].value)):
        theirs, ours = merged[key], survivor.get(key)
        if ours is None:
            carry = True
        elif not ours.is_granted:
            carry = False
        else:
            carry = not theirs.is_granted and theirs.created_at > ours.created_at
        if carry:
            carried.append(
                ConsentAct(
                    partner_id=theirs.partner_id,
                    purpose=theirs.purpose,
                    version=next_version(ours),
                    is_granted=theirs.is_granted,
                    channel=MERGE,
                    created_at=now,
                    recorded_by=staff_id,
                )
            )
    return carried


#: A checkout window: ``(presented_at, valid_until)``.
Window = tuple[datetime, datetime]


def carried_windows(
    survivor: Mapping[int, Window], merged: Mapping[int, Window], *, now: datetime
) -> dict[int, Window]:
    """The checkout windows (partner id → window) a merge gives the survivor: each of the merged
    member's that is still open at ``now``, where the survivor's own with that partner ends
    earlier or there is none (an ended window ties nothing, so it is not carried)."""
    return {
        partner_id: window
        for partner_id, window in sorted(merged.items())
        if window[1] > now and (partner_id not in survivor or survivor[partner_id][1] < window[1])
    }


def disclosure(
    viewer: Viewer,
    programme: Programme,
    collections: Sequence[Collection],
    consented: bool,
) -> Disclosure:
    """What ``viewer`` may see of a member.

    The operator's channels see everything. Another partner sees the profile when it enrolled
    the member (the profile came from it) or the member's ``profile`` consent for it stands; a
    link carries only an identity, so it discloses no profile (or any partner could link its own
    user id to any member to read it). Identities: those in the partner's own namespaces and in
    the namespaces it collected in; those in the shared namespaces it may use (phone, email)
    only with the profile, since they are personal data too.
    """
    if viewer.is_operator_channel:
        return EVERYTHING
    own = [item for item in collections if item.partner_id == viewer.partner_id]
    profile = consented or any(item.method is CollectionMethod.ENROL for item in own)
    namespaces = {item.namespace for item in own}
    for spec in programme.namespaces:
        if spec.owner == viewer.partner_code or (profile and spec.usable_by(viewer.partner_code)):
            namespaces.add(spec.code)
    return Disclosure(profile=profile, namespaces=frozenset(namespaces))
