"""A folder job on one machine: inputs -> ledger check -> pipeline -> ledger -> output file.

The pipeline's ``recognize_many`` keeps a window of inputs in flight, so the decode threads prepare
the next images while the engine runs the current batch. Inputs the ledger already holds are
skipped after hashing (reading and hashing a photo costs a fraction of a millisecond; decoding and
inference cost tens). The output is written at the end, from the ledger, under a temporary name
that is renamed into place: a reader never sees a partial file.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from recognizer import tabular
from recognizer.config import Settings
from recognizer.errors import RequestError
from recognizer.inference.pipeline import ModelSlot, Options, Pipeline
from recognizer.jobs import inputs, schema
from recognizer.jobs.ledger import Ledger, fingerprint

_DEFAULTS = Options()
FORMAT_BY_SUFFIX = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass
class Counts:
    """Where a job stands; what the progress bar, ``GET /v1/jobs/{id}`` and the exit code read."""

    total: int
    done: int = 0
    #: found in the ledger: finished by an earlier run
    reused: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


Observer = Callable[[Counts], None]


def format_of(out: Path, given: str | None = None) -> str:
    """The output format: given, else from the file's suffix."""
    found = given or FORMAT_BY_SUFFIX.get(out.suffix.lower())
    if found is None:
        raise RequestError(
            f"{out}: cannot tell the format from the suffix; use .csv, .jsonl or .parquet (or --format)"
        )
    tabular.require_format(found)
    return found


def job_fingerprint(slot: ModelSlot, settings: Settings, options: Options) -> str:
    """Everything that changes a row for the same input bytes."""
    model = slot.model
    return fingerprint(
        {
            "model": model.spec.name,
            "weights": model.weights.sha256,
            "engine": [model.engine.name, model.engine.info.device],
            "preprocessing": asdict(model.spec.preprocessing),
            "draft": settings.jpeg_draft,
            "top_k": options.top_k or settings.top_k,
            "groups": settings.groups if options.groups is None else options.groups,
            "labels": hashlib.sha256(repr(model.labels).encode()).hexdigest(),
            "group_members": hashlib.sha256(model.groups.members.tobytes()).hexdigest(),
            "group_names": list(model.groups.names),
            "limits": settings.limits.model_dump(),
        }
    )


async def run(
    pipeline: Pipeline,
    sources: list[inputs.Source],
    ledger: Ledger,
    *,
    total: int,
    options: Options = _DEFAULTS,
    source: str = "job",
    client: str | None = None,
    strip_prefix: str = "",
    observe: Observer = lambda counts: None,
) -> Counts:
    """Recognise every input not already in the ledger; the ledger then holds the whole job.

    ``strip_prefix`` comes off every input's name (the server names a job's inputs relative to its
    upload or folder, never by a server path); ``client`` is who history records as asking."""
    slot = await pipeline.model()
    counts = Counts(total)
    ledger.start_run()
    pending: deque[str] = deque()  # hashes of the inputs sent to the pipeline, in order
    max_bytes = pipeline.settings.limits.max_image_bytes
    items = (_renamed(item, strip_prefix) for item in inputs.read(sources, max_bytes))
    misses = _misses(items, ledger, slot, counts, pending, observe)
    window = 4 * pipeline.settings.batching.max_batch
    results = pipeline.recognize_many(misses, options=options, source=source, window=window, client=client)
    async for result in results:
        ledger.add_result(pending.popleft(), schema.row_of(result))
        counts.done += 1
        counts.failed += result.error is not None
        observe(counts)
    ledger.commit()
    return counts


def _renamed(item: inputs.Input, prefix: str) -> inputs.Input:
    if prefix:
        item.name = item.name.removeprefix(prefix)
    return item


def _misses(
    items: Iterator[inputs.Input],
    ledger: Ledger,
    slot: ModelSlot,
    counts: Counts,
    pending: deque[str],
    observe: Observer,
) -> Iterator[tuple[str, bytes]]:
    for item in items:
        if item.error is not None:
            engine = slot.model.engine.name
            ledger.add_input(item.name, None, schema.unread_row(item.error, slot.spec.name, engine))
            counts.done += 1
            counts.failed += 1
            observe(counts)
            continue
        sha256 = hashlib.sha256(item.data).hexdigest()
        ledger.add_input(item.name, sha256)
        previous = ledger.outcome(sha256)
        if previous is None:
            pending.append(sha256)
            yield item.name, item.data
        else:
            counts.done += 1
            counts.reused += 1
            counts.failed += not previous
            observe(counts)


def write_output(rows: Iterator[dict[str, Any]], out: Path, format: str) -> None:
    """Write ``rows`` to ``out`` atomically: a temporary file beside it, flushed, then renamed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.*.partial"):  # left by a run killed while writing
        stale.unlink(missing_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as handle:
            for chunk in tabular.encode(rows, format, schema.RESULTS):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
