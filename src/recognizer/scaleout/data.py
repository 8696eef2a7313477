"""Folder jobs on Ray Data: ``recognizer batch SRC --ray [ADDRESS|auto|local]``.

The driver resolves SRC exactly as the local executor does and hands Ray the ordered list of file
paths (``from_items``); ``map_batches`` feeds them, ``max_batch`` at a time, to a fixed pool of
actors, each holding one model copy (:class:`Recognizer`); each actor reads its files itself,
recognises them with :func:`recognizer.inference.direct.recognize` and answers one row per file,
in the job schema; the driver takes the rows back in input order and writes them with the local
executor's writer. So a job's output file is the same whichever executor ran it.

Why the actors read the files rather than ``read_binary_files``: the local reader
(:func:`recognizer.jobs.inputs.read_file`) refuses a file over the byte limit from its size and
turns an unreadable one into an error row, where ``read_binary_files`` would read the whole of a
huge file and fail the job on an unreadable one; and image bytes then never cross the object
store (only paths go out and rows of about 1 KB come back), so in-flight work is bounded by the
actor pool alone: at most :data:`TASKS_IN_FLIGHT_PER_ACTOR` batches per actor. Every node must
therefore see the inputs at the paths the driver resolved (shared storage), and archives are
refused: their members cannot be read by path.

Ray is the ``recognizer[ray]`` extra; it is imported here only when a job runs.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from recognizer.config import Settings
from recognizer.errors import ConfigError, EngineError, FeatureUnavailableError
from recognizer.inference import direct
from recognizer.inference.loading import ModelChoice, choose_model, decode_limits, load_model
from recognizer.jobs import inputs, runner, schema
from recognizer.models import get_model_spec
from recognizer.scaleout.cluster import check_reachable

RAY_INSTALL = "pip install 'recognizer[ray]'"
#: one batch running on an actor and one queued behind it, so an actor never waits for work and
#: no more than two batches of paths per actor are ever handed out
TASKS_IN_FLIGHT_PER_ACTOR = 2
#: engine threads per actor when --threads is not given; see docs/scale-out.md for the measurement
DEFAULT_ACTOR_THREADS = 1
#: settings the actors never need, kept off the cluster (Ray shows actors' arguments in its logs
#: and dashboard): credentials and where the history database lives
_DRIVER_ONLY = {"auth", "database_url"}


@dataclass(frozen=True)
class Job:
    """A folder job checked on the driver, ready for the cluster."""

    files: tuple[str, ...]
    settings: Settings
    #: the model and engine that answer: the driver loaded them once, to fail before Ray starts
    model: str
    engine: str


def prepare(settings: Settings, sources: list[inputs.Source]) -> Job:
    """The job's files in input order, and its model loaded once here: a missing weights file or
    engine fails with the local executor's one-line error, and a first-use artifact is built once
    (on this machine's cache) rather than by every actor at the same time."""
    archives = [source.given for source in sources if source.archive is not None]
    if archives:
        raise ConfigError(
            f"{archives[0]}: --ray reads folders, files and globs, not archives; extract it where "
            "every Ray node can read it, or run without --ray"
        )
    files = tuple(str(path) for source in sources for path in source.files)
    loaded = load_model(settings, choose_model(settings))
    try:
        return Job(files, settings, loaded.spec.name, loaded.engine.name)
    finally:
        loaded.close()


def run(
    job: Job,
    out: Path,
    format: str,
    *,
    address: str = "local",
    actors: int | None = None,
    observe: runner.Observer = lambda counts: None,
) -> runner.Counts:
    """Run ``job`` on the Ray cluster at ``address`` and write its rows to ``out`` in input order."""
    counts = runner.Counts(len(job.files))
    if not job.files:  # nothing to do: no cluster needed
        runner.write_output(iter(()), out, format)
        return counts
    threads = job.settings.engine.threads or DEFAULT_ACTOR_THREADS
    with connected(address, None if actors is None else actors * threads) as ray:
        pool = actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        dataset = _dataset(ray, job, threads, pool)
        try:
            runner.write_output(_rows(dataset, job.files, counts, observe), out, format)
        except ray.exceptions.RayError as exc:
            raise EngineError(f"the Ray job failed: {_what_failed(exc)} (the Ray logs say more)") from None
    return counts


@contextmanager
def connected(address: str, local_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, connected: ``local`` starts a Ray of its own on this machine (``local_cpus`` CPUs, else
    all of them) and stops it after; ``auto`` joins the cluster this machine belongs to; anything
    else is a cluster address (``HOST:6379``, ``ray://HOST:10001``). A process already connected
    (a test, a notebook) keeps its connection."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address == "local":
        where: dict[str, Any] = {"address": "local", "num_cpus": local_cpus}
    else:
        check_reachable(address)
        where = {"address": address}
    try:
        ray.init(**where, include_dashboard=False, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address!r} ({exc}); start one (`ray start --head`) "
            "or use --ray local"
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _quiet_ray_data() -> None:
    """Ray Data's per-run INFO lines and its note that its progress bars are off (the CLI draws its
    own) would bury the job's own output; its warnings (an actor pool that cannot be placed) stay."""
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


def import_ray() -> ModuleType:
    try:
        import ray
        import ray.data
    except ImportError:
        raise FeatureUnavailableError(f"--ray needs Ray: {RAY_INSTALL}") from None
    return ray


def _dataset(ray: ModuleType, job: Job, threads: int, pool: int) -> Any:
    """Paths in, rows out: one pool of ``pool`` actors with ``threads`` CPUs (and engine threads) each."""
    batch = job.settings.batching.max_batch
    paths = ray.data.from_items(
        [{"file": name} for name in job.files], override_num_blocks=math.ceil(len(job.files) / batch)
    )
    # the engine the driver chose, not each node's own "auto"; and no downloads from actors: N of
    # them fetching one file at once is a race, and the weights are the driver's job or the image's
    actor_settings = job.settings.with_flags(engine=job.engine, threads=threads, allow_download=False)
    actor_settings = actor_settings.model_dump(mode="json", exclude=_DRIVER_ONLY)
    rows = paths.map_batches(
        Recognizer,
        fn_constructor_kwargs={"settings": actor_settings, "model": job.model},
        batch_size=batch,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(
            size=pool, max_tasks_in_flight_per_actor=TASKS_IN_FLIGHT_PER_ACTOR
        ),
        num_cpus=threads,
    )
    context = rows.context
    context.execution_options.preserve_order = True  # rows come back in input order: no sort needed
    context.enable_progress_bars = False  # the CLI draws its own
    context.enable_auto_log_stats = False
    _quiet_ray_data()
    return rows


def _rows(
    dataset: Any, files: tuple[str, ...], counts: runner.Counts, observe: runner.Observer
) -> Iterator[dict[str, Any]]:
    """The job's rows, checked against its inputs one by one (same file, same order, none missing)."""
    produced = iter(dataset.iter_rows())
    for expected in files:
        item = next(produced, None)
        if item is None or item["file"] != expected:
            got = "nothing more" if item is None else item["file"]
            raise RuntimeError(f"Ray returned {got} where {expected} was due (row {counts.done + 1})")
        row = json.loads(item["row"])
        counts.done += 1
        counts.failed += row["error"] is not None
        observe(counts)
        yield {"file": expected} | row
    if next(produced, None) is not None:
        raise RuntimeError(f"Ray returned more rows than the job's {len(files)} inputs")


def _recognize_options(settings: Settings) -> dict[str, Any]:
    """What the local executor's default ``Options()`` mean, as :func:`direct.recognize` takes them."""
    return {"draft": settings.jpeg_draft, "top_k": settings.top_k, "groups": settings.groups != "off"}


def _what_failed(exc: BaseException) -> str:
    """The line of a Ray error that says what went wrong: the last of the cause's text (a traceback)."""
    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


class Recognizer:
    """One Ray Data actor: one model copy, built once from the driver's settings, then fed batches of
    paths; it reads each file and answers its row (JSON text, as the local ledger keeps it, so the
    values are the local executor's to the last bit)."""

    def __init__(self, settings: dict[str, Any], model: str) -> None:
        self.settings = Settings(**settings)
        self.loaded = load_model(self.settings, ModelChoice(get_model_spec(model)))
        self.limits = decode_limits(self.settings)
        self.options = _recognize_options(self.settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        names = [str(name) for name in batch["file"]]
        read = [inputs.read_file(Path(name), name, self.limits.max_bytes) for name in names]
        rows = self._rows(read)
        return {"file": names, "row": [json.dumps(row, separators=(",", ":")) for row in rows]}

    def _rows(self, read: list[inputs.Input]) -> list[schema.Row]:
        readable = [(item.name, item.data) for item in read if item.error is None]
        recognized = iter(direct.recognize(self.loaded, readable, self.limits, **self.options))
        model, engine = self.loaded.spec.name, self.loaded.engine.name
        return [
            schema.row_of(next(recognized))
            if item.error is None
            else schema.unread_row(item.error, model, engine)
            for item in read
        ]
