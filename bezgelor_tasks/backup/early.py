"""`inv db.backup`'s fixed costs down: the tunnel to the database opens first, everything else meanwhile.

A backup used to pay, one after another: the settings checks, `fly status` (the release for the manifest),
`fly image show` (is there a pg_dump new enough), the password (maybe `fly ssh console`), the off-site
store's check, and only then `fly proxy` and its handshake. Now the proxy is started at once (on the main
thread, so it dies with us) while worker threads do the rest. The settings and the password are needed to
connect; the client check and the store's are needed only before pg_dump starts (`Start.before_dump`: psql
opens the snapshot meanwhile); the release only for the manifest, so it is asked for while pg_dump runs. A
failure of any of them closes the tunnel and stops the task with nothing kept. The module the dump needs is
imported while the tunnel opens.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bezgelor_tasks.backup.session import Endpoint, direct_endpoint
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI


@dataclass
class Start:
    settings: Settings
    ui: UI
    executor: Executor
    endpoint: Endpoint            # the open tunnel (closed when the `with` block ends)
    release: Callable[[], str | None]   # the live release, read when the manifest is written
    before_dump: Callable[[], None]     # waits for the client and store checks (raises what they found)
    store: Callable[[], Any]      # the off-site Store, checked, when the backup goes off-site (else None)


def _work_beside_the_tunnel(root: str | None, raw: Settings, ex: Executor,
                            offsite: bool) -> dict[str, Callable[[], Any]]:
    """What the worker threads do while the tunnel opens, by name: every settings check, the password, the
    imports the dump needs, the local client's check and (going off-site) the store's."""
    from bezgelor_tasks import settings_load
    from bezgelor_tasks.backup import clients, credentials, session
    from bezgelor_tasks.deploy.state import require_checkout

    def checked() -> Settings:
        s = settings_load.load_checked(root)
        require_checkout(s)
        return s

    def warm_password() -> None:  # the environment, the cache, or Fly (then cached): connect() finds it at once
        try:
            credentials.login(raw, ex, interactive=False)
        except Exception:  # noqa: BLE001 - connect() asks again on the main thread, and says what is wrong
            pass

    def store() -> Any:
        from bezgelor_tasks.backup import offsite as offsite_mod

        return offsite_mod.preflight(raw, ex)

    def warm_imports() -> None:   # what the dump needs once the tunnel is open, imported while it opens
        importlib.import_module("bezgelor_tasks.backup.backup")

    return {
        "settings": checked, "password": warm_password, "imports": warm_imports,
        "client": lambda: session.preflight(raw, ex, clients.default_search(raw.pg_bindir)),
        "store": store if offsite or raw.offsite_always else lambda: None}


def _live_release(raw: Settings, ex: Executor) -> str | None:
    from bezgelor_tasks.backup import backup

    return backup.current_release(raw, ex)


@contextmanager
def tunnel_first(root: str | None, *, json_mode: bool = False, offsite: bool = False) -> Iterator[Start]:
    from bezgelor_tasks import settings_load
    from bezgelor_tasks.backup import session

    raw = settings_load.load(root)   # enough to name the tunnel; every check runs beside it
    ui = UI(json_mode=json_mode)
    ex = Executor(ui=ui, default_timeout=raw.command_timeout_s)
    work = _work_beside_the_tunnel(root, raw, ex, offsite)
    pool = ThreadPoolExecutor(max_workers=len(work) + 1, thread_name_prefix="backup-start")
    futures: dict[str, Future[Any]] = {name: pool.submit(fn) for name, fn in work.items()}
    try:
        tunnel = session.fly_endpoint(raw, ex)()
        try:
            host, port = tunnel.__enter__()
        except BaseException:
            futures["settings"].result()   # a settings problem is the one to report, not its consequence
            raise
        try:
            # what connecting needs; the first failure is raised here
            done = {name: futures[name].result() for name in ("settings", "password", "imports")}

            def read_release() -> Future[Any]:   # asked for while pg_dump runs: it competes with nothing
                if "release" not in futures:
                    futures["release"] = pool.submit(_live_release, raw, ex)
                return futures["release"]

            def before_dump() -> None:
                futures["client"].result()
                futures["store"].result()
                read_release()

            yield Start(done["settings"], ui, ex, direct_endpoint(host, port), lambda: read_release().result(),
                        before_dump, futures["store"].result)
        finally:
            tunnel.__exit__(None, None, None)
    finally:
        # Ended by Ctrl-C or a failure: do not wait for a worker's read (the live release: flyctl, maybe a
        # retry); the task's interrupt handler stops the command it runs. Ended normally: everything is done.
        pool.shutdown(wait=sys.exc_info()[0] is None, cancel_futures=True)
