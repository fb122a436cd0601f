"""docs/fly-*.md for the checkout: how to deploy, back up and roll back, written from Settings.

Every `fly ...` line here is a command real flyctl accepts (a test checks each against flyctl's
grammar); placeholders are written <LikeThis>. The everyday path is our tasks (`inv deploy.full`,
`inv db.backup`, ...); the raw flyctl commands are there for when you need to see or do it by hand.
"""

from __future__ import annotations

from bezgelor_tasks.areas.fly_toml_spec import check_grace_period_s
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.files import FileChange, generated_change
from bezgelor_tasks.settings import Settings

DEPLOYMENT = "docs/fly-deployment.md"
BACKUP = "docs/fly-backup-strategy.md"
ROLLBACK = "docs/fly-rollback.md"

_GENERATED_NOTE = ("*Written by bezgelor-tasks (`inv init`) from your BEZGELOR_* settings. Edit it freely; "
                   "`inv init` then asks before replacing it.*")


def _ports_table(s: Settings) -> str:
    rows = [f"| Portal (Phoenix) | 443 (HTTPS), 80 → 443 | {s.portal_port} | HTTP, TLS at Fly's edge |"]
    for name, port in s.ports.game().items():
        rows.append(f"| {name.capitalize()} server | {port} | {port} | raw TCP (dedicated IPv4) |")
    return "| Service | Public port | Internal port | Protocol |\n|---|---|---|---|\n" + "\n".join(rows)


def _memory(mb: int) -> str:
    return f"{mb // 1024} GB" if mb % 1024 == 0 else f"{mb} MB"


def deployment_md(s: Settings) -> str:
    app, db, org, region = s.app, s.db_app, s.org, s.region
    grace = check_grace_period_s(s)
    pg_create = (f"fly postgres create --name {db} --region {region} --org {org} "
                 f"--initial-cluster-size {s.pg_cluster_size} --vm-size {s.pg_vm_size} "
                 f"--vm-memory {s.pg_vm_memory_mb} --volume-size {s.pg_volume_gb}")
    return f"""\
# Deploying Bezgelor to Fly.io

{_GENERATED_NOTE}

One Fly app, `{app}`, runs the whole server on one machine ({s.vm_cpus} {s.vm_cpu_kind} CPUs,
{_memory(s.vm_memory_mb)}): the Phoenix portal and the auth, realm and world game servers. A Fly
Postgres app, `{db}`, holds the database. Both live in the organization `{org}`, region `{region}`.

{_ports_table(s)}

## The short way

```bash
pip install bezgelor-tasks        # or: pip install -e <path to bezgelor-tasks>
fly auth login
inv init                          # writes Dockerfile, fly.toml, release config, these docs
inv verify                        # offline checks: config, Dockerfile, fly.toml, scripts
inv plan.size                     # what the machines will cost per month
inv secrets.set SECRET_KEY_BASE   # asks for the value (never in argv or shell history)
inv secrets.set CLOAK_KEY
inv deploy.full                   # everything below, resumable, with a health gate and rollback
```

`inv deploy.full --dry-run` prints every command it would run. It is safe to run again after a failure:
steps that are already done (the app exists, the IPv4 is allocated, ...) are recognised and skipped.
In CI, `.github/workflows/bezgelor-fly.yml` runs `inv verify` on every push and `inv deploy.full --yes`
on version tags (`v*`), authenticated by the repository secret `FLY_API_TOKEN`.

Settings (app names, region, ports, VM size) come from the environment or `.env`; `.env.example`
lists them all. Change them there, then run `inv init` again so the Dockerfile and fly.toml follow.

## What deploy.full does, by hand

Every command takes `-a` explicitly, and needs no terminal (flyctl cannot prompt in a pipe or in CI).

### 1. Create the app and the database

```bash
fly apps create {app} -o {org}
{pg_create}
fly postgres attach {db} -a {app} --yes
```

`fly postgres create` prints the database password: treat its output as a secret. `attach` sets
`DATABASE_URL` on `{app}` (staged: it takes effect at the next deploy).

### 2. Allocate a dedicated IPv4

```bash
fly ips allocate-v4 -a {app} --yes
fly ips list -a {app}
```

The game ports are raw TCP. A shared IPv4 routes by domain name, so it can serve only HTTP and TLS:
the auth, realm and world servers need a **dedicated** IPv4 (billed monthly). flyctl's plain
`ips allocate` is interactive and fails in scripts. The address is also the game's
`WORLD_PUBLIC_ADDRESS`: the world server tells clients to connect to it.

### 3. Set the secrets (before the first deploy)

The release refuses to boot without `SECRET_KEY_BASE`, `CLOAK_KEY`, `DATABASE_URL` and
`WORLD_PUBLIC_ADDRESS`. `inv secrets.set NAME` reads the value without echoing it and sends it on
stdin; by hand, put `NAME=VALUE` lines in a file outside the repository and import it:

```bash
fly secrets import -a {app} --stage < bezgelor-secrets.env
fly secrets list -a {app}
```

Never pass a value as an argument (`secrets set NAME=value`): it lands in your shell history and the process list.
Generate the values locally: `mix phx.gen.secret` for `SECRET_KEY_BASE`, and
`elixir -e ':crypto.strong_rand_bytes(32) |> Base.encode64() |> IO.puts()'` for `CLOAK_KEY`.

### 4. Deploy

```bash
fly deploy -a {app} --remote-only --build-arg APP_VERSION=<Version> --wait-timeout {s.deploy_wait_timeout_s}s
```

Before the new machine starts, Fly runs `/app/bin/migrate` in a temporary machine (the
`release_command` in fly.toml). If migrations fail the deploy stops and the old release keeps running.
`fly deploy` then waits for the machine's checks. Fly caps a check's grace period at 60 s (fly.toml
asks for {grace} s); game data may take longer to load, which is why `--wait-timeout` is
{s.deploy_wait_timeout_s} s and why `inv deploy.full` runs its own health gate afterwards: `/health`
must say every service is up and every public game port must accept a TCP connection, within
{s.health_timeout_s} s, or it rolls back to the last healthy image (see fly-rollback.md).

### 5. Check it

```bash
fly status -a {app}
fly logs -a {app} --no-tail
curl -fsS {s.public_health_url}
```

## Things to know

- **Idle TCP connections close after 60 seconds.** Fly's proxy closes any connection that has
  carried no data for 60 s, on every service. Game clients (or the servers) must send a keep-alive
  more often than that, or idle players are disconnected.
- **The machine never auto-stops.** Every service in fly.toml has `auto_stop_machines = "off"`:
  the four services share one machine, so stopping it while the portal is idle would stop the game
  servers too, and game clients cannot wake a stopped machine.
- **Health checks and HTTPS.** Fly's checks call `/health` over plain HTTP. The portal's `force_ssl`
  excludes the health paths and the check sends `X-Forwarded-Proto: https`, so it gets the real
  status rather than a redirect.
- **Database TLS uses `verify: :verify_none`.** Fly Postgres presents certificates that cannot be
  verified by hostname; traffic stays on Fly's private WireGuard network, which is encrypted. The
  trade-off: the connection is encrypted but the server is not authenticated. If you move to an
  external Postgres, switch to `verify: :verify_peer` with its CA certificate.
- **Memory.** Game data is loaded into ETS at boot. If the machine runs short of memory, raise
  `BEZGELOR_VM_MEMORY_MB`, run `inv init` and deploy, or scale directly:
  `fly scale memory 6144 -a {app}` (fly.toml then disagrees: update the setting too).

## Useful commands

```bash
fly ssh console -a {app}
fly ssh console -a {app} -C "/app/bin/migrate status"
fly ssh console -a {app} -C "/app/bin/{s.release_name} remote"
fly releases -a {app} --image
fly ips list -a {app}
```
"""


def backup_md(s: Settings) -> str:
    db, app = s.db_app, s.app
    daily, monthly = s.backup_keep_daily_days, s.backup_keep_monthly_months
    rows = "\n".join([
        f"| Volume snapshots | daily snapshots of `{db}`'s volume (`fly volumes snapshots list <VolumeId>`) "
        "| Fly | a few days |",
        f"| Fly Postgres backups | `fly postgres backup create -a {db}` (after `enable`) | Fly's object storage "
        "| Fly's retention |",
        f"| Local dumps | `inv db.backup`: `pg_dump` through a flyctl proxy tunnel, with checksum and manifest "
        f"| `{s.backup_dir}/` | daily for {daily} days, first of each month for {monthly} months |",
    ])
    return f"""\
# Backups of the Bezgelor database

{_GENERATED_NOTE}

Two layers, because each covers what the other cannot:

| Layer | What | Where | Kept |
|---|---|---|---|
{rows}

Only the local dumps survive losing the Fly account or deleting the Postgres app by mistake.

## Local dumps (our tasks)

```bash
inv db.backup              # dump now (and before any deploy with risky migrations)
inv db.verify-backup       # restore the newest dump into a scratch database and check it
inv db.prune               # apply the schedule: daily for {daily} days, monthly for {monthly} months
inv db.restore             # restore a dump into {db} (see `inv --help db.restore`)
```

Schedule `inv db.backup && inv db.prune` once a day (cron or a CI schedule), and run
`inv db.verify-backup` weekly: a backup that was never restored is a hope, not a backup.
The dumps contain player accounts: keep `{s.backup_dir}/` out of git (`inv init` adds `.bezgelor/`
to .gitignore) and encrypt any copy you move off the machine.

By hand, the same dump is:

```bash
fly proxy 15432:5432 -a {db}
```

and, in another terminal, `pg_dump -h localhost -p 15432 -U {s.db_user} -Fc -f bezgelor.dump {s.db_name}`
(the password is the one `fly postgres create` printed).

## Fly Postgres backups

Backups must be enabled once. `enable` needs at least 512 MB on the Postgres machines
(`shared-cpu-1x` has 256 MB); this project creates `{db}` with {s.pg_vm_memory_mb} MB. For an older
cluster, raise its memory first:

```bash
fly scale memory {max(s.pg_vm_memory_mb, 1024)} -a {db}
fly postgres backup enable -a {db}
fly postgres backup create -a {db}
fly postgres backup list -a {db}
```

Without `enable`, `create` fails. Once enabled, `create` and `restore` exit 0 even when the work fails
on the machine, so always confirm with `fly postgres backup list`. These commands apply to Fly's
"flex" Postgres (`BEZGELOR_PG_FLAVOR=flex`); Managed Postgres has its own `mpg` commands.

## Recovery

Fly restores a backup into a **new** Postgres app, never over the running one:

```bash
fly postgres backup list -a {db}
fly postgres backup restore <NewDbApp> -a {db}
fly secrets unset DATABASE_URL -a {app} --stage
fly postgres attach <NewDbApp> -a {app} --yes
fly secrets deploy -a {app}
```

Then set `BEZGELOR_FLY_DB_APP=<NewDbApp>` in `.env` so our tasks follow. From a local dump,
`inv db.restore` restores into the attached database.

Point-in-time recovery: add `--restore-target-time <Time>` (RFC 3339) to the `restore` command.
"""


def rollback_md(s: Settings) -> str:
    app, db = s.app, s.db_app
    return f"""\
# Rolling back Bezgelor on Fly.io

{_GENERATED_NOTE}

`inv deploy.full` rolls back by itself when the new release fails its health gate (`/health` not
all-ok, or a game port not accepting connections within {s.health_timeout_s} s): it redeploys the image
of the last release that passed. This page is for rolling back later, by choice.

## The application

```bash
inv rollback.list          # releases, newest first: image, status, newest migration, safe to roll back to now
inv rollback.app           # redeploy the previous good image (migration-checked), then the health gate
```

`inv rollback.app` refuses when the database has migrations the target release's code does not
contain (old code on a newer schema loses data): it prints the way out, `inv db.rollback --to
<that release's newest migration>` and then the rollback, or `--force` with the risk stated.

Fly has no "rollback" command: a rollback is a deploy of an older image. By hand:

```bash
fly releases -a {app} --image --json
fly deploy -a {app} --image <ImageRef> --yes
```

Take `ImageRef` from the release you want. `fly deploy` has no `--region` flag and runs the
`release_command` (migrations) again: going back to an image whose code predates a migration does
**not** undo that migration, so roll the database back first (next section).

## Database migrations

```bash
inv db.rollback --to <Version>   # backs up, then keeps <Version> and reverts every later migration
```

`<Version>` is a migration timestamp (for example 20240101000000). `--skip-backup` skips the backup
(loudly): a `down` migration that drops a column drops its data. By hand (note Ecto's meaning: the
version you pass is reverted too, so pass the oldest migration to undo):

```bash
fly ssh console -a {app} -C "/app/bin/migrate status"
fly ssh console -a {app} -C "/app/bin/migrate rollback <OldestVersionToRevert>"
```

## Emergencies

```bash
fly scale count 0 -a {app} --yes
fly scale count 1 -a {app} --yes
fly apps restart {app}
fly logs -a {app}
fly postgres backup list -a {db}
```

`scale count 0` stops the game and the portal (players are disconnected); `1` brings it back.

## Before every deploy

1. `inv verify` passes.
2. `inv db.backup`.
3. Note the current release: `inv rollback.list`.
4. `inv deploy.full`, then check `{s.public_health_url}`.
"""


def _markdown_generated(co: Checkout, rel: str, body: str, why: str) -> FileChange:
    # The marker line opens an HTML comment that the body's first line closes, so it stays invisible.
    return generated_change(co.path(rel), rel, "-->\n" + body, why, comment="<!--")


def docs_changes(co: Checkout) -> list[FileChange]:
    s = co.settings
    return [
        _markdown_generated(co, DEPLOYMENT, deployment_md(s), "how to deploy: inv deploy.full and its flyctl"),
        _markdown_generated(co, BACKUP, backup_md(s), "backup layers and schedule, restore procedures"),
        _markdown_generated(co, ROLLBACK, rollback_md(s), "rolling back the app image and migrations"),
    ]
