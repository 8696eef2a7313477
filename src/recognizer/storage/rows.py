"""A Recognition as a history row."""

from __future__ import annotations

from typing import Any

from recognizer.inference.results import Recognition


def row_from(recognition: Recognition, image: str | None = None) -> dict[str, Any]:
    """The row for ``recognition``; ``image`` says which pixels are stored with it, if any."""
    top = recognition.predictions[0] if recognition.predictions else None
    error = recognition.error
    timing = recognition.timing_ms
    return {
        "uid": recognition.id,
        "created_at": recognition.at,
        "source": recognition.source[:64],
        "client": recognition.client[:128] if recognition.client else None,
        "name": recognition.name[:255],
        "model": recognition.model,
        "engine": recognition.engine,
        "device": recognition.device,
        "top_index": top.index if top else None,
        "top_wnid": top.wnid if top else None,
        "top_label": top.label[:255] if top else None,
        "top_score": top.score if top else None,
        "predictions": [p.as_dict() for p in recognition.predictions] if top else None,
        "groups": [g.as_dict() for g in recognition.groups] if recognition.groups is not None else None,
        "decode_ms": timing.get("decode"),
        "infer_ms": timing.get("infer"),
        "total_ms": timing.get("total"),
        "sha256": recognition.sha256,
        "width": recognition.width,
        "height": recognition.height,
        "size_bytes": recognition.size_bytes,
        "error_code": error.code if error else None,
        "error_detail": (error.public or str(error))[:2000] if error else None,
        "image": image,
    }
