"""Rolling back = deploying an earlier good image again (`fly deploy --image <ImageRef>`), then health-gating it.

flyctl has no `releases rollback`; the image references come from `fly releases --image --json`.
The release that runs is what the machines run (`fly status --json`), so after a failed rolling deploy
the failed release is live and every earlier healthy one can be reached. A release is "good"
(offered as a target) when Fly says `complete` and our health gate did not fail it (journal).

Rolling the code back does not roll the database back. Before deploying an old image, the target
release's recorded migrations (journal: `built`/`deployed`/`rollback` records, see migrations.py) are
compared with what the database has applied (our release module's status/0 through `fly ssh console`):
- the database is not ahead of the target → go;
- the database is ahead → refuse, naming the way out (`inv db.rollback --to <target's newest>`, which
  backs up first, then the rollback), or `--force` with the risk stated, printed and journaled;
- no record of the target's migrations, or the database cannot be read → refuse unless `--force`
  (we do not guess).
The automatic rollback of `deploy.full` uses the same check and never forces: when a failed deploy's
release command has already migrated past the previous release, it leaves the app where it is and
prints the same way out instead of silently running old code on a newer schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bezgelor_tasks import migrations
from bezgelor_tasks.deploy import machines
from bezgelor_tasks.deploy.fly_lock import FlyLock
from bezgelor_tasks.deploy.state import ensure_state_dir
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import commands
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.fly.records import AppStatus, Release
from bezgelor_tasks.health import HealthReport, health_gate
from bezgelor_tasks.journal import Journal, deploys_by_version, read_entries
from bezgelor_tasks.lock import DeployLock
from bezgelor_tasks.migrations import Safety
from bezgelor_tasks.processes import cleanup_after_interrupt
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI, confirm


def gate_verdicts(entries: Iterable[dict[str, Any]], app: str) -> dict[int, bool]:
    """Our health gate's verdict per Fly release version, from the journal (a cache: a release deployed
    from elsewhere has none, and then Fly's own status decides)."""
    found: dict[int, bool] = {}
    for e in entries:
        if e.get("app") != app or not isinstance(e.get("release_version"), int):
            continue
        if e.get("event") == "deploy-end" and isinstance(e.get("ok"), bool) and \
                (e["ok"] or e.get("step") == "health"):
            found[int(e["release_version"])] = bool(e["ok"])
        elif e.get("event") == "rollback" and isinstance(e.get("healthy"), bool):
            found[int(e["release_version"])] = bool(e["healthy"])
    return found


def health_of(release: Release, verdicts: Mapping[int, bool]) -> str:
    """healthy | unhealthy: <why> | unknown: <why> - Fly's status and our gate's verdict together."""
    gate = verdicts.get(release.version) if release.version is not None else None
    if release.status.lower() != "complete" or not release.image_ref:
        return f"unhealthy: Fly {release.status or 'unknown'}" + (", gate failed" if gate is False else "")
    if gate is False:
        return "unhealthy: Fly complete, our health gate failed"
    if gate is True:
        return "healthy"
    return "healthy (Fly complete; not gated by this tool)"


def is_healthy(release: Release, verdicts: Mapping[int, bool]) -> bool:
    return health_of(release, verdicts).startswith("healthy")


def good(releases: list[Release], verdicts: Mapping[int, bool] | None = None) -> list[Release]:
    """Healthy releases (Fly: complete with an image; our gate did not fail them), newest first."""
    found = [r for r in releases if is_healthy(r, verdicts or {})]
    return sorted(found, key=lambda r: r.version or 0, reverse=True)


def live(status: AppStatus, releases: list[Release]) -> Release | None:
    """The release the machines run (their image and `fly_release_version`), not the newest complete one.

    A rolling deploy that failed leaves the machines on the failed release: that one is live."""
    machine = machines.serving(status)
    if machine is None:
        return None
    by_version = next((r for r in releases if machine.release_version is not None
                       and r.version == machine.release_version), None)
    if by_version is not None:
        return by_version
    by_image = sorted((r for r in releases if r.image_ref == machine.image_ref), key=lambda r: -(r.version or 0))
    if by_image:
        return by_image[0]
    return Release(version=machine.release_version, status="unknown", image_ref=machine.image_ref, created_at="",
                   stable=False, description="what the machines run")


def choose_target(releases: list[Release], *, version: int | None = None, avoid_image: str | None = None,
                  app: str = "", running: Release | None = None,
                  verdicts: Mapping[int, bool] | None = None) -> Release:
    """The release to go back to: `version` if given (must be healthy), else the newest healthy release
    whose image differs from `avoid_image` (default: the image the machines run, `running`)."""
    verdicts = verdicts or {}
    if version is not None:
        match = next((r for r in releases if r.version == version), None)
        if match is None:
            known = ", ".join(f"v{r.version}" for r in releases[:10]) or "none"
            raise UserError(f"{app} has no release v{version} among its 25 newest (known: {known}).",
                            fix="pick a version from `inv rollback.list`.")
        if match.status.lower() != "complete" or not match.image_ref:
            raise UserError(f"Release v{version} of {app} has status {match.status or 'unknown'}, not complete: "
                            "its image never ran healthy.",
                            fix="pick a release whose status is complete (`inv rollback.list`).")
        if not is_healthy(match, verdicts):
            offered = ", ".join(f"v{r.version}" for r in good(releases, verdicts)[:5]) or "none"
            raise UserError(f"Release v{version} of {app} is {health_of(match, verdicts)}: rolling back to it "
                            "brings back a release that was not healthy.",
                            fix=f"pick a healthy release from `inv rollback.list` (healthy: {offered}).")
        return match
    avoid = avoid_image if avoid_image is not None else (running.image_ref if running else "")
    for r in good(releases, verdicts):
        if r.image_ref != avoid:
            return r
    raise UserError(f"{app} has no earlier good release to roll back to (no healthy release with another image).",
                    fix="fix forward: correct the problem and run `inv deploy.full` again.")


# --- the migration check --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DatabaseState:
    """The database's applied migrations, or why they could not be read."""

    applied: tuple[str, ...] | None
    error: str = ""

    @property
    def current(self) -> str | None:
        return migrations.newest(self.applied or ())


def read_database(fly: FlyClient, app: str) -> DatabaseState:
    """What the database has applied: our release module's status/0 in the running release (`<Db>.Release`)."""
    try:
        status = fly.migration_status(app)
    except UserError as e:
        return DatabaseState(None, e.message)
    return DatabaseState(tuple(migrations.applied_versions(status)))


@dataclass(frozen=True)
class MigrationCheck:
    target: Release
    record: migrations.ReleaseMigrations | None
    database: DatabaseState
    safety: Safety

    @property
    def target_newest(self) -> str | None:
        return self.record.newest if self.record else None

    def as_json(self) -> dict[str, Any]:
        return {"to_release": self.target.version, "recorded": self.record is not None,
                "target_newest": self.target_newest, "target_migrations": list(self.record.versions)
                if self.record else None, "database_current": self.database.current,
                "database_error": self.database.error or None, **self.safety.as_json()}

    def refusal(self, app: str) -> UserError:
        """The error that stops a rollback: what is wrong, then the exact commands out of it."""
        return UserError(f"Refusing to roll {app} back to release v{self.target.version} "
                         f"({self.target.image_ref}). {self.safety.reason}",
                         fix="; ".join(self.safety.way_out) + ".")


def migration_records(settings: Settings, journal: Journal | None = None) -> migrations.MigrationRecords:
    """Which migrations each release's code holds: the journal's records (a cache), else the migrations folder
    at the git version the release's image is tagged with (so a fresh CI runner knows them too)."""
    entries = journal.entries() if journal is not None else read_entries(settings.state_dir / "journal.jsonl")
    records = migrations.read_records(entries, settings.app)
    quiet = Executor(echo=False)  # `git ls-tree`: reads only
    records.from_git = lambda version, image_ref: migrations.record_from_git(settings, quiet, version, image_ref)
    return records


def check_migrations(settings: Settings, target: Release, records: migrations.MigrationRecords,
                     database: DatabaseState) -> MigrationCheck:
    """Is deploying `target`'s image safe for the database as it is now? (see the module docstring)"""
    record = records.find(target.version, target.image_ref)
    if database.applied is None:
        rollback_cmd = f"inv rollback.app --version {target.version}"
        safety = Safety(None, f"The database's migrations could not be read ({database.error.rstrip('.')}), so "
                              f"whether release v{target.version}'s code matches the database is unknown.",
                        [f"check `inv db.status` and retry `{rollback_cmd}`",
                         f"or `{rollback_cmd} --force` if you know the schema matches"])
    else:
        safety = migrations.assess(record.newest if record else None, database.current, database.applied,
                                   target_version=target.version, target_recorded=record is not None)
    return MigrationCheck(target, record, database, safety)


class RollbackUnhealthy(UserError):
    """The earlier image was deployed again (the rollback happened), but it is not healthy either."""

    def __init__(self, message: str, *, fix: str, result: RollbackResult) -> None:
        super().__init__(message, fix=fix)
        self.result = result


@dataclass
class RollbackResult:
    target: Release
    release_version: int | None
    health: HealthReport
    check: MigrationCheck | None = None
    forced: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"to_release": self.target.version, "image_ref": self.target.image_ref,
                "release_version": self.release_version, "health": self.health.as_json(),
                "migration_check": self.check.as_json() if self.check else None, "forced": self.forced}


def public_ipv4(fly: FlyClient, app: str) -> str:
    return next((ip.address for ip in fly.ips(app) if ip.is_dedicated_v4 and ip.address), "")


def roll_back(settings: Settings, fly: FlyClient, ui: UI, journal: Journal | None, target: Release, *,
              reason: str, ipv4: str | None = None, check: MigrationCheck | None = None,
              forced: bool = False) -> RollbackResult:
    """Deploy `target`'s image, health-gate it; raise when the old image is not healthy either.

    The caller has run `check_migrations` (and refused, unless forced); `check` and `forced` are
    journaled with the rollback, and the target's migration record is carried over to the new release.
    """
    ui.warn(f"rolling {settings.app} back to release v{target.version} ({target.image_ref}): {reason}")
    if journal is not None and forced and check is not None:
        # Written before the deploy, so the decision is on record even if the rollback itself fails.
        journal.record("rollback-forced", app=settings.app, to_release=target.version, image_ref=target.image_ref,
                       migration_check=check.as_json())
    emitted = fly.deploy_image(target.image_ref, f"rollback-v{target.version}")
    address = ipv4 if ipv4 is not None else public_ipv4(fly, settings.app)
    report = health_gate(settings, ui, address)
    result = RollbackResult(target, emitted.version if emitted else None, report, check, forced)
    if journal is not None:
        carried: dict[str, Any] = {}
        if check is not None and check.record is not None:
            carried = {"migrations": list(check.record.versions), "newest_migration": check.record.newest,
                       "git_version": check.record.git_version}
        journal.record("rollback", app=settings.app, to_release=target.version, image_ref=target.image_ref,
                       release_version=result.release_version, healthy=report.ok, reason=reason, forced=forced,
                       migration_check=check.as_json() if check else None, **carried)
    if not report.ok:
        for line in report.lines():
            ui.line(f"  {line}")
        raise RollbackUnhealthy(f"Rolled {settings.app} back to release v{target.version} ({target.image_ref}), but "
                                f"it is {report.summary()} either.",
                                fix=f"the problem is likely outside the image (database, secrets): read `inv logs` "
                                    f"and `inv deploy.status` (`fly logs -a {settings.app}`).", result=result)
    return result


def release_rows(settings: Settings, fly: FlyClient,
                 releases: list[Release]) -> tuple[list[dict[str, Any]], DatabaseState]:
    """`rollback.list`'s rows (each release with its git version, health, newest migration and safe-now
    verdict), and the database state they were judged against. "current" is what the machines run."""
    s = settings
    running = live(fly.status(s.app), releases) if releases else None
    journal_path = s.state_dir / "journal.jsonl"
    deployed = deploys_by_version(journal_path)
    verdicts = gate_verdicts(read_entries(journal_path), s.app)
    records = migration_records(s)
    database = read_database(fly, s.app) if releases else DatabaseState(())
    rows: list[dict[str, Any]] = []
    for r in releases:
        is_current = running is not None and r.version == running.version
        check = check_migrations(s, r, records, database)
        health = health_of(r, verdicts)
        rows.append({"version": r.version, "status": r.status, "image_ref": r.image_ref, "created_at": r.created_at,
                     "git_version": deployed.get(str(r.version), {}).get("version")
                     or (check.record.git_version if check.record else None) or None,
                     "current": is_current, "health": health,
                     "gate": _gate_word(verdicts.get(r.version) if r.version is not None else None),
                     "offered": not is_current and health.startswith("healthy"),
                     "newest_migration": check.target_newest,
                     "migrations_recorded": check.record is not None,
                     "safe_now": safe_now(r, is_current, check, health), "migration_check": check.as_json()})
    return rows, database


def _gate_word(verdict: bool | None) -> str | None:
    return None if verdict is None else ("passed" if verdict else "failed")


def safe_now(release: Release, is_current: bool, check: MigrationCheck, health: str = "") -> str:
    """One short verdict per release: yes / no: <why> / unknown: <why>."""
    if is_current:
        return "running now"
    if release.status.lower() != "complete" or not release.image_ref:
        return f"no: {release.status or 'unknown'} release"
    if health.startswith("unhealthy"):
        return "no: failed our health gate"
    if check.safety.safe is True:
        return "yes"
    if check.safety.safe is False:
        return f"no: db ahead ({', '.join(check.safety.ahead)})"
    return "unknown: no record" if check.record is None else "unknown: db unreadable"


@contextmanager
def _holding(shared: FlyLock, purpose: str, ui: UI) -> Iterator[None]:
    """Hold the lock kept on Fly for the block, and free it on every exit (Ctrl-C included)."""
    shared.acquire(purpose, message=purpose)
    try:
        yield
    finally:
        try:
            with cleanup_after_interrupt():
                shared.release()
        except UserError as e:
            ui.warn(f"could not free the deploy lock on Fly ({e.message}); `inv lock.release` frees it.")


@dataclass(frozen=True)
class RollbackPlan:
    """What `rollback.app` would do, judged before anything changes: the target and the migration check."""

    target: Release
    check: MigrationCheck
    forced: bool


def plan_rollback(settings: Settings, fly: FlyClient, ui: UI, journal: Journal, wanted: int | None, *,
                  force: bool) -> RollbackPlan:
    """Pick the target and check the migrations, reading only: nothing to roll back to, a release that was not
    healthy or a database ahead of the target is refused here, before any lock is taken (a dry run too)."""
    s = settings
    releases = fly.releases(s.app)
    app_status = fly.status(s.app)
    running = live(app_status, releases)  # what the machines run, even a failed release
    target = choose_target(releases, version=wanted, app=s.app, running=running,
                           verdicts=gate_verdicts(journal.entries(), s.app))
    serving = machines.serving(app_status)
    if serving is not None and wanted is not None and target.image_ref == serving.image_ref \
            and serving.checks_passing:
        raise UserError(f"Release v{wanted} runs the image {target.image_ref}, which the machines already run "
                        "with passing checks.", fix="pick another release from `inv rollback.list`.")
    check = check_migrations(s, target, migration_records(s, journal), read_database(fly, s.app))
    forced = check.safety.safe is not True
    if forced and not force:
        journal.record("rollback-refused", app=s.app, to_release=target.version, image_ref=target.image_ref,
                       migration_check=check.as_json())
        raise check.refusal(s.app)
    if forced:
        ui.warn(f"--force: {check.safety.reason} Rolling back anyway, at your risk.")
    else:
        ui.info(f"migrations: {check.safety.reason}")
    ui.info(f"will deploy {target.image_ref} (release v{target.version}) to {s.app}; database migrations "
            "are not undone (`inv db.rollback` does that)")
    return RollbackPlan(target, check, forced)


def rollback_app(settings: Settings, fly: FlyClient, ui: UI, plan: RollbackPlan, *, yes: bool) -> RollbackResult | None:
    """`rollback.app` after `plan_rollback`: confirm, then under the deploy locks (this checkout's and the one
    on Fly) redeploy the target's image and health-gate it. Under a dry run: show the deploy, change nothing
    (None)."""
    s, executor = settings, fly.executor
    if executor.dry_run:
        executor.run(commands.deploy(s, f"rollback-v{plan.target.version}", image=plan.target.image_ref))
        ui.info("dry run: nothing was rolled back (a real run takes the deploy lock, deploys this image and "
                "health-gates it).")
        return None
    if not yes and not confirm("Roll back?", no_terminal=UserError(
            "rollback.app needs a confirmation and there is no terminal to ask on; nothing was changed.",
            fix="pass --yes (or --dry-run to see what it would do).")):
        raise UserError("Stopped before changing anything.", fix="run again and answer y, or pass --yes.")
    ensure_state_dir(s, executor)
    log = Journal(s.state_dir, executor)
    shared = FlyLock(fly, s.app)
    with DeployLock(s.state_dir, s.app, executor).held("rollback"), _holding(shared, "rollback", ui):
        reason = "inv rollback.app --force" if plan.forced else "inv rollback.app"
        return roll_back(s, fly, ui, log, plan.target, reason=reason, check=plan.check, forced=plan.forced)
