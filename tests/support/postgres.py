"""Fixtures: postgres (see tests/conftest.py)."""
