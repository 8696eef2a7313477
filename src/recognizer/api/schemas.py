"""Response models: they document the API in OpenAPI and pin its JSON shape."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

#: an OpenAPI schema for a file's bytes
BINARY = {"type": "string", "format": "binary"}


def upload_body(raw: dict[str, dict[str, object]], file: dict[str, object] = BINARY) -> dict[str, object]:
    """``openapi_extra`` for a route that reads its body itself: a multipart ``file`` field, or the
    body as one of ``raw``'s media types (media type -> schema). FastAPI cannot infer either."""
    multipart = {"type": "object", "required": ["file"], "properties": {"file": file}}
    content = {"multipart/form-data": {"schema": multipart}} | {t: {"schema": v} for t, v in raw.items()}
    return {"requestBody": {"required": True, "content": content}}


class PredictionOut(BaseModel):
    index: int = Field(description="ImageNet-1K class index, 0-999")
    wnid: str = Field(description="WordNet synset id, e.g. n02123045")
    label: str
    score: float = Field(description="softmax probability, 0-1")


class GroupOut(BaseModel):
    name: str = Field(description="label group, e.g. dog, vehicle")
    score: float = Field(description="summed probability of the group's classes, 0-1")


class Timing(BaseModel):
    decode: float
    infer: float
    total: float


class ClassifyResponse(BaseModel):
    id: str = Field(description="this recognition's id: its row at /v1/history/{id} when history is on")
    model: str
    engine: str
    predictions: list[PredictionOut]
    groups: list[GroupOut] | None = Field(None, description="present when label groups are on")
    timing_ms: Timing


class BatchItem(BaseModel):
    id: str = Field(description="this file's recognition id (its history row)")
    file: str
    predictions: list[PredictionOut] | None = None
    groups: list[GroupOut] | None = None
    timing_ms: Timing | None = None
    error: dict[str, object] | None = Field(None, description="problem+json body when this file failed")


class BatchResponse(BaseModel):
    model: str
    results: list[BatchItem]


class ModelInfo(BaseModel):
    name: str
    description: str
    loaded: bool
    default: bool
    available_offline: bool
    engines: list[str]
    engine: str | None = Field(None, description="engine serving it, when loaded")
    accuracy: dict[str, float] = Field(description="published ImageNet-1K validation accuracy, percent")
    params: int
    gmacs: float
    input_size: int


class CompatPrediction(BaseModel):
    label: str
    probability: float


class TensorIO(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferRequest(BaseModel):
    id: str | None = None
    inputs: list[TensorIO]


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[TensorIO]


class HistoryError(BaseModel):
    type: str = Field(description="error code, e.g. not_an_image")
    detail: str | None = None


class HistoryItem(BaseModel):
    id: str = Field(description="the recognition's id (also X-Recognition-Id on its response)")
    created_at: str = Field(description="UTC, ISO 8601")
    source: str = Field(description="web, api, batch, compat, v2, cli, job:ID or stream:NAME")
    client: str | None = Field(None, description="API key id, else the client's address")
    name: str = Field(description="file name the client gave")
    model: str
    engine: str
    device: str
    predictions: list[PredictionOut]
    groups: list[GroupOut] | None = None
    timing_ms: dict[str, float]
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    size_bytes: int
    error: HistoryError | None = Field(None, description="set for a rejected input")
    image: str | None = Field(None, description="thumbnail or full when pixels are stored, else null")


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next (older) page")


class SeriesPoint(BaseModel):
    start: str = Field(description="bucket start, UTC")
    count: int
    errors: int


class LabelCount(BaseModel):
    wnid: str
    label: str
    count: int


class GroupCount(BaseModel):
    group: str
    count: int


class LatencyPoint(BaseModel):
    start: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


class HistoryStats(BaseModel):
    bucket: str
    since: str
    until: str | None = None
    total: int
    errors: int
    series: list[SeriesPoint]
    labels: list[LabelCount] = Field(description="most frequent top-1 labels")
    groups: list[GroupCount] = Field(description="most frequent label groups of the top-1 label")
    latency: list[LatencyPoint] = Field(description="total time percentiles per bucket, recognised inputs")


class DeleteResult(BaseModel):
    deleted: int


class GroupInfo(BaseModel):
    name: str = Field(description="label group, e.g. dog, vehicle")
    classes: int = Field(description="how many ImageNet classes it holds")


class JobFolder(BaseModel):
    """``POST /v1/jobs`` with a JSON body: a folder on the server, under RECOGNIZER_JOB_ROOTS."""

    folder: str = Field(
        min_length=1, max_length=4096, description="absolute, or relative to the first root that holds it"
    )


class JobCounts(BaseModel):
    total: int = Field(description="inputs in the job")
    done: int = Field(description="inputs finished, failed and reused ones included")
    reused: int = Field(description="found in the job's ledger: finished before a restart")
    failed: int = Field(description="inputs whose row is an error")


class JobOptions(BaseModel):
    top_k: int | None = Field(None, description="labels per image; null: the server's top_k")
    groups: bool | None = Field(None, description="label-group scores; null: the server's setting")


class JobError(BaseModel):
    file: str = Field(description="path in the zip, or under the folder")
    type: str = Field(description="error code, e.g. corrupt_image, not_an_image")
    detail: str


class JobSummary(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]
    kind: Literal["upload", "folder"]
    input: str = Field(description="the upload's file name, or the folder as given")
    options: JobOptions
    client: str | None = Field(description="who submitted it: key:ID, user:NAME or an address")
    created_at: str
    started_at: str | None = Field(description="when the current (or last) run began")
    finished_at: str | None
    counts: JobCounts
    images_per_s: float | None = Field(description="new (not reused) inputs per second in this run")
    message: str | None = Field(description="why a failed job failed")


class JobInfo(JobSummary):
    errors: list[JobError] = Field(description="the first inputs that failed, in input order")


class JobList(BaseModel):
    items: list[JobSummary] = Field(description="newest first")
