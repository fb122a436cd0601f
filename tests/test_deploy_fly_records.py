"""flyctl's JSON is read whatever its key casing, unknown keys are ignored, and garbage is a clear error."""

from __future__ import annotations

import json

import pytest

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import records


def test_apps_are_read_from_pascal_case_and_from_lower_case_keys():
    pascal = json.dumps([{"ID": "x", "Name": "bz", "Deployed": True, "Hostname": "bz.fly.dev", "Status": "deployed",
                          "Organization": {"Slug": "personal", "Name": "Me"}, "CurrentRelease": {"Status": "ok"},
                          "SomethingNew": 1}])
    lower = json.dumps([{"name": "bz", "deployed": True, "hostname": "bz.fly.dev", "status": "deployed",
                         "organization": {"slug": "personal"}}])
    assert records.parse_apps(pascal) == records.parse_apps(lower) == [
        records.App("bz", "deployed", True, "bz.fly.dev", "personal")]
    assert records.parse_apps("[]") == []


def test_ips_secrets_and_releases_parse_with_unknown_keys_ignored():
    ips = records.parse_ips('[{"ID":"1","Address":"137.66.1.2","Type":"v4","Region":"global","Network":null},'
                            '{"address":"2a09::1","type":"v6","region":"global"}]')
    assert [ip.address for ip in ips if ip.is_dedicated_v4] == ["137.66.1.2"]
    secrets = records.parse_secrets('[{"name":"CLOAK_KEY","digest":"abc","status":"Deployed","created_at":"x"}]')
    assert secrets == [records.Secret("CLOAK_KEY", "abc", "Deployed")]
    releases = records.parse_releases(json.dumps([
        {"ID": "r2", "Version": 2, "Stable": True, "Status": "complete", "Description": "Deploy image",
         "CreatedAt": "2026-01-02T00:00:00Z", "ImageRef": "registry.fly.io/bz:v2", "User": {"Email": "a@b"}},
        {"version": 1, "stable": False, "status": "failed", "reason": "deploy", "imageRef": "registry.fly.io/bz:v1"}]))
    assert releases[0] == records.Release(2, "complete", "registry.fly.io/bz:v2", "2026-01-02T00:00:00Z", True,
                                          "Deploy image", user="a@b")
    assert releases[1].image_ref == "registry.fly.io/bz:v1" and releases[1].description == "deploy"


def test_status_reads_machines_their_image_release_and_checks():
    text = json.dumps({"Name": "bz", "Status": "deployed", "Hostname": "bz.fly.dev", "Version": 7, "Machines": [
        {"id": "m1", "state": "started", "region": "sjc",
         "image_ref": {"registry": "registry.fly.io", "repository": "bz", "tag": "v7", "digest": "sha256:1"},
         "config": {"metadata": {"fly_release_version": "7"}},
         "checks": [{"name": "servicecheck-00-http-4000", "status": "passing", "output": "OK"}]}]})
    status = records.parse_status(text)
    assert status.version == 7
    machine = status.machines[0]
    assert machine.image_ref == "registry.fly.io/bz:v7"
    assert machine.release_version == 7
    assert machine.checks[0].passing


def test_the_deploy_release_line_is_found_among_build_output():
    out = "==> Building image\nimage: registry.fly.io/bz:v3\n" \
          '{"id":"rel_1","version":3,"image_ref":"registry.fly.io/bz:v3"}\nVisit your app\n'
    assert records.parse_release_json(out) == records.ReleaseJson("rel_1", 3, "registry.fly.io/bz:v3")
    assert records.parse_release_json("no json here\n{broken") is None


def test_migration_status_comes_from_its_marker_line_and_lists_pending_migrations():
    payload = {"repos": [{"repo": "BezgelorDb.Repo", "migrations": [
        {"version": 20240102000000, "name": "create_characters", "status": "down"},
        {"version": 20240101000000, "name": "create_accounts", "status": "up"}]}]}
    out = "Connecting to fdaa::3...\n10:00:01.123 [info] starting\nBEZGELOR_MIGRATIONS " + json.dumps(payload) + "\n"
    status = records.parse_migration_status(out)
    assert [m.name for m in status.pending] == ["create_characters"]
    assert status.latest_applied == 20240101000000
    assert status.as_json()["repos"][0]["migrations"][0]["version"] == 20240101000000


def test_output_without_the_migrations_marker_names_the_fix():
    with pytest.raises(UserError, match="no BEZGELOR_MIGRATIONS line.*inv init"):
        records.parse_migration_status("bash: /app/bin/migrate: not found")


@pytest.mark.parametrize("parse, command", [
    (records.parse_releases, "fly releases --image --json"),
    (records.parse_apps, "fly apps list --json"),
    (records.parse_status, "fly status --json"),
    (records.parse_whoami, "fly auth whoami --json"),
])
def test_garbage_is_a_clear_error_naming_the_command(parse, command):
    with pytest.raises(UserError) as info:
        parse("<html>502 Bad Gateway</html>")
    assert f"`{command}` printed something that is not JSON: <html>502 Bad Gateway</html>" in str(info.value)


def test_json_of_the_wrong_shape_is_an_error_not_a_crash():
    with pytest.raises(UserError, match="not a list"):
        records.parse_ips('{"Address": "1.2.3.4"}')


def test_a_notice_printed_before_the_json_is_tolerated():
    text = "Update available 0.4.86 -> 0.4.87\n" + '[{"name":"A","digest":"d","status":"Staged"}]'
    assert records.parse_secrets(text)[0].status == "Staged"


def test_the_postgres_password_is_found_in_create_output():
    out = ("Postgres cluster bz-db created\n  Username:    postgres\n  Password:    Xy9secret\n"
           "  Connection string: postgres://postgres:Xy9secret@bz-db.flycast:5432\n")
    password, url = records.postgres_credentials(out)
    assert password == "Xy9secret"
    assert url == "postgres://postgres:Xy9secret@bz-db.flycast:5432"
