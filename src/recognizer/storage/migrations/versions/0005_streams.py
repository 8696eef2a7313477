"""Video streams the server runs (so they come back after a restart) and the events they raised.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "streams",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("rules", sa.JSON()),
        sa.Column("client", sa.String(128)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "stream_events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(128)),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("duration_s", sa.Float()),
        sa.Column("label", sa.Text()),
        sa.Column("reason", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_stream_events_stream_at", "stream_events", ["stream", "at"])


def downgrade() -> None:
    op.drop_index("ix_stream_events_stream_at", table_name="stream_events")
    op.drop_table("stream_events")
    op.drop_table("streams")
