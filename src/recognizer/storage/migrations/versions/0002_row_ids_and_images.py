"""Public row ids (unique, so a replayed write is a no-op), stored images, erasure by client.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recognitions") as table:
        table.add_column(sa.Column("uid", sa.String(32)))
        table.add_column(sa.Column("image", sa.String(16)))
    # Rows written before this revision get an id too, so every row can be fetched and deleted by id.
    op.execute("UPDATE recognitions SET uid = 'legacy' || CAST(id AS VARCHAR(20)) WHERE uid IS NULL")
    op.create_index("ux_recognitions_uid", "recognitions", ["uid"], unique=True)
    op.create_index("ix_recognitions_client", "recognitions", ["client"])


def downgrade() -> None:
    op.drop_index("ix_recognitions_client", "recognitions")
    op.drop_index("ux_recognitions_uid", "recognitions")
    with op.batch_alter_table("recognitions") as table:
        table.drop_column("image")
        table.drop_column("uid")
