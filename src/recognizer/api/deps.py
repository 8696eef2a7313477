"""What routes take from the app: the recognition pipeline and the settings built at start-up."""

from __future__ import annotations

from fastapi import Request

from recognizer.config import Settings
from recognizer.inference.pipeline import Pipeline


def pipeline_of(request: Request) -> Pipeline:
    return request.app.state.pipeline


def settings_of(request: Request) -> Settings:
    return request.app.state.settings
