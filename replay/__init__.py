"""Replay: rebuild read models from the stored events (rebuild.py)."""
