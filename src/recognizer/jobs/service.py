"""Folder jobs inside the server: a queue in the database, run one at a time on the server's own
Pipeline (jobs and HTTP requests share one model copy), resumable through each job's ledger.

Each job has a folder ``data_dir/jobs/<id>/`` with its upload (``input.zip``), its ledger and a
``lock`` file. Whoever holds the lock runs the job: a worker claims the oldest unfinished job whose
lock it can take. So a job left ``running`` by a killed server is taken over at the next start, its
ledger skipping what was done, and two workers never run the same job. Counts go to the database
at most once a second; while a job runs here, :meth:`JobManager.view` adds the live ones.

What a job may read is checked (:mod:`recognizer.jobs.intake`) when it is submitted and again
each time it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine

from recognizer.config import Settings
from recognizer.errors import JobQueueFullError, RecognizerError
from recognizer.inference.pipeline import Options, Pipeline
from recognizer.interprocess import try_lock
from recognizer.jobs import inputs, runner
from recognizer.jobs.intake import allowed_folder, check_zip, folder_sources
from recognizer.jobs.ledger import Ledger, read_rows
from recognizer.jobs.runner import Counts
from recognizer.storage import jobs as store

log = logging.getLogger("recognizer.jobs")

UPLOAD, LEDGER, LOCK = "input.zip", "ledger", "lock"
#: how often a running job's counts are written, and its row checked (gone: deleted elsewhere)
FLUSH_EVERY_S = 1.0
#: how often an idle worker looks for work another process queued (its own jobs wake it at once)
POLL_S = 2.0
#: a job folder with no row is left by an upload cut short; younger ones may be uploads in flight
ORPHAN_AGE_S = 60.0

Receive = Callable[[Path], Awaitable[str]]


@dataclass
class Active:
    """The job this process is running, with its live counts."""

    id: str
    counts: Counts = field(default_factory=lambda: Counts(0))
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[Counts] | None = None
    #: deleted while running: stop, then remove its files
    deleted: bool = False

    def observe(self, counts: Counts) -> None:
        self.counts = counts

    def rate(self) -> float | None:
        """New (not reused) inputs per second in this run."""
        elapsed = time.monotonic() - self.started
        new = self.counts.done - self.counts.reused
        return round(new / elapsed, 2) if new and elapsed > 0 else None

    def cancel(self) -> None:
        self.deleted = True
        if self.task is not None:
            self.task.cancel()


class JobManager:
    """The app's folder jobs: submitted, listed, watched, run and deleted."""

    def __init__(self, settings: Settings, pipeline: Pipeline, engine: Engine) -> None:
        self.settings, self.pipeline, self.engine = settings, pipeline, engine
        self.root = settings.data_dir.expanduser() / "jobs"
        self.active: Active | None = None
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Work through the queue in the background, from the jobs a previous run left."""
        self._wake = asyncio.Event()  # bound to this loop (a test may start an app twice)
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Interrupt the running job: it stays ``running`` in the database and resumes at next start."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    # -- submitting ---------------------------------------------------------------------------

    async def add_upload(
        self, receive: Receive, options: dict[str, Any], client: str | None
    ) -> dict[str, Any]:
        """A job over a zip that ``receive`` writes to the path it is given (returning the client's
        name for it); the upload is removed again if anything about it is refused."""
        await asyncio.to_thread(self._require_room)
        job_id = secrets.token_hex(8)
        folder = self.root / job_id
        lock = await asyncio.to_thread(_new_job_folder, folder)
        try:
            name = await receive(folder / UPLOAD)
            total = await asyncio.to_thread(check_zip, folder / UPLOAD, self.settings)
            row = _new_row(job_id, "upload", name[:255], None, options, client, total)
            await asyncio.to_thread(store.add, self.engine, row)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            lock.close()
        self._wake.set()
        return row

    async def add_folder(self, given: str, options: dict[str, Any], client: str | None) -> dict[str, Any]:
        """A job over a folder under the allowed roots (checked now, and again when it starts)."""
        await asyncio.to_thread(self._require_room)
        real = await asyncio.to_thread(allowed_folder, given, self.settings)
        total = inputs.count(await asyncio.to_thread(folder_sources, real, self.settings))
        job_id = secrets.token_hex(8)
        lock = await asyncio.to_thread(_new_job_folder, self.root / job_id)
        try:
            row = _new_row(job_id, "folder", given, str(real), options, client, total)
            await asyncio.to_thread(store.add, self.engine, row)
        except BaseException:
            shutil.rmtree(self.root / job_id, ignore_errors=True)
            raise
        finally:
            lock.close()
        self._wake.set()
        return row

    def _require_room(self) -> None:
        limit = self.settings.jobs.max_queued
        if store.waiting(self.engine) >= limit:
            raise JobQueueFullError(
                f"{limit} jobs are already waiting (RECOGNIZER_JOB_MAX_QUEUED); retry when one has "
                "started, or delete one",
                headers={"Retry-After": "10"},
            )

    # -- reading ------------------------------------------------------------------------------

    async def view(self, job_id: str) -> dict[str, Any] | None:
        """The job's row, with the live counts while this process runs it."""
        row = await asyncio.to_thread(store.get, self.engine, job_id)
        return None if row is None else self._live(row)

    async def newest(self, limit: int, state: str | None = None) -> list[dict[str, Any]]:
        return [self._live(row) for row in await asyncio.to_thread(store.newest, self.engine, limit, state)]

    def _live(self, row: dict[str, Any]) -> dict[str, Any]:
        active = self.active
        if active is not None and active.id == row["id"] and row["state"] == store.RUNNING:
            row |= active.counts.as_dict() | {"rate": active.rate()}
        return row

    def rows(
        self, row: dict[str, Any], errors_only: bool = False, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The job's result rows in input order, read as they are consumed, named relative to the
        job's input: a member's path in the zip, a file's path under the folder."""
        ledger = self.root / row["id"] / LEDGER
        if not ledger.is_file():
            return iter(())
        prefix = _prefix(row, self.root)
        found = read_rows(ledger, errors_only=errors_only, limit=limit)
        return ({**item, "file": item["file"].removeprefix(prefix)} for item in found)

    # -- deleting -----------------------------------------------------------------------------

    async def delete(self, job_id: str) -> bool:
        """Cancel the job if it waits or runs, remove its row and its files; False: no such job."""
        removed = await asyncio.to_thread(store.remove, self.engine, job_id)
        active = self.active
        if active is not None and active.id == job_id:
            active.cancel()  # its files go once it has stopped
            return True
        if removed:
            await asyncio.to_thread(self._remove_files, job_id)
        return removed

    def _remove_files(self, job_id: str) -> None:
        """Unless another process runs the job: it finds the row gone within a second, stops, and
        removes them itself."""
        folder = self.root / job_id
        lock = try_lock(folder / LOCK)
        if lock is not None or not (folder / LOCK).exists():
            shutil.rmtree(folder, ignore_errors=True)
        if lock is not None:
            lock.close()

    # -- running ------------------------------------------------------------------------------

    async def _work(self) -> None:
        try:
            await asyncio.shield(self.pipeline.wait_ready())  # stopping the jobs stops no model load
        except Exception as exc:  # the model did not load: /readyz says why; jobs wait in the queue
            log.error("jobs: not running any, the model did not load (%s)", exc)
            return
        await self._guarded(asyncio.to_thread(self._sweep_orphans), "tidy the jobs folder")
        while True:
            self._wake.clear()
            claimed = await self._guarded(asyncio.to_thread(self._claim_sync), "look for work")
            if claimed is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
                continue
            job_id, lock = claimed
            try:  # a job whose end could not be recorded is still running, and is claimed again
                await self._guarded(self._run(Active(job_id)), f"record the end of job {job_id}")
            finally:
                lock.close()

    @staticmethod
    async def _guarded(step: Awaitable[Any], what: str) -> Any:
        """``step``'s result, or None when it failed (the database away for a moment): the worker
        goes on, and tries again at its next poll."""
        try:
            return await step
        except Exception:
            log.exception("jobs: could not %s", what)
            return None

    def _claim_sync(self) -> tuple[str, IO[bytes]] | None:
        """The oldest unfinished job nobody runs (its lock is free), marked running."""
        for job_id in store.active_ids(self.engine):
            lock = try_lock(self.root / job_id / LOCK)
            if lock is None:
                continue  # running elsewhere, or another host's job
            if store.claim(self.engine, job_id):
                return job_id, lock
            lock.close()
        return None

    async def _run(self, active: Active) -> None:
        self.active = active
        active.task = asyncio.ensure_future(self._execute(active))
        flusher = asyncio.ensure_future(self._flush(active))
        try:
            outcome = await self._outcome(active)
        except asyncio.CancelledError:  # the server is stopping: the job stays running, and resumes
            self.active = None
            raise
        finally:
            flusher.cancel()
        try:
            await asyncio.to_thread(self._conclude, active, outcome)
        finally:
            self.active = None  # only now: until the row holds the final counts, memory has them

    @staticmethod
    async def _outcome(active: Active) -> tuple[str, str | None] | None:
        """done, or failed and why; None when the job was deleted while it ran."""
        assert active.task is not None
        try:
            await active.task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if active.deleted and not (current and current.cancelling()):
                return None
            raise
        except RecognizerError as exc:
            return store.FAILED, str(exc)
        except Exception:
            log.exception("jobs: job %s failed unexpectedly", active.id)
            return store.FAILED, "the job failed unexpectedly; the server's log says why"
        return store.DONE, None

    def _conclude(self, active: Active, outcome: tuple[str, str | None] | None) -> None:
        if outcome is None:
            store.remove(self.engine, active.id)
            shutil.rmtree(self.root / active.id, ignore_errors=True)
            log.info("jobs: job %s cancelled and removed", active.id)
            return
        state, message = outcome
        store.finish(self.engine, active.id, state, message, active.counts.as_dict(), active.rate())
        log.info("jobs: job %s %s (%s)", active.id, state, active.counts)

    async def _flush(self, active: Active) -> None:
        """Counts to the database once a second; a row gone means the job was deleted elsewhere."""
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            counts, rate = active.counts.as_dict(), active.rate()
            try:
                present = await asyncio.to_thread(store.progress, self.engine, active.id, counts, rate)
            except Exception:
                log.warning("jobs: could not record the progress of job %s", active.id, exc_info=True)
                continue
            if not present:
                active.cancel()

    async def _execute(self, active: Active) -> Counts:
        row = await asyncio.to_thread(store.get, self.engine, active.id)
        if row is None:  # deleted between the claim and now
            active.deleted = True
            raise asyncio.CancelledError
        options = Options(top_k=row["options"].get("top_k"), groups=row["options"].get("groups"))
        slot = await self.pipeline.model()
        sources = await asyncio.to_thread(self._sources, row)
        active.counts = Counts(await asyncio.to_thread(inputs.count, sources))
        fingerprint = runner.job_fingerprint(slot, self.settings, options)
        ledger = await asyncio.to_thread(Ledger, self.root / active.id / LEDGER, fingerprint)
        try:
            return await runner.run(
                self.pipeline,
                sources,
                ledger,
                total=active.counts.total,
                options=options,
                source=f"job:{active.id}",
                client=row["client"],
                strip_prefix=_prefix(row, self.root),
                observe=active.observe,
            )
        finally:
            ledger.close()  # commits what was done: a cancelled job resumes from here

    def _sources(self, row: dict[str, Any]) -> list[inputs.Source]:
        """The job's inputs, checked again: roots may have changed, a folder's files too."""
        if row["kind"] == "upload":
            return inputs.resolve([str(self.root / row["id"] / UPLOAD)])
        return folder_sources(allowed_folder(row["folder"], self.settings), self.settings)

    def _sweep_orphans(self) -> None:
        """Remove folders left by uploads cut short (no row, nobody holding the lock)."""
        if not self.root.is_dir():
            return
        known = store.ids(self.engine)
        for folder in self.root.iterdir():
            if folder.name in known or time.time() - folder.stat().st_mtime < ORPHAN_AGE_S:
                continue
            lock = try_lock(folder / LOCK)
            if lock is not None or not (folder / LOCK).exists():
                shutil.rmtree(folder, ignore_errors=True)
                log.info("jobs: removed %s, left by an upload that never finished", folder)
            if lock is not None:
                lock.close()


# -- small helpers --------------------------------------------------------------------------------


def _new_row(
    job_id: str,
    kind: str,
    given: str,
    folder: str | None,
    options: dict[str, Any],
    client: str | None,
    total: int,
) -> dict[str, Any]:
    return {
        "id": job_id,
        "state": store.WAITING,
        "kind": kind,
        "input": given,
        "folder": folder,
        "options": options,
        "client": client,
        "created_at": store.now(),
        "started_at": None,
        "finished_at": None,
        "total": total,
        "done": 0,
        "reused": 0,
        "failed": 0,
        "rate": None,
        "message": None,
    }


def _prefix(row: dict[str, Any], root: Path) -> str:
    """What the runner's input names start with, and clients are not shown."""
    if row["kind"] == "upload":
        return f"{root / row['id'] / UPLOAD}{inputs.MEMBER_SEPARATOR}"
    return f"{row['folder']}/"


def _new_job_folder(folder: Path) -> IO[bytes]:
    """The job's folder, its lock held: no other worker claims or sweeps it while it is filled."""
    folder.mkdir(parents=True)
    lock = try_lock(folder / LOCK, create=True)
    assert lock is not None  # a new folder's new file
    return lock
