"""Fixtures: umbrella (see tests/conftest.py)."""
