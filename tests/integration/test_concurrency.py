"""16 clients at once: every answer right, and the micro-batcher really batched them."""

from __future__ import annotations

import asyncio

import httpx

from recognizer.api import create_app
from tests.helpers import jpeg_bytes


async def _sixteen_at_once(app, photos: list[bytes]) -> list[httpx.Response]:
    async with app.router.lifespan_context(app):
        await app.state.pipeline.wait_ready()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://recognizer") as client:
            return await asyncio.gather(
                *(
                    client.post("/v1/classify", files={"file": (f"{i}.jpg", data, "image/jpeg")})
                    for i, data in enumerate(photos)
                )
            )


def test_sixteen_parallel_requests_are_answered_correctly_in_shared_batches(api_settings, cat_photo):
    cats = [jpeg_bytes(cat_photo.rotate(angle, expand=True), quality=90) for angle in range(0, 16 * 5, 5)]
    app = create_app(api_settings)
    responses = asyncio.run(_sixteen_at_once(app, cats))
    assert [r.status_code for r in responses] == [200] * 16
    labels = [r.json()["predictions"][0]["label"] for r in responses]
    assert sum(label in {"tabby", "tiger cat", "Egyptian cat"} for label in labels) >= 14  # rotated cats
    metrics = app.state.metrics
    assert metrics.mean_batch("efficientnet_lite0") > 1
    assert "recognizer_mean_batch_size" in metrics.render().decode()
