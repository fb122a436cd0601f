"""What a command handler gets: parsed argv, environment, state access, output streams."""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, TextIO

from .errors import FlyError, app_not_found
from .store import Home, State

FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class Ctx:
    """One invocation: its parsed argv, environment, state home and output streams."""

    def __init__(self, argv: list[str], path: str, flags: dict[str, list[str]], pos: list[str],
                 env: dict[str, str], cwd: str, home: Home) -> None:
        self.argv, self.path, self.flags, self.pos = argv, path, flags, pos
        self.env, self.cwd, self.home = env, cwd, home
        self.out: TextIO = sys.stdout
        self.err: TextIO = sys.stderr
        self.stdin_len = 0

    # flags -----------------------------------------------------------------
    def flag(self, name: str, default: str | None = None) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else default

    def flag_list(self, name: str) -> list[str]:
        return list(self.flags.get(name, []))

    def on(self, name: str) -> bool:
        values = self.flags.get(name)
        return bool(values) and values[-1] not in FALSE

    @property
    def json(self) -> bool:
        return self.on("json")

    # state -------------------------------------------------------------------
    def tx(self) -> Any:
        return self.home.transaction()

    def read(self) -> State:
        return self.home.read()

    # output ------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def note(self, text: str) -> None:
        self.err.write(text + "\n")

    def emit_json(self, value: Any) -> None:
        self.out.write(json.dumps(value, indent=2) + "\n")

    def read_stdin(self) -> bytes:
        data = sys.stdin.buffer.read() if sys.stdin is not None else b""
        self.stdin_len = len(data)
        return data

    # apps --------------------------------------------------------------------
    def config_path(self) -> str:
        return os.path.join(self.cwd, self.flag("config") or "fly.toml")

    def fly_toml_value(self, key: str, section: str | None = None) -> str | None:
        """`key = "value"` at the top of the fly.toml flyctl would read (cwd or --config), or in [section]."""
        try:
            with open(self.config_path(), encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            return None
        parts = re.split(r"^\s*\[+([^\]]*)\]+\s*$", text, flags=re.M)  # [top, name, body, name, body...]
        bodies = [parts[0]] if section is None else \
            [body for name, body in zip(parts[1::2], parts[2::2], strict=True) if name.strip() == section]
        for body in bodies:
            m = re.search(rf"^\s*{re.escape(key)}\s*=\s*['\"]([^'\"]*)['\"]", body, re.M)
            if m:
                return m.group(1)
        return None

    def app_name(self) -> str:
        name = self.flag("app") or self.env.get("FLY_APP") or self.fly_toml_value("app")
        if not name:
            raise FlyError("the config for your app is missing an app name, did you forget to set it?",
                           suggestion="Try passing -a <app name> or running from the directory of your fly.toml")
        return name


def get_app(state: State, name: str) -> dict[str, Any]:
    app = state["apps"].get(name)
    if app is None:
        raise app_not_found(name)
    return app  # type: ignore[no-any-return]
