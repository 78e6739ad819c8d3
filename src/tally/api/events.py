"""The events API: ``POST /v1/events`` (one event, or ``?dry_run=true``), its batch, and the
stored outcome of an event (``GET /v1/events/{id}``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.access import domain as access
from tally.access.domain import Caller
from tally.api.deps import Mutation, Reader, clock_now, mutation, policy, programme, reader
from tally.api.event_schemas import (
    AppliedRule,
    EventBatchOutcome,
    EventBatchRequest,
    EventFailure,
    EventOutcome,
    EventRequest,
    SkippedRule,
)
from tally.api.fastlane import lane
from tally.api.paths import EventId
from tally.errors import NotFound, TallyError, ValidationFailed
from tally.events import repository as events
from tally.events.models import StoredEvent
from tally.flows import event_intake
from tally.flows.event_intake import Processed, Reported
from tally.ledger.domain import Origin
from tally.members import service as members
from tally.partners.domain import Scope
from tally.programme.domain import Programme
from tally.programme.runtime import ProgrammeCache
from tally.rules import engine
from tally.writer.events import EventReport, Result
from tally.writer.kinds import Context

router = APIRouter(prefix="/v1/events", tags=["events"])


def member_of(session: Session, caller: Caller, programme: Programme, body: EventRequest) -> int:
    """The member an event names: by id, or by an identity in a namespace the caller may use."""
    if (body.member_id is None) == (body.member is None):
        raise ValidationFailed("Give either member_id or member.", field="member_id")
    if body.member is not None:
        access.require_namespace(caller, programme, body.member.namespace)
        return members.lookup(session, body.member.namespace, body.member.id)
    assert body.member_id is not None
    return body.member_id


def reported(programme: Programme, body: EventRequest, member_id: int) -> Reported:
    """The event a request reports, for the member ``member_id``."""
    amount = body.amount
    items = tuple(
        engine.Item(
            sku=item.sku,
            amount=Decimal(item.amount),
            quantity=item.quantity,
            name=item.name,
            category=item.category,
            labels=tuple(item.labels),
        )
        for item in body.items
    )
    return Reported(
        type=body.type,
        event_id=body.event_id,
        member_id=member_id,
        occurred_at=body.occurred_at,
        amount=None if amount is None else Decimal(amount.value),
        currency=None if amount is None else amount.currency,
        items=items,
        channel=body.channel,
        attributes=event_intake.typed_attributes(
            event_intake.book_for(programme), body.type, body.attributes
        ),
        refers_to=body.refers_to,
        payload=body.model_dump(mode="json", include={"items", "attributes", "amount"}),
    )


def outcome_of(processed: Processed) -> EventOutcome:
    """The answer document of a processed event."""
    document = processed.outcome
    return EventOutcome(
        id=None if processed.stored_id is None else str(processed.stored_id),
        event_id=processed.event.event_id,
        type=processed.event.type,
        member_id=processed.member_id,
        occurred_at=processed.event.occurred_at,
        status="duplicate"
        if processed.repeat
        else ("dry_run" if processed.stored_id is None else "processed"),
        points=processed.points,
        growth=processed.growth,
        transaction_id=None if processed.transaction_id is None else str(processed.transaction_id),
        programme_version=processed.programme_version,
        rules=[AppliedRule.model_validate(rule) for rule in _applied(document)],
        skipped=[SkippedRule.model_validate(rule) for rule in document["skipped"]],
        refund_of=document.get("refund_of"),
    )


def _applied(document: dict[str, object]) -> list[dict[str, object]]:
    rules = document["rules"]
    assert isinstance(rules, list)
    return [
        {key: rule.get(key) for key in ("campaign", "rule", "points", "growth", "variant")}
        for rule in rules
    ]


def _failure(event: Reported | None, error: TallyError) -> EventFailure:
    return EventFailure(
        event_id=None if event is None else event.event_id,
        status=error.status,
        code=error.code,
        detail=error.detail,
    )


def answer(write: EventReport, results: Sequence[Result], context: Context) -> tuple[int, str]:
    """201 with a new event's outcome, 200 with a repeat's (the first outcome); a batch: 200
    with one result per event, in order."""
    if not write.batch:
        processed = results[0]
        assert isinstance(processed, Processed)
        return (200 if processed.repeat else 201), outcome_of(processed).model_dump_json()
    return 200, _batch_document(write.events, results).model_dump_json()


def _batch_document(
    events_sent: tuple[Reported, ...], results: Sequence[Result]
) -> EventBatchOutcome:
    documents: list[EventOutcome | EventFailure] = []
    for event, result in zip(events_sent, results, strict=True):
        if isinstance(result, Processed):
            documents.append(outcome_of(result))
        elif isinstance(result, TallyError):
            documents.append(_failure(event, result))
        else:
            raise AssertionError(f"an event of a batch is answered, not {result!r}")
    return EventBatchOutcome(results=documents)


@router.post(
    "",
    response_model=EventOutcome,
    status_code=201,
    responses={200: {"model": EventOutcome, "description": "A repeat, or a dry run."}},
)
async def report_event(
    payload: EventRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.EVENTS))],
    dry_run: Annotated[
        bool, Query(description="Evaluate the rules and answer the outcome; write nothing.")
    ] = False,
) -> Response:
    """Report one event: the programme's rules turn it into points and growth, explained rule
    by rule. The same `event_id` again answers the first outcome (200) and writes nothing."""
    if dry_run:
        return await _dry_run(write, [payload], batch=False)
    return await write.post(EventReport(await _reported_in_read(write, [payload])))


@router.post("/batch", response_model=EventBatchOutcome, status_code=200)
async def report_events(
    payload: EventBatchRequest,
    write: Annotated[Mutation, Depends(mutation(Scope.EVENTS))],
    dry_run: Annotated[bool, Query(description="Evaluate and answer; write nothing.")] = False,
) -> Response:
    """Report up to 1,000 events: one result per event, in order, each event processed or
    refused on its own (a refusal is a problem's `status`, `code` and `detail`)."""
    if dry_run:
        return await _dry_run(write, payload.events, batch=True)
    return await write.post(EventReport(await _reported_in_read(write, payload.events), batch=True))


def _named_by_id(request: Request, bodies: Sequence[EventRequest]) -> tuple[Reported, ...] | None:
    """The events the bodies report when every one names its member by id and the programme
    in force is known without a query, which needs no read (the write checks the key and the
    member as it does any write's); ``None`` otherwise."""
    named = [body.member_id for body in bodies if body.member is None and body.member_id]
    if len(named) != len(bodies):
        return None
    cache: ProgrammeCache = request.app.state.programme
    current = cache.fresh
    if current is None:
        return None
    return tuple(
        reported(current, body, member_id) for body, member_id in zip(bodies, named, strict=True)
    )


def _event_lane(request: Request, _parameter: None, payload: EventRequest) -> EventReport | None:
    """The write of an ordinary event for the fast lane: one naming its member by id."""
    found = _named_by_id(request, [payload])
    return None if found is None else EventReport(found)


# Ordinary events skip FastAPI's routing and dependency solving (tally.api.fastlane).
LANES = (lane("/v1/events", EventRequest, Scope.EVENTS, _event_lane),)


async def _reported_in_read(write: Mutation, bodies: list[EventRequest]) -> tuple[Reported, ...]:
    """The events the bodies report, their members found in a read with the caller's key
    (none when every body names its member by id)."""
    named = _named_by_id(write.request, bodies)
    if named is not None:
        return named
    read = Reader(request=write.request, token=write.token, scope=Scope.EVENTS)

    def work(session: Session, caller: Caller) -> tuple[Reported, ...]:
        found = programme(write.request, session)
        return tuple(
            reported(found, body, member_of(session, caller, found, body)) for body in bodies
        )

    return await read.run(work)


async def _dry_run(write: Mutation, bodies: list[EventRequest], *, batch: bool) -> Response:
    read = Reader(request=write.request, token=write.token, scope=Scope.EVENTS)

    def work(session: Session, caller: Caller) -> str:
        found = programme(write.request, session)
        sent = tuple(
            reported(found, body, member_of(session, caller, found, body)) for body in bodies
        )
        results = event_intake.process(
            session,
            Origin(partner_id=caller.partner_id),
            sent,
            clock_now(write.request),
            policy(write.request),
            found,
            event_intake.book_for(found),
            write=False,
        )
        if not batch:
            result = event_intake.with_repeats(sent, results)[0]
            if isinstance(result, TallyError):
                raise result
            assert isinstance(result, Processed)
            return outcome_of(result).model_dump_json()
        return _batch_document(sent, event_intake.with_repeats(sent, results)).model_dump_json()

    body = await read.run(work)
    return Response(body.encode(), status_code=200, media_type="application/json")


@router.get("/{event_id:id}", response_model=EventOutcome)
async def get_event(
    event_id: EventId,
    read: Annotated[Reader, Depends(reader(Scope.EVENTS))],
) -> EventOutcome:
    """A stored event's outcome: the rules that applied, those skipped and why. A partner
    reads the events it reported; the operator's channels read every event."""

    def work(session: Session, caller: Caller) -> EventOutcome:
        stored = uuid.UUID(event_id)
        row = events.by_ids(session, [stored]).get(stored)
        if row is None or not (row.partner_id == caller.partner_id or caller.is_operator_channel):
            raise NotFound(f"Event {event_id} does not exist.")
        return outcome_of(_processed(row))

    return await read.run(work)


def _processed(row: StoredEvent) -> Processed:
    return Processed(
        row.id,
        Reported(row.type, row.event_id, row.member_id, row.occurred_at, refers_to=row.refers_to),
        row.member_id,
        row.points,
        row.growth,
        row.outcome,
        row.programme_version,
        row.transaction_id,
    )
