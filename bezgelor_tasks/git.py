"""git as data: pure builders for every git command the toolkit runs (the executor runs them)."""

from __future__ import annotations

from pathlib import Path

from bezgelor_tasks.command import Command

_INSTALL = "install git (Debian: apt-get install git) and run again."
# The demo commits as a throwaway identity so it works on a machine with no git config.
DEMO_IDENTITY = ("-c", "user.name=demo", "-c", "user.email=demo@example.invalid")


def _git(root: Path, *args: str, purpose: str, mutates: bool, timeout: float = 60) -> Command:
    return Command(("git", *args), purpose=purpose, cwd=root, mutates=mutates, timeout=timeout, tool="git",
                   install=_INSTALL)


def describe(root: Path) -> Command:
    """The version deploys are labelled with: `git describe --tags --always --dirty`."""
    return _git(root, "describe", "--tags", "--always", "--dirty", purpose="read the version from git",
                mutates=False, timeout=30)


def rev_parse_head(root: Path) -> Command:
    return _git(root, "rev-parse", "HEAD", purpose="read the commit being deployed", mutates=False, timeout=30)


def ls_tree(root: Path, ref: str, folder: str) -> Command:
    """The file names under `folder` at `ref` (what that commit's code contains)."""
    return _git(root, "ls-tree", "--name-only", ref, "--", folder.rstrip("/") + "/",
                purpose=f"list {folder} at {ref}", mutates=False)


def commit_everything(root: Path, message: str, *, init: bool = False) -> list[Command]:
    """(git init,) git add -A, git commit: what the demo does where a user would commit."""
    steps = [_git(root, "init", "-q", purpose="make the folder a git checkout", mutates=True)] if init else []
    return steps + [_git(root, "add", "-A", purpose="stage every file", mutates=True),
                    _git(root, *DEMO_IDENTITY, "commit", "-q", "-m", message, purpose=f"commit: {message}",
                         mutates=True)]
