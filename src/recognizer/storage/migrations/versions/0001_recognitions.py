"""The recognitions table: one row per input, accepted or rejected.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recognitions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("client", sa.String(128)),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("device", sa.String(8), nullable=False),
        sa.Column("top_index", sa.Integer()),
        sa.Column("top_wnid", sa.String(16)),
        sa.Column("top_label", sa.String(255)),
        sa.Column("top_score", sa.Float()),
        sa.Column("predictions", sa.JSON()),
        sa.Column("groups", sa.JSON()),
        sa.Column("decode_ms", sa.Float()),
        sa.Column("infer_ms", sa.Float()),
        sa.Column("total_ms", sa.Float()),
        sa.Column("sha256", sa.String(64)),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_detail", sa.Text()),
    )
    for column in ("created_at", "top_wnid", "model", "source", "sha256", "error_code"):
        op.create_index(f"ix_recognitions_{column}", "recognitions", [column])


def downgrade() -> None:
    op.drop_table("recognitions")
