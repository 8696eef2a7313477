"""The tables, declared once: the migrations create them and ``alembic check`` compares against them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity
_ID = BigInteger().with_variant(Integer(), "sqlite")

recognitions = Table(
    "recognitions",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    #: the public id (recognizer.inference.results.new_id): made once per recognition, so writing
    #: a row twice (a retried commit, a replayed spool) is a no-op
    Column("uid", String(32)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    #: the channel: api, batch, compat, v2, cli, job:ID, stream:NAME
    Column("source", String(64), nullable=False),
    #: API key id once keys exist, else the client address
    Column("client", String(128)),
    Column("name", String(255), nullable=False),
    Column("model", String(64), nullable=False),
    Column("engine", String(32), nullable=False),
    Column("device", String(8), nullable=False),
    Column("top_index", Integer),
    Column("top_wnid", String(16)),
    Column("top_label", String(255)),
    Column("top_score", Float),
    #: [{"index", "wnid", "label", "score"}, ...], best first
    Column("predictions", JSON),
    #: [{"name", "score"}, ...] when label groups were on
    Column("groups", JSON),
    Column("decode_ms", Float),
    Column("infer_ms", Float),
    Column("total_ms", Float),
    Column("sha256", String(64)),
    Column("width", Integer),
    Column("height", Integer),
    Column("size_bytes", BigInteger, nullable=False),
    #: set for a rejected input (e.g. not_an_image), with the message
    Column("error_code", String(64)),
    Column("error_detail", Text),
    #: pixels kept with the row under RECOGNIZER_HISTORY_IMAGES: "thumbnail", "full" or None
    Column("image", String(16)),
    Index("ix_recognitions_created_at", "created_at"),
    Index("ix_recognitions_top_wnid", "top_wnid"),
    Index("ix_recognitions_model", "model"),
    Index("ix_recognitions_source", "source"),
    Index("ix_recognitions_sha256", "sha256"),
    Index("ix_recognitions_error_code", "error_code"),
    Index("ux_recognitions_uid", "uid", unique=True),
    Index("ix_recognitions_client", "client"),
)

#: API keys: only a hash of the secret is kept; ``key_id`` is the public part used for lookup and
#: shown in history rows (``client``) and logs
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("key_id", String(32), nullable=False, unique=True),
    Column("name", String(128), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    #: space-separated scopes: classify jobs streams history:read history:delete metrics admin
    Column("scopes", String(255), nullable=False),
    #: requests per minute for this key, overriding the server's per-scope defaults
    Column("rate_limit", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    #: set on a key replaced by ``keys rotate``: it keeps working until then
    Column("retires_at", DateTime(timezone=True)),
)

#: people who log in to the web page; roles map to the same scopes as keys
users = Table(
    "users",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
    #: bumped on password change or removal: sessions issued before it stop working
    Column("session_epoch", Integer, nullable=False, server_default="0"),
)

#: folder jobs submitted over HTTP (``POST /v1/jobs``): the queue itself, so that a restarted
#: server, or another worker, finds what is left to do; each job's files and ledger live in
#: ``data_dir/jobs/<id>/``
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    #: queued, running, done, failed (cancelled jobs are deleted)
    Column("state", String(16), nullable=False),
    #: upload (a zip sent with the request) or folder (under RECOGNIZER_JOB_ROOTS)
    Column("kind", String(16), nullable=False),
    #: what the client named: the upload's file name, or the folder as given
    Column("input", Text, nullable=False),
    #: a folder job's real path on the server (never shown to clients)
    Column("folder", Text),
    #: {"top_k": ..., "groups": ...} as asked (null: the server's default)
    Column("options", JSON, nullable=False),
    Column("client", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    #: when the current (or last) run began: a resumed job's run starts again here
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("done", Integer, nullable=False, server_default="0"),
    Column("reused", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    #: new (not reused) inputs per second in the current run
    Column("rate", Float),
    #: why a failed job failed
    Column("message", Text),
    Index("ix_jobs_state", "state"),
    Index("ix_jobs_created_at", "created_at"),
)

#: video streams started over HTTP (``POST /v1/streams``): a restarted server starts them again
streams = Table(
    "streams",
    metadata,
    Column("name", String(64), primary_key=True),
    #: as given, credentials included (the server needs them to reconnect); answers show it redacted
    Column("url", Text, nullable=False),
    Column("fps", Float, nullable=False),
    #: the rules as posted ({"defaults": ..., "rule": [...]}); null: one rule per built-in group
    Column("rules", JSON),
    Column("client", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: events the streams raised (the history sink), keyed by their deterministic id: a copy is ignored
stream_events = Table(
    "stream_events",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("stream", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("rule", String(128)),
    #: stream time: seconds since the epoch for a live source, media seconds for a file
    Column("at", Float, nullable=False),
    Column("score", Float),
    Column("duration_s", Float),
    Column("label", Text),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_stream_events_stream_at", "stream", "at"),
)
