"""The soaks' memory report says which grew: the Python heap, malloc's bytes in use, or neither
(memory the allocator keeps)."""

from __future__ import annotations

import pytest

from bench import memprobe

FIRST = {"rss_mb": 250.0, "py_objects": 90_000, "py_blocks": 390_000}
FIRST |= {"malloc_in_use_mb": 60.0, "malloc_free_mb": 100.0}


@pytest.mark.parametrize(
    ("change", "grew"),
    [
        ({"rss_mb": 251.0}, "nothing"),
        ({"rss_mb": 290.0, "malloc_free_mb": 140.0}, "kept by the allocator"),
        ({"rss_mb": 290.0, "malloc_in_use_mb": 98.0}, "malloc in use (native)"),
        ({"rss_mb": 290.0, "py_objects": 180_000}, "Python heap"),
    ],
)
def test_which_grew(change, grew) -> None:
    split = memprobe.split(FIRST, FIRST | change)
    assert split["grew"] == grew
    assert memprobe.describe(split).endswith(f"grew: {grew}")


def test_a_sample_from_this_process() -> None:
    row = memprobe.sample(0.0)
    assert row["rss_mb"] > 0 and row["py_objects"] > 0 and row["py_blocks"] > 0
