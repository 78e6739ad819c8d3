"""``tally jobs``: run a scheduled job once, for now or a moment in the past, or preview it.

Every job takes ``--as-of`` (the moment it runs for) and ``--dry-run`` (report what it would do,
with a sample, and write nothing). A moment more than :data:`CLOCK_SKEW_SECONDS` ahead of the
clock is refused unless it is a dry run: a job run ahead of time acts early for real (it would
expire points, lapse holds, downgrade members and end memberships before they are due).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import typer

from tally.auctions import jobs as auction_jobs
from tally.cli.common import emit, open_database, programme_in_force
from tally.config import get_settings
from tally.flows import coupon_allowances, mall_jobs, mall_orders, sign_ins
from tally.idempotency import service as idempotency
from tally.job_failures import repository as job_failures
from tally.job_failures.service import Failure, reported
from tally.kit.clock import as_utc, end_of_day, utcnow
from tally.ledger import jobs as ledger_jobs
from tally.ledger import reminders as ledger_reminders
from tally.ledger.posting import policy_for
from tally.memberships import jobs as membership_jobs
from tally.offers import jobs as offer_jobs
from tally.programme import runtime
from tally.tiers import jobs as tier_jobs
from tally.webhooks import repository as webhook_repository
from tally.webhooks import retention as outbox_retention
from tally.webhooks.dispatch import dispatch
from tally.webhooks.sender import Sender

jobs_app = typer.Typer(
    help="Run scheduled jobs once, for now or a past moment; --dry-run previews any moment.",
    no_args_is_help=True,
)
CLOCK_SKEW_SECONDS = 60
SAMPLE = 5

DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Report what the job would do (counts and a sample); write nothing."
    ),
]


def as_of_option(what: str) -> Any:
    """The ``--as-of`` option of a job: ``what`` the job does by that moment."""
    return typer.Option(
        "--as-of",
        help=f"{what} by this ISO-8601 date (through the end of that day in the programme's "
        "zone) or datetime (UTC if naive); default now. A moment in the future is refused "
        "unless --dry-run.",
    )


def parse_as_of(value: str | None) -> datetime:
    """``--as-of``: an ISO date (the end of that day, programme time) or datetime (UTC if naive)."""
    if value is None:
        return utcnow()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return end_of_day(day, programme_in_force().zone)
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO-8601 date or datetime: {value!r}") from exc


def job_moment(value: str | None, dry_run: bool) -> datetime:
    """The moment a job runs for; exits 2 when it is in the future and this is no dry run."""
    moment = parse_as_of(value)
    now = utcnow()
    if not dry_run and moment > now + timedelta(seconds=CLOCK_SKEW_SECONDS):
        typer.echo(
            f"error: --as-of {value} means {moment.isoformat()}, which is in the future "
            f"(now {now.isoformat()}); a job run ahead of time would act early for real. "
            "Add --dry-run to see what it would do then.",
            err=True,
        )
        raise typer.Exit(code=2)
    return moment


def failed(failures: Sequence[Failure]) -> dict[str, Any]:
    """What a run reports of the rows it could not process (nothing when there were none):
    how many, and the first few (each recorded in job_failures)."""
    return reported(failures, SAMPLE)


def _head(moment: datetime, dry_run: bool) -> dict[str, Any]:
    head: dict[str, Any] = {"as_of": moment.isoformat()}
    if dry_run:
        head["dry_run"] = True
    return head


def _holds(preview: ledger_jobs.LapsePreview) -> list[dict[str, Any]]:
    return [
        {
            "hold_id": str(hold.hold_id),
            "member_id": hold.member_id,
            "points": hold.points,
            "expires_at": as_utc(hold.expires_at).isoformat(),
        }
        for hold in preview.sample
    ]


@jobs_app.command("expire")
def expire(
    as_of: Annotated[str | None, as_of_option("Expire what is due")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Expire due points and lapse timed-out holds (idempotent; safe to re-run)."""
    moment = job_moment(as_of, dry_run)
    if dry_run:
        with open_database() as db, db.read() as session:
            found = ledger_jobs.preview_expiry(session, moment, SAMPLE)
        emit(
            {
                **_head(moment, dry_run),
                "members": found.members,
                "lots_expired": found.lots,
                "points_expired": found.points,
                "holds_lapsed": found.lapses.holds,
                "points_released": found.lapses.points,
                "sample": {
                    "lots": [
                        {"member_id": due.member_id, "lots": due.lots, "points": due.points}
                        for due in found.sample
                    ],
                    "holds": _holds(found.lapses),
                },
            }
        )
        return
    with open_database() as db:
        report = ledger_jobs.expire(db.write, moment)
    emit(
        {
            **_head(moment, dry_run),
            "members": report.members,
            "lots_expired": report.lots,
            "points_expired": report.points,
            "holds_lapsed": report.holds_lapsed,
            **failed(report.failures),
        }
    )


@jobs_app.command("lapses")
def lapses(
    as_of: Annotated[str | None, as_of_option("Lapse holds timed out")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Lapse timed-out holds only, their points going back (idempotent; safe to re-run)."""
    moment = job_moment(as_of, dry_run)
    if dry_run:
        with open_database() as db, db.read() as session:
            found = ledger_jobs.preview_lapses(session, moment, SAMPLE)
        emit(
            {
                **_head(moment, dry_run),
                "holds_lapsed": found.holds,
                "points_released": found.points,
                "sample": _holds(found),
            }
        )
        return
    with open_database() as db:
        report = ledger_jobs.lapse_holds(db.write, moment)
    emit({**_head(moment, dry_run), "holds_lapsed": report.lapsed, **failed(report.failures)})


@jobs_app.command("tiers")
def tiers(
    as_of: Annotated[str | None, as_of_option("Evaluate tiers")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Evaluate every member's tier: downgrades after grace, catch-up upgrades, tiers the
    programme no longer has (idempotent; safe to re-run or run concurrently)."""
    moment = job_moment(as_of, dry_run)
    settings = get_settings()
    with open_database(settings) as db:
        with db.read() as session:
            programme = runtime.effective(session, settings, moment)  # in force at --as-of
            version = runtime.version_in_force(session, moment)
            found = (
                tier_jobs.preview(session, moment, programme, sample=SAMPLE) if dry_run else None
            )
        if found is not None:
            emit(
                {
                    **_head(moment, dry_run),
                    "members": found.members,
                    "changes": found.changes,
                    "sample": [
                        {
                            "member_id": item.member_id,
                            "from": item.from_code,
                            "to": item.to_code,
                            "reason": item.reason,
                        }
                        for item in found.sample
                    ],
                }
            )
            return
        report = tier_jobs.evaluate(db.write, moment, programme, programme_version=version)
    emit({**_head(moment, dry_run), **report.as_dict()})


@jobs_app.command("coupons")
def coupons(
    as_of: Annotated[str | None, as_of_option("Issue the month's coupon allowances")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Issue the month's coupon allowances of the tiers and paid plans (``monthly_coupons``
    benefits naming a template): once per member, template and month (idempotent; safe to
    re-run or run concurrently)."""
    moment = job_moment(as_of, dry_run)
    settings = get_settings()
    with open_database(settings) as db:
        with db.read() as session:
            programme = runtime.effective(session, settings, moment)
            found = coupon_allowances.preview(session, moment, programme) if dry_run else None
        if found is None:
            found = coupon_allowances.issue_allowances(db.write, moment, programme)
    emit({**_head(moment, dry_run), **found.as_dict()})


@jobs_app.command("offers")
def offers(
    as_of: Annotated[str | None, as_of_option("Count redemptions")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Compute the offers' signals from members' redemptions (item similarities,
    popularity overall and per tier) and keep them (idempotent; safe to re-run or run
    concurrently)."""
    moment = job_moment(as_of, dry_run)
    settings = get_settings()
    with open_database(settings) as db:
        with db.read() as session:
            programme = runtime.effective(session, settings, moment)
            found = offer_jobs.preview(session, programme, moment) if dry_run else None
        report = found or offer_jobs.refresh(db.read, db.write, programme, moment)
    emit(
        {
            **_head(moment, dry_run),
            "pairs": report.pairs,
            "similarities": report.similarities,
            "popularity": report.popularity,
        }
    )


@jobs_app.command("memberships")
def memberships(
    as_of: Annotated[str | None, as_of_option("Expire what ended")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Expire ended memberships, abandon unpaid ones after a day (idempotent; safe to re-run)."""
    moment = job_moment(as_of, dry_run)
    if dry_run:
        with open_database() as db, db.read() as session:
            found = membership_jobs.preview(session, moment, SAMPLE)
        emit(
            {
                **_head(moment, dry_run),
                "expired": found.expired,
                "abandoned": found.abandoned,
                "sample": {
                    "expired": [str(item) for item in found.expired_sample],
                    "abandoned": [str(item) for item in found.abandoned_sample],
                },
            }
        )
        return
    with open_database() as db:
        report = membership_jobs.expire(db.write, moment)
    emit(
        {
            **_head(moment, dry_run),
            "expired": report.expired,
            "abandoned": report.abandoned,
            **failed(report.failures),
        }
    )


@jobs_app.command("idempotency")
def purge_idempotency(
    as_of: Annotated[
        str | None, as_of_option("Purge Idempotency-Key records older than the retention")
    ] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Purge Idempotency-Key records older than `TALLY_IDEMPOTENCY_RETENTION_DAYS` (default 30)
    before the moment, in bounded chunks (idempotent; safe to re-run)."""
    moment = job_moment(as_of, dry_run)
    days = get_settings().idempotency_retention_days
    before = moment - timedelta(days=days)
    with open_database() as db:
        if dry_run:
            with db.read() as session:
                found = {"records": idempotency.purgeable(session, before)}
        else:
            found = {"purged": idempotency.purge(db.write, before)}
    emit({**_head(moment, dry_run), "retention_days": days, "before": before.isoformat(), **found})


@jobs_app.command("outbox")
def purge_outbox(
    as_of: Annotated[
        str | None, as_of_option("Purge outbox events fanned out before the retention")
    ] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Purge outbox events fanned out more than `TALLY_OUTBOX_RETENTION_DAYS` (default 30)
    before the moment whose webhook deliveries are all final, with those deliveries, in bounded
    chunks (an expiry reminder is kept while it could be due again; safe to re-run)."""
    moment = job_moment(as_of, dry_run)
    days = get_settings().outbox_retention_days
    before = moment - timedelta(days=days)
    with open_database() as db:
        if dry_run:
            with db.read() as session:
                found = {"events": outbox_retention.purgeable(session, before)}
        else:
            found = {"purged": outbox_retention.purge(db.write, before)}
    emit({**_head(moment, dry_run), "retention_days": days, "before": before.isoformat(), **found})


@jobs_app.command("sign-ins")
def sweep_sign_ins(
    as_of: Annotated[
        str | None, as_of_option("Delete sessions expired and failure counts stale")
    ] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Delete expired console and member sessions and sign-in failure counts nothing remembers
    any more; locks in force are kept (idempotent; safe to re-run)."""
    moment = job_moment(as_of, dry_run)
    with open_database() as db:
        if dry_run:
            with db.read() as session:
                swept = sign_ins.preview(session, moment)
        else:
            swept = sign_ins.sweep(db.write, moment)
    emit({**_head(moment, dry_run), "sessions": swept.sessions, "throttles": swept.throttles})


@jobs_app.command("deliver")
def deliver(
    as_of: Annotated[str | None, as_of_option("Send the webhook deliveries due")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Fan out new outbox events to the webhook subscriptions and send every delivery due,
    once each (what `tally serve` does every second; safe to run beside it)."""
    from tally.scheduler import sender_options

    moment = job_moment(as_of, dry_run)
    settings = get_settings()
    with open_database() as db:
        if dry_run:
            with db.read() as session:
                waiting = webhook_repository.counts(session, moment)
            emit({**_head(moment, dry_run), **waiting})
            return
        dispatched = dispatch(db.write, moment, programme_in_force(at=moment))
        sender = Sender(
            db, settings.resolved_secret(), sender_options(settings), clock=lambda: moment
        )
        total: dict[str, Any] = {"leased": 0, "delivered": 0, "failed": 0, "given_up": 0}
        disabled: list[int] = []
        for _ in range(100):
            report = sender.run_once()
            for name in total:
                total[name] += getattr(report, name)
            disabled.extend(report.disabled)
            if not report.leased:
                break
    emit({**_head(moment, dry_run), "dispatched": dispatched, **total, "disabled": disabled})


@jobs_app.command("reminders")
def reminders(
    as_of: Annotated[str | None, as_of_option("Remind of points about to expire")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Emit a `points.expiring` event per member and expiry date at each of the programme's
    `reminders.expiry.days_before` (each once: safe to re-run and to run beside itself)."""
    moment = job_moment(as_of, dry_run)
    programme = programme_in_force(at=moment)
    days = programme.reminders.expiry.days_before
    with open_database() as db:
        if dry_run:
            with db.read() as session:
                found = ledger_reminders.preview(session, moment, programme.zone, days, SAMPLE)
            emit({**_head(moment, dry_run), "days_before": days, **found.as_dict()})
            return
        report = ledger_reminders.remind(db.write, moment, programme.zone, days)
    emit(
        {
            **_head(moment, dry_run),
            "days_before": days,
            "due": report.due,
            "emitted": report.emitted,
        }
    )


@jobs_app.command("failures")
def list_failures(
    job: Annotated[
        str | None, typer.Option("--job", help="Only this job's (expiry, lapses, tiers …).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
) -> None:
    """List the rows jobs passed over (most recently failed first): the job, the row, the
    error's code and message, how many runs met it and when. Writes nothing."""
    with open_database() as db, db.read() as session:
        rows = job_failures.recent(session, limit, job)
    emit(
        [
            {
                "job": row.job,
                "kind": row.row_kind,
                "id": row.row_id,
                "code": row.error_code,
                "error": row.message,
                "failures": row.failures,
                "first_failed_at": row.first_failed_at.isoformat(),
                "last_failed_at": row.last_failed_at.isoformat(),
            }
            for row in rows
        ]
    )


def _mall_sweep(moment: datetime, dry_run: bool, sweep: Any, pick: int, key: str) -> None:
    """Run a mall deadline sweep (or, with ``dry_run``, show a sample of what it would take)."""
    if dry_run:
        with open_database() as db, db.read() as session:
            found = mall_jobs.due(session, moment, SAMPLE)[pick]
        emit({**_head(moment, dry_run), "sample": [str(item) for item in found]})
        return
    policy = policy_for(programme_in_force(), get_settings())
    with open_database() as db:
        report = sweep(db.write, moment, policy)
    emit({**_head(moment, dry_run), key: report.done, **failed(report.failures)})


@jobs_app.command("orders")
def orders(
    as_of: Annotated[str | None, as_of_option("Lapse mall orders unpaid")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Lapse mall orders whose cash part was not paid by their deadline: points and stock back
    (idempotent; safe to re-run and to run twice at once)."""
    _mall_sweep(job_moment(as_of, dry_run), dry_run, mall_jobs.lapse_unpaid, 0, "lapsed")


@jobs_app.command("refunds")
def refunds(
    as_of: Annotated[str | None, as_of_option("Refund mall orders not shipped")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Refund in full the mall orders not shipped within their item's ship_within of payment
    (the 48-hour rule; idempotent; exactly once even with two workers)."""
    _mall_sweep(job_moment(as_of, dry_run), dry_run, mall_jobs.refund_late, 1, "refunded")


@jobs_app.command("auctions")
def close_auctions(
    as_of: Annotated[str | None, as_of_option("Close the auctions that ended")] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Close auctions whose end has passed: the winner pays the price (its hold captured, the
    rest released), every other hold is released, bidders are told (each auction once: safe to
    re-run and to run beside itself)."""
    moment = job_moment(as_of, dry_run)
    with open_database() as db:
        if dry_run:
            with db.read() as session:
                found = auction_jobs.preview(session, moment, SAMPLE)
            emit(
                {
                    **_head(moment, dry_run),
                    "due": found.due,
                    "sample": [str(item) for item in found.sample],
                }
            )
            return
        policy = policy_for(programme_in_force(at=moment), get_settings())
        report = auction_jobs.close_due(db.write, moment, policy, on_sold=mall_orders.place_won)
    emit(
        {
            **_head(moment, dry_run),
            "sold": report.sold,
            "unsold": report.unsold,
            **failed(report.failures),
        }
    )
