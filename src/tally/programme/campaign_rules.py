"""The programme's campaigns as the engine's rule book, compiled once per version.

book = rule_book(programme)   # keep it with the version; evaluate events against it
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tally.programme.campaigns import Award, Campaign
from tally.programme.domain import Programme
from tally.rules import rule_book as book
from tally.rules.conditions import FieldType

FIELD_TYPES = {
    "int": FieldType.INT,
    "decimal": FieldType.DECIMAL,
    "string": FieldType.STRING,
    "bool": FieldType.BOOL,
    "list": FieldType.STRING_LIST,
}
MEASURE_TYPES = {"count": FieldType.INT, "sum_amount": FieldType.DECIMAL}


def attribute_types(programme: Programme) -> dict[str, dict[str, FieldType]]:
    """The attributes of each event type, by type code: those Tally gives the types it
    raises, and the declared ones."""
    found = {code: dict(fields) for code, fields in book.BUILT_IN_ATTRIBUTES.items()}
    for spec in programme.event_types:
        declared = {name: FIELD_TYPES[kind] for name, kind in spec.attributes.items()}
        found[spec.code] = {**found.get(spec.code, {}), **declared}
    return found


def aggregate_types(programme: Programme) -> dict[str, FieldType]:
    return {spec.code: MEASURE_TYPES[spec.measure] for spec in programme.aggregates}


def award_of(award: Award) -> book.Award:
    """The engine's award for the file's."""
    if award.points_per is not None:
        return book.PointsPer(Decimal(award.points_per.amount), award.points_per.points)
    if award.points is not None:
        return book.FixedPoints(award.points)
    if award.multiply is not None:
        return book.Multiply(None if award.multiply == "tier" else Decimal(award.multiply))
    if award.growth_per is not None:
        return book.GrowthPer(Decimal(award.growth_per.amount), award.growth_per.growth)
    if award.growth is not None:
        return book.FixedGrowth(award.growth)
    if award.coupon is not None:
        return book.Coupon(award.coupon)
    assert award.badge is not None
    return book.Badge(award.badge)


def campaign_spec(campaign: Campaign) -> book.CampaignSpec:
    schedule = campaign.schedule
    starts: date | None = schedule.from_ if schedule else None
    ends: date | None = schedule.until if schedule else None
    return book.CampaignSpec(
        code=campaign.code,
        on=tuple(campaign.on),
        rules=tuple(
            book.RuleSpec(
                rule.code, award_of(rule.award), rule.priority, rule.when, rule.items, rule.stop
            )
            for rule in campaign.rules
        ),
        starts=starts,
        ends=ends,
        caps=tuple(
            book.Cap(
                book.CapPer(cap.per),
                cap.points,
                book.Period(cap.period) if cap.period else None,
                cap.times,
            )
            for cap in campaign.caps
        ),
        budget=campaign.budget.points if campaign.budget else None,
        variants=tuple(
            book.Variant(
                variant.code,
                variant.weight,
                {code: award_of(o.award) for code, o in variant.rules_override.items()},
            )
            for variant in campaign.variants
        ),
        holdout_bp=campaign.holdout_bp,
    )


def rule_book(programme: Programme) -> book.RuleBook:
    """The compiled rule book of a programme that validated."""
    return book.compile_book(
        [campaign_spec(campaign) for campaign in programme.campaigns],
        programme.zone,
        attribute_types(programme),
        aggregate_types(programme),
    )
