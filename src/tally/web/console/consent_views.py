"""The consents card of the console's member page: the member's consents and collection
records, who recorded each act made in the console or carried by a merge, and the form that
records an act the member tells staff at the service desk or on the phone."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from tally.privacy import service as privacy
from tally.privacy.domain import Collection, ConsentAct, Purpose
from tally.programme.domain import Programme
from tally.web import queries
from tally.web.i18n import N_

#: The purpose of the record-consent form's one-time token (:mod:`tally.web.console.once`).
CONSENT_FORM = "consent"
#: What each purpose lets the partner do, as the form offers it.
PURPOSES: dict[str, str] = {
    Purpose.PROFILE.value: N_("See the member's profile"),
    Purpose.MARKETING.value: N_("Send marketing offers"),
}


@dataclass(frozen=True, slots=True)
class PartnerChoice:
    """A partner the form offers: one of the programme's, not an operator channel (those see
    everything anyway)."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class ConsentCard:
    """What the card shows and offers."""

    found: privacy.Consents
    staff: dict[int, str]  # who recorded the console's and merges' acts, by staff id
    choices: list[PartnerChoice]
    can_record: bool
    nonce: str  # the record form's one-time token (a double submit records once)

    @property
    def standing(self) -> list[ConsentAct]:
        return self.found.standing

    @property
    def history(self) -> list[ConsentAct]:
        return self.found.history

    @property
    def collections(self) -> list[Collection]:
        return self.found.collections

    @property
    def partners(self) -> dict[int, privacy.PartnerRef]:
        return self.found.partners

    @property
    def purposes(self) -> dict[str, str]:
        return PURPOSES


def card(
    session: Session, member_id: int, programme: Programme, *, can_record: bool, nonce: str
) -> ConsentCard:
    """The member's consents card (``can_record``: the staff member may record acts; ``nonce``:
    the record form's one-time token)."""
    found = privacy.consents(session, member_id)
    staff = queries.staff_names(session, (act.recorded_by for act in found.history))
    choices = []
    if can_record:
        known = {ref.code for ref in privacy.partner_refs(session).values()}
        choices = [
            PartnerChoice(spec.code, spec.name)
            for spec in programme.partners
            if spec.code in known and not spec.operator_channel
        ]
    return ConsentCard(found, staff, choices, can_record and bool(choices), nonce)
