"""Helpers for tests: real servers (services.py)."""
