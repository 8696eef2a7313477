from __future__ import annotations

import numpy as np
import pytest

from recognizer.engines import ENGINE_NAMES, available_engines, pick_engine
from recognizer.engines.base import EngineInfo
from recognizer.engines.fake import FakeEngine
from recognizer.errors import EngineError

INFO = EngineInfo(name="fake", model="m", weights_sha256="0" * 64, threads=1)


def test_every_engine_is_installed_by_setup():
    assert set(available_engines()) == set(ENGINE_NAMES)


def test_unknown_engine_lists_the_choices():
    with pytest.raises(EngineError, match="torch"):
        pick_engine("tensorrt")


def test_engine_checks_input_layout_and_output_rows():
    engine = FakeEngine(INFO)
    assert engine.infer(np.zeros((3, 3, 8, 8), dtype=np.float32)).shape == (3, 1000)
    with pytest.raises(ValueError, match="NCHW"):
        engine.infer(np.zeros((3, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="float32"):
        engine.infer(np.zeros((1, 3, 8, 8), dtype=np.float64))
