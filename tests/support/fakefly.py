"""Fixtures: fakefly (see tests/conftest.py)."""
