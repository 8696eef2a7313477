"""Recognition history in a real database: SQLAlchemy tables, Alembic migrations, the connection.

SQLite in the data directory by default (WAL mode and a busy timeout, so several workers and a
retention job never see "database is locked"), PostgreSQL by URL. Depends on the inference layer's
results only; nothing below it imports this package.
"""
