"""The documented list of `BEZGELOR_*` variables: every setting as `.env.example` shows it (its doc, its default),
and the names this toolkit reads that are not settings (never reported as unknown).

`.env.example` is `env_example()`'s text, and a test keeps the two in step.
"""

from __future__ import annotations

from bezgelor_tasks.settings import FIELDS
from bezgelor_tasks.settings_values import shown

# BEZGELOR_* names that are not settings but are read by this toolkit elsewhere, so never "unknown".
OTHER_KEYS = {
    "BEZGELOR_DB_PASSWORD": "the database password for backups and restores (backup/, never stored in .env)",
    "BEZGELOR_TASKS_REPO": "where the generated CI workflow fetches bezgelor-tasks from",
    "BEZGELOR_TASKS_REF": "which ref of it the CI workflow fetches",
    "BEZGELOR_BACKUP_AGE_IDENTITY": "the age secret key that reads off-site copies (a secret: Fly secret or CI secret)",
}


def env_example() -> str:
    """The text of `.env.example`: every setting, its default and what it is for."""
    lines = [
        "# bezgelor-tasks settings. Copy to .env and change what differs; the environment wins over .env.",
        "# No secret values belong here: secrets live on Fly (inv secrets.set NAME).",
        "",
    ]
    for f in FIELDS:
        lines.append(f"# {f.metadata['doc']}")
        lines.append(f"{f.metadata['env']}={shown(f.default)}")
        lines.append("")
    lines.append("# flyctl reads FLY_API_TOKEN for CI deploys (set it in your CI's secret store, not here).")
    return "\n".join(lines) + "\n"
