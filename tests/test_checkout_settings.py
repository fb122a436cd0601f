"""Every task sees the same settings: what the checkout's Dockerfile and fly.toml say completes what was given.

No Elixir here: a CI runner that deploys reads the release's name from the Dockerfile (the `/app/bin/<name>`
its image has) and the region from fly.toml, as every task does (checkout/effective.py). The stories on real
checkouts are in test_maintainers_fly_setup.py (their region lax and release bezgelor_portal reach the database
`inv deploy.full` creates and the drain, with no Elixir on PATH).
"""

from __future__ import annotations

from pathlib import Path

from bezgelor_tasks import settings_load
from tests.support.shapes import FLY_LAUNCH_DOCKERFILE

MAINTAINERS_COPY = "COPY --from=builder --chown=nobody:root /app/_build/prod/rel/bezgelor_portal ./\n"


def checkout(tmp_path: Path, dockerfile: str | None = None, fly_toml: str | None = None) -> Path:
    if dockerfile is not None:
        (tmp_path / "Dockerfile").write_text(dockerfile)
    if fly_toml is not None:
        (tmp_path / "fly.toml").write_text(fly_toml)
    return tmp_path


def test_the_release_is_the_one_the_dockerfile_puts_in_the_image(tmp_path: Path) -> None:
    root = checkout(tmp_path, "FROM debian AS runner\nRUN mix release bezgelor_portal\n" + MAINTAINERS_COPY)
    s = settings_load.load(root, environ={})
    assert s.release_name == "bezgelor_portal" and not s.is_given("release_name")
    assert s.as_configured().release_name == "bezgelor"          # what the settings alone say
    # the copy is what counts, in any build environment, even when `mix release` names no release
    root = checkout(tmp_path, "FROM x AS builder\nRUN mix release\nFROM y\n"
                    "COPY --from=builder /app/_build/${MIX_ENV}/rel/game ./\n")
    assert settings_load.load(root, environ={}).release_name == "game"


def test_without_a_dockerfile_naming_one_the_setting_names_the_release(tmp_path: Path) -> None:
    assert settings_load.load(tmp_path, environ={"BEZGELOR_RELEASE_NAME": "game"}).release_name == "game"
    root = checkout(tmp_path, "FROM debian\nCOPY --from=builder /app/_build/prod/rel/${RELEASE} ./\n")
    assert settings_load.load(root, environ={}).release_name == "bezgelor"    # a variable names nothing we can read
    # flyctl's Phoenix Dockerfile copies every release folder and names none (init replaces it with ours)
    assert settings_load.load(checkout(tmp_path, FLY_LAUNCH_DOCKERFILE), environ={}).release_name == "bezgelor"


def test_the_region_is_fly_tomls_unless_the_setting_is_given(tmp_path: Path) -> None:
    root = checkout(tmp_path, fly_toml="app = 'bezgelor'\nprimary_region = 'lax'\n")
    assert settings_load.load_checked(root, environ={}).region == "lax"
    assert settings_load.load_checked(root, environ={"BEZGELOR_FLY_REGION": "ams"}).region == "ams"
    (root / "fly.toml").write_text("app = 'bezgelor'\nprimary_region = 'nowhere'\n")   # Fly reads no such region
    assert settings_load.load_checked(root, environ={}).region == "sjc"
    (root / "fly.toml").write_text("app = 'bezgelor'\n[[services]\n")                # not TOML: verify says so
    assert settings_load.load_checked(root, environ={}).region == "sjc"


def test_a_given_release_name_the_dockerfile_overrules_is_said_by_every_task(tmp_path: Path, capsys) -> None:
    from bezgelor_tasks.tasks._common import session

    root = checkout(tmp_path, "FROM debian AS runner\n" + MAINTAINERS_COPY)
    s = settings_load.load(root, environ={"BEZGELOR_RELEASE_NAME": "game"})
    assert s.release_name == "bezgelor_portal" and s.overruled() == [("release_name", "game", "bezgelor_portal")]
    (root / ".env").write_text("BEZGELOR_RELEASE_NAME=game\n")
    assert session(str(root)).settings.release_name == "bezgelor_portal"
    said = capsys.readouterr()
    assert "BEZGELOR_RELEASE_NAME=game is set, but the checkout's Dockerfile puts the release bezgelor_portal" in \
        said.out + said.err
    (root / ".env").unlink()
    session(str(root))
    assert "is set, but" not in "".join(capsys.readouterr())
