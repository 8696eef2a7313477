"""What routes take from the app: the recognition service built at start-up."""

from __future__ import annotations

from fastapi import Request

from recognizer.inference.service import RecognitionService


def service_of(request: Request) -> RecognitionService:
    return request.app.state.service
