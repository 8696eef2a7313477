"""The HTTP API on Ray Serve: ``recognizer serve --ray``, or ``serve run recognizer.scaleout.serve:app``.

Each replica builds the service's own FastAPI app (``create_app``) around one Pipeline, so every
route (the page, /v1/classify, /healthz, history, /metrics) answers as it does under uvicorn, and a
replica holds one engine per model it has loaded. Serve's HTTP proxy spreads requests over the
replicas; inside a replica Serve's ``@serve.batch`` forms the engine batches, with the limits of
``settings.batching``: :class:`ServeBatcher` takes the place of our MicroBatcher through
``Pipeline(batcher_factory=...)``, so an input is batched once, never twice. Replicas are a fixed
number or autoscaled on ongoing requests (:class:`ReplicaOptions`).

Ray is an optional extra: it is imported only when one of these functions runs, and its absence is
one line naming the install command.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from recognizer.api import create_app
from recognizer.config import BatchingSettings, ServerSettings, Settings
from recognizer.errors import ConfigError, EngineError, FeatureUnavailableError, NotReadyError
from recognizer.inference.pipeline import Pipeline, RunBatch
from recognizer.scaleout.cluster import check_reachable

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve import Application

log = logging.getLogger("recognizer.scaleout")

APP_NAME = "recognizer"
RAY_MISSING = "Ray Serve needs the ray extra: pip install 'recognizer[ray]'"
#: the listen address a replica assumes where it cannot see the proxy's (``serve run``, config files):
#: the network, so the access rules of a network address apply unless RECOGNIZER_HOST says otherwise
UNKNOWN_PROXY_HOST = "0.0.0.0"


def ray_serve() -> ModuleType:
    """``ray.serve``, or the one-line error that names the extra to install."""
    try:
        from ray import serve
    except ImportError:
        raise FeatureUnavailableError(RAY_MISSING) from None
    return serve


# -- replicas ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaOptions:
    """How many replicas serve, and what each one reserves on the cluster."""

    #: the number of replicas, or the autoscaler's minimum when ``max_replicas`` is larger
    replicas: int = 1
    #: above ``replicas``: Serve autoscales between the two on ongoing requests
    max_replicas: int | None = None
    #: CPUs Ray reserves per replica; also its engine's threads unless --threads / RECOGNIZER_THREADS
    cpus: float = 1.0
    #: ongoing requests per replica the autoscaler aims at; default: one full batch (max_batch)
    target_ongoing: float | None = None

    def __post_init__(self) -> None:
        lowest = 0 if self.autoscaled else 1  # scale to zero only where it can scale up again
        ceiling = self.max_replicas if self.max_replicas is not None else self.replicas
        if self.replicas < lowest or ceiling < max(self.replicas, 1):
            raise ConfigError(
                f"replicas {self.replicas}..{self.max_replicas}: give at least 1 replica, "
                "and a maximum no smaller than the minimum"
            )
        if self.cpus <= 0 or (self.target_ongoing is not None and self.target_ongoing <= 0):
            raise ConfigError("CPUs per replica and target ongoing requests must be positive")

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas is not None and self.max_replicas > self.replicas

    def deployment_options(self, batching: BatchingSettings) -> dict[str, Any]:
        """Serve's deployment options. A replica accepts two batches' worth of requests (one running,
        one forming): Serve's default of 5 ongoing requests would cap every batch at 5."""
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.cpus},
            "max_ongoing_requests": 2 * batching.max_batch,
        }
        if not self.autoscaled:
            return options | {"num_replicas": self.replicas}
        scaling = {
            "min_replicas": self.replicas,
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing or batching.max_batch,
        }
        return options | {"autoscaling_config": scaling}

    @classmethod
    def split_args(cls, args: dict[str, Any]) -> tuple[ReplicaOptions, dict[str, Any]]:
        """``serve run`` arguments -> these options, and the rest (settings by their flat names)."""
        kinds: dict[str, Callable[[Any], Any]] = {
            "replicas": int,
            "max_replicas": int,
            "cpus": float,
            "target_ongoing": float,
        }
        try:
            options = cls(**{key: kinds[key](value) for key, value in args.items() if key in kinds})
        except ValueError as exc:
            raise ConfigError(f"replica arguments ({', '.join(kinds)}): {exc}") from None
        return options, {key: value for key, value in args.items() if key not in kinds}


def replica_settings(settings: Settings, options: ReplicaOptions) -> Settings:
    """A replica's engine threads follow its CPU reservation rather than the node's core count
    (several replicas share a node), unless threads were given."""
    if settings.engine.threads:
        return settings
    return settings.with_flags(threads=max(1, int(options.cpus)))


class ServeBatcher:
    """The pipeline's batcher inside a replica: Serve's ``@serve.batch`` gathers concurrent inputs
    (at most ``max_batch``, waiting at most ``max_wait_ms`` for company) and the engine runs each
    batch on one thread of its own, so the replica's event loop only awaits."""

    def __init__(
        self,
        run_batch: RunBatch,
        batching: BatchingSettings,
        on_batch: Callable[[int, float], None] | None = None,
        expect_more: Callable[[], bool] | None = None,  # Serve's batcher has no use for the hint
    ) -> None:
        self.run_batch, self.on_batch = run_batch, on_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
        self._running = False
        # Decorated per instance: @serve.batch keeps one queue per decorated function, so on a class
        # it would put two models' inputs in one batch.
        batch = ray_serve().batch(
            max_batch_size=batching.max_batch, batch_wait_timeout_s=batching.max_wait_ms / 1000
        )
        self._batched = batch(self._infer_many)

    def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False
        self._executor.shutdown(wait=True)

    async def submit(self, item: np.ndarray) -> np.ndarray:
        """One input -> its output row, or the error of the batch it ran in."""
        if not self._running:
            raise NotReadyError("the batcher is not running; the service is starting or stopping")
        return await self._batched(item)

    async def run_direct(self, batch: np.ndarray) -> np.ndarray:
        """A caller-formed batch on the inference thread, serialised with Serve's batches."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.run_batch, batch)

    async def _infer_many(self, items: list[np.ndarray]) -> list[np.ndarray]:
        started = time.perf_counter()
        outputs = await self.run_direct(np.stack(items))
        if len(outputs) != len(items):
            raise EngineError(f"the engine answered {len(outputs)} rows for {len(items)} inputs")
        if self.on_batch is not None:
            self.on_batch(len(items), time.perf_counter() - started)
        return list(outputs)


class Replica:
    """One Serve replica: the service's own app around one Pipeline whose batches Serve forms.
    Serve calls ``__serve_build_asgi_app__`` in the replica after the constructor (its late-bound
    ingress), so nothing but the settings travels from the driver."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(
            self.settings, Pipeline(self.settings, batcher_factory=ServeBatcher), run_jobs=False
        )


# -- applications -----------------------------------------------------------------------------------


def build_app(settings: Settings, options: ReplicaOptions | None = None) -> Application:
    """The Serve application: ``serve.run(build_app(settings))`` in Python."""
    serve, options = ray_serve(), options or ReplicaOptions()
    ingress = serve.ingress()(Replica)
    deployment = serve.deployment(ingress, name=APP_NAME, **options.deployment_options(settings.batching))
    return deployment.bind(replica_settings(settings, options))


def app(args: dict[str, Any]) -> Application:
    """The application builder for Serve's own tools: ``serve run recognizer.scaleout.serve:app
    replicas=2 max_replicas=4 cpus=2 model=resnet18``, or a config file's ``import_path`` + ``args``.

    Replica options come from ``args``; settings from RECOGNIZER_* variables, overridden by the other
    ``args``. Serve's proxy address is not known here, so unless a host is given (``host=127.0.0.1``),
    the replicas apply the access rules of a network address: credentials, or allow_anonymous.
    """
    options, flags = ReplicaOptions.split_args(args)
    settings = Settings(**flags)
    if "host" not in settings.server.model_fields_set:
        settings = settings.with_flags(host=UNKNOWN_PROXY_HOST)
    return build_app(settings, options)


# -- running ------------------------------------------------------------------------------------------


def serve_on_ray(
    settings: Settings, address: str, options: ReplicaOptions, announce: Callable[[str], None]
) -> None:
    """Serve on Ray until SIGINT or SIGTERM, Serve's HTTP proxy listening on the settings' host and
    port. ``address`` ``local`` starts a private Ray on this machine, stopped after; ``auto``, a
    ``host:port`` or ``ray://host:10001`` joins a running cluster, and only this application is
    removed after (the cluster and its proxies stay)."""
    serve = ray_serve()
    import ray

    local = address == "local"
    _connect(ray, address)
    try:
        _start_proxy(serve, settings.server)
        _deploy(serve, build_app(settings, options))
        announce(f"Ray at {ray.get_runtime_context().gcs_address}, {_replicas_text(options)}")
        wait_for_stop()
    finally:
        _remove(serve, local)
        ray.shutdown()


def http_options(server: ServerSettings) -> dict[str, Any]:
    """Serve's HTTP proxy options from ours: the same address, port and TLS files."""
    options: dict[str, Any] = {"host": server.host, "port": server.port}
    if server.ssl_certfile:
        options["ssl_certfile"] = str(server.ssl_certfile)
        options["ssl_keyfile"] = str(server.ssl_keyfile) if server.ssl_keyfile else None
    return options


def wait_for_stop() -> None:
    """Block until SIGINT (Ctrl-C) or SIGTERM (a process manager), with our handlers in place of Ray's:
    its SIGTERM handler exits at once and would skip removing the application."""
    stop = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in signals}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _connect(ray: ModuleType, address: str) -> None:
    extra: dict[str, Any] = {}
    if address == "local":
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # an offline service reports to no one
        extra["include_dashboard"] = False
    else:
        check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, **extra)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address!r} ({_reason(exc)}): start one (`ray start --head`), "
            "name its address, or use --ray local"
        ) from None


def _start_proxy(serve: ModuleType, server: ServerSettings) -> None:
    try:
        serve.start(http_options=http_options(server))
    except RuntimeError as exc:
        raise ConfigError(
            f"Serve's HTTP proxy did not start on {server.host}:{server.port} ({_reason(exc)}); "
            "is another server on that port? Choose one with --port"
        ) from None


def _deploy(serve: ModuleType, application: Application) -> None:
    """Deploy and wait until every replica has started; a replica that cannot build the app (a stale
    history schema, an unreadable labels file) is one line here, its traceback in the replica's log."""
    try:
        serve.run(application, name=APP_NAME, route_prefix="/")
    except RuntimeError as exc:
        raise ConfigError(
            f"the application did not start on Ray ({_reason(exc)}); the replicas' logs are in the Ray "
            "session's logs/serve folder (/tmp/ray/session_latest/logs/serve on the head node)"
        ) from None


def _remove(serve: ModuleType, local: bool) -> None:
    """A private Ray goes with everything on it; on a shared cluster only this application goes."""
    try:
        if local:
            serve.shutdown()
        else:
            serve.delete(APP_NAME)
    except Exception as exc:  # the cluster went first: nothing is left to remove
        log.warning("Ray Serve: could not remove the application (%s)", exc)


def _reason(exc: BaseException) -> str:
    """One line of why: a Ray task error's own cause rather than its banner."""
    cause = getattr(exc, "cause", None) or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0].rstrip(".")


def _replicas_text(options: ReplicaOptions) -> str:
    count = f"{options.replicas}..{options.max_replicas}" if options.autoscaled else str(options.replicas)
    return f"{count} replica(s) of {options.cpus:g} CPU(s)"
