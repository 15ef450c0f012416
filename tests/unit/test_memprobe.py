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


def _soak(threads: list[int]) -> list[dict[str, float]]:
    return [
        FIRST | {"t": 10.0 * i, "fds": 16, "threads": n, "presented": 300 * i}
        for i, n in enumerate(threads)
    ]


def test_the_soak_takes_a_thread_that_comes_and_goes_for_no_growth_and_one_that_stays_for_growth() -> (
    None
):
    """A worker thread that comes and goes (65, 67, 65, ...: an executor's, an encoder
    restart's) from the first minute to the last is not growth, whichever sample each minute
    began on; two more threads that stay are."""
    from bench.soak import judge

    coming_and_going = [65, 67, 65, 67, 65, 65, 65, 67, 67, 65, 67, 65, 67, 67, 65, 65, 65, 67]
    steady = judge(_soak(coming_and_going), warmup=0.0)
    assert (steady["threads_first"], steady["threads_last"], steady["verdict"]) == (67, 67, "PASS")
    staying = judge(_soak([65, 67] * 6 + [69] * 6), warmup=0.0)
    assert staying["threads_last"] == 69 and staying["verdict"] == "MISS"
