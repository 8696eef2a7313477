from __future__ import annotations

import numpy as np
import pytest

from recognizer.engines import ENGINE_KINDS, ENGINE_NAMES, available_engines, validate_engine
from recognizer.engines.base import EngineInfo
from recognizer.engines.fake import FakeEngine
from recognizer.errors import EngineError

INFO = EngineInfo(name="fake", model="m", weights_sha256="0" * 64, threads=1)


def test_every_engine_is_installed_by_setup():
    assert set(available_engines()) == set(ENGINE_NAMES)


def test_unknown_engine_lists_the_choices():
    with pytest.raises(EngineError, match="torch"):
        validate_engine("tensorrt")


def test_every_engine_kind_is_complete_and_loadable():
    from recognizer.engines.base import Engine

    for kind in ENGINE_KINDS:
        assert kind.install.startswith("pip install "), kind.name
        assert "cpu" in kind.devices and set(kind.devices) <= {"cpu", "cuda"}
        assert kind.exact == (kind.precision == "fp32") and kind.needs_calibration == (
            kind.precision == "int8"
        )
        assert issubclass(kind.engine_type(), Engine)  # every backend is installed by `make setup`


def test_an_engine_that_is_not_installed_names_its_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name))
    with pytest.raises(EngineError, match=r"pip install 'recognizer\[openvino\]'"):
        validate_engine("openvino-int8")


def test_engine_checks_input_layout_and_output_rows():
    engine = FakeEngine(INFO)
    assert engine.infer(np.zeros((3, 3, 8, 8), dtype=np.float32)).shape == (3, 1000)
    with pytest.raises(ValueError, match="NCHW"):
        engine.infer(np.zeros((3, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="float32"):
        engine.infer(np.zeros((1, 3, 8, 8), dtype=np.float64))
