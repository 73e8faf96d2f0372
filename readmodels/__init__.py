"""Read models: SQLAlchemy Core tables (by generation) and the query functions the HTTP API
calls. Query functions take an Engine and return plain dicts (or pages of them)."""
