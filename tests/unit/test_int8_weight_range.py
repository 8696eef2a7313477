"""INT8 weight range follows the CPU: 7-bit weights where u8 x s8 products would saturate."""

from __future__ import annotations

import pytest

from recognizer.export import int8


@pytest.mark.parametrize(
    ("flags", "bits"),
    [
        ({"avx2", "fma"}, 7),  # AVX2 only: vpmaddubsw's 16-bit sums saturate with 8-bit weights
        ({"avx2", "avx512f", "avx512_vnni"}, 8),
        ({"avx2", "avx_vnni"}, 8),
        ({"avx2", "amx_int8"}, 8),
        (set(), 7),  # unknown CPU: the safe side
    ],
)
def test_weights_use_seven_bits_unless_the_cpu_has_int8_dot_products(monkeypatch, flags, bits):
    monkeypatch.setattr(int8, "cpu_flags", lambda: frozenset(flags))
    assert int8.weight_bits() == bits
