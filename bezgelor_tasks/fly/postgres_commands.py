"""flyctl commands for the database, as data: Fly Postgres (Flex: `fly postgres`, its Fly-side backups and the
image it runs), Managed Postgres (`fly mpg`), and `fly proxy` to the database's port.

Pure builders with commands.py's defaults (`build`). `fly postgres create`'s and `fly mpg status`'s output hold
the database password: the callers never show it.
"""

from __future__ import annotations

from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.commands import build
from bezgelor_tasks.settings import Settings

POSTGRES_PORT = 5432


# --- Fly Postgres (Flex) ----------------------------------------------------------------------------

def postgres_create(settings: Settings) -> Command:
    """The output holds the database password: the caller must never show it."""
    return build(settings, "postgres", "create",
                 "--name", settings.db_app,
                 "--region", settings.region,
                 "--org", settings.org,
                 "--initial-cluster-size", str(settings.pg_cluster_size),
                 "--vm-size", settings.pg_vm_size,
                 "--volume-size", str(settings.pg_volume_gb),
                 "--vm-memory", str(settings.pg_vm_memory_mb),
                 # Fly's API picks the major otherwise (15-18): a pinned one is a client we can name
                 "--image-ref", flex_image(settings.pg_create_major),
                 *(("--enable-backups",) if settings.pg_vm_memory_mb >= FLY_BACKUPS_MIN_MB else ()),
                 purpose=f"create the Postgres app {settings.db_app}", stream=True)


FLY_BACKUPS_MIN_MB = 512  # barman-cloud backups to Tigris need this much on the Postgres machines
FLEX_IMAGE = "flyio/postgres-flex"


def flex_image(major: int) -> str:
    return f"{FLEX_IMAGE}:{major}"


def image_show(settings: Settings, app: str | None = None) -> Command:
    """The image of each machine (`Repository`, `Tag`): a Flex machine's tag is its PostgreSQL major."""
    target = app or settings.db_app
    return build(settings, "image", "show", "-a", target, "--json", purpose=f"read the image of {target}'s machines",
                 mutates=False)


def postgres_backup_restore(settings: Settings, new_app: str, *, target_time: str | None = None,
                            target_name: str | None = None) -> Command:
    """Fly-side restore (barman) into a new Postgres app: a point in time (RFC 3339) or a backup name."""
    extra: tuple[str, ...] = ()
    if target_time:
        extra = ("--restore-target-time", target_time)
    elif target_name:
        extra = ("--restore-target-name", target_name)
    return build(settings, "postgres", "backup", "restore", new_app, "-a", settings.db_app,
                 "--image-ref", flex_image(settings.pg_create_major), *extra,
                 purpose=f"restore {settings.db_app}'s Fly-side backup into the new Postgres app {new_app}")


def postgres_attach(settings: Settings, pg_app: str | None = None) -> Command:
    source = pg_app or settings.db_app
    return build(settings, "postgres", "attach", source, "-a", settings.app, "--yes",
                 purpose=f"attach {source} to {settings.app} (sets DATABASE_URL)")


def postgres_backup_create(settings: Settings, name: str | None = None) -> Command:
    extra = ("--name", name) if name else ()
    return build(settings, "postgres", "backup", "create", "-a", settings.db_app, *extra,
                 purpose=f"take a Fly-side backup of {settings.db_app}")


def postgres_backup_list(settings: Settings) -> Command:
    return build(settings, "postgres", "backup", "list", "-a", settings.db_app,
                 purpose=f"list the Fly-side backups of {settings.db_app}", mutates=False)


def postgres_backup_enable(settings: Settings) -> Command:
    return build(settings, "postgres", "backup", "enable", "-a", settings.db_app,
                 purpose=f"enable Fly-side backups of {settings.db_app}")


# --- Managed Postgres ------------------------------------------------------------------------------

def mpg_create(settings: Settings, name: str | None = None) -> Command:
    """Polls until the cluster is ready; its output holds the connection string with the password."""
    cluster = name or settings.db_app
    return build(settings, "mpg", "create", "--name", cluster, "--region", settings.region, "--org", settings.org,
                 "--plan", settings.mpg_plan, "--volume-size", str(settings.pg_volume_gb),
                 "--pg-major-version", str(settings.pg_create_major),
                 purpose=f"create the Managed Postgres cluster {cluster}", timeout=1800)


def mpg_list(settings: Settings) -> Command:
    return build(settings, "mpg", "list", "--org", settings.org, "--json", mutates=False, timeout=120,
                 purpose="list the Managed Postgres clusters")


def mpg_attach(settings: Settings, cluster_id: str, app: str | None = None,
               variable: str = "DATABASE_URL") -> Command:
    """Sets `variable` on the app to the cluster's pooled (PgBouncer) URI; refuses when it exists."""
    target = app or settings.app
    return build(settings, "mpg", "attach", cluster_id, "-a", target, "--variable-name", variable,
                 purpose=f"attach Managed Postgres cluster {cluster_id} to {target} (sets {variable})")


def mpg_proxy(settings: Settings, cluster_id: str, local_port: int = 0) -> Command:
    return build(settings, "mpg", "proxy", cluster_id, "--local-port", str(int(local_port)),
                 purpose=f"forward a local port to Managed Postgres cluster {cluster_id}", mutates=False, retries=0)


def mpg_restore(settings: Settings, cluster_id: str, *, backup_id: str | None = None,
                pitr_time: str | None = None, name: str | None = None) -> Command:
    """Always into a new cluster (named `name`); exactly one of backup_id / pitr_time (RFC 3339)."""
    if (backup_id is None) == (pitr_time is None):
        raise UserError("A Managed Postgres restore needs exactly one of a backup id or a point in time.",
                        fix="pass --backup-id ID (see `inv db.backups`) or --point-in-time 2026-06-01T12:00:00Z.")
    what = ("--backup-id", backup_id) if backup_id else ("--pitr-time", str(pitr_time))
    return build(settings, "mpg", "restore", cluster_id, *what, *(("--name", name) if name else ()),
                 purpose=f"restore Managed Postgres cluster {cluster_id} into a new cluster", timeout=300)


def mpg_status(settings: Settings, cluster_id: str) -> Command:
    """The cluster and its credentials (user, password, pgbouncer_uri): the output is secret."""
    return build(settings, "mpg", "status", cluster_id, "--json", mutates=False, timeout=120,
                 purpose=f"read the status and credentials of Managed Postgres cluster {cluster_id}")


def mpg_backup_list(settings: Settings, cluster_id: str) -> Command:
    return build(settings, "mpg", "backup", "list", cluster_id, "--json", mutates=False, timeout=120,
                 purpose=f"list the Managed Postgres backups of cluster {cluster_id}")


def mpg_backup_create(settings: Settings, cluster_id: str, kind: str = "full") -> Command:
    return build(settings, "mpg", "backup", "create", cluster_id, "--type", kind,
                 purpose=f"take a Managed Postgres backup of cluster {cluster_id}")


# --- the tunnel to the database ----------------------------------------------------------------------

def proxy(settings: Settings, pg_app: str | None = None, local_port: int = 0) -> Command:
    target = pg_app or settings.db_app
    return build(settings, "proxy", f"{int(local_port)}:{POSTGRES_PORT}", "-a", target,
                 purpose=f"forward a local port to {target}'s Postgres", mutates=False, retries=0)
