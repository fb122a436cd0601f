"""bezgelor-tasks: take a Bezgelor umbrella to Fly.io and keep it alive there."""

__version__ = "0.1.0"
