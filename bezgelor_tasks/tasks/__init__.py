"""The Invoke namespace: top-level `init`, `verify`, `demo`, and one collection per area."""

from invoke import Collection

from bezgelor_tasks.tasks import build, db, deploy, ips, plan, release, rollback, secrets
from bezgelor_tasks.tasks.checkout_tasks import demo, init, verify

namespace = Collection()
namespace.add_task(init)
namespace.add_task(verify)
namespace.add_task(demo)
for module in (build, release, db, secrets, ips, rollback, deploy, plan):
    namespace.add_collection(Collection.from_module(module))
