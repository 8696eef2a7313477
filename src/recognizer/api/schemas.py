"""Response models: they document the API in OpenAPI and pin its JSON shape."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
    model: str
    engine: str
    predictions: list[PredictionOut]
    groups: list[GroupOut] | None = Field(None, description="present when label groups are on")
    timing_ms: Timing


class BatchItem(BaseModel):
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
