"""A stateful stand-in for flyctl, for tests only (see tests/fakes/README.md)."""
