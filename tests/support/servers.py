"""Fixtures: servers (see tests/conftest.py)."""
