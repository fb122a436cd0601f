from tests.test_rollback_migrations import *  # noqa
from tests.test_rollback_migrations import v1_and_v2_with_migration_b  # noqa


def test_show(v1_and_v2_with_migration_b, fake_fly):
    root = v1_and_v2_with_migration_b
    print(inv("rollback.list", "--root", str(root)).output)
    print(inv("rollback.app", "--root", str(root), "--version", "1", "--yes").output)
    print(inv("rollback.app", "--root", str(root), "--version", "1", "--yes", "--force").output)
