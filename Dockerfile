# syntax=docker/dockerfile:1
# recognizer: a slim, torch-free runtime image with the model's weights and artifacts baked in.
#
#   docker build -t recognizer .                                   # EfficientNet-Lite0 on ONNX Runtime
#   docker build -t recognizer --build-arg MODELS="resnet18 efficientnet_lite0" .   # fetches weights
#   docker run -p 8000:8000 -v recognizer-data:/data recognizer   # refuses to start with no credentials:
#   docker run --rm -v recognizer-data:/data recognizer recognizer keys create --name app --scopes classify
#
# Stage 1 has the export toolchain (torch, timm, onnx); stage 2 only the runtime (ONNX Runtime,
# FastAPI, SQLAlchemy), the wheel built in stage 1 and the cached artifacts. See docs/container.md.

ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS build
ARG MODELS="efficientnet_lite0"
ARG ENGINE="onnxruntime"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RECOGNIZER_CACHE_DIR=/opt/recognizer/cache TORCH_HOME=/opt/recognizer/torch
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# torch's CPU wheels: the build stage never needs CUDA.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt '.[export]' \
    && pip wheel --no-deps -w /wheels .
# Weights: bundled ones (EfficientNet-Lite0) need nothing; torchvision's are downloaded here, once.
RUN for model in ${MODELS}; do \
        recognizer weights path "$model" >/dev/null 2>&1 || recognizer weights fetch "$model"; \
        recognizer export --model "$model" --engine "${ENGINE}"; \
    done

FROM python:${PYTHON}-slim AS runtime
# The runtime's extras: PostgreSQL and Redis clients. tests/e2e/test_container.py resolves this
# exact line with `pip install --dry-run --report` and checks that no torch or CUDA package comes.
ARG RUNTIME_EXTRAS="postgres,redis"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    RECOGNIZER_CACHE_DIR=/opt/recognizer/cache RECOGNIZER_DATA_DIR=/data \
    RECOGNIZER_HOST=0.0.0.0 RECOGNIZER_PORT=8000 RECOGNIZER_ALLOW_DOWNLOAD=false
COPY --from=build /wheels /wheels
COPY constraints.txt /tmp/constraints.txt
RUN pip install -c /tmp/constraints.txt "$(ls /wheels/recognizer-*.whl)[${RUNTIME_EXTRAS}]" \
    && rm -rf /wheels /tmp/constraints.txt
COPY --from=build /opt/recognizer/cache /opt/recognizer/cache
# A numeric, non-root user that owns only /data: the image itself stays read-only to it.
RUN mkdir /data && chown 10001:10001 /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('RECOGNIZER_PORT', '8000'), timeout=4)"]
CMD ["recognizer", "serve"]
