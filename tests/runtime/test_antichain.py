"""MutableAntichain and ChangeBatch: counts, frontiers, compaction."""
from hypothesis import given
from hypothesis import strategies as st

from streamflow.progress import DONE, ChangeBatch, MutableAntichain


def test_frontier_is_least_positive_epoch() -> None:
    a = MutableAntichain()
    assert a.frontier == DONE
    a.update(5, 1)
    a.update(3, 2)
    assert a.frontier == 3
    a.update(3, -2)
    assert a.frontier == 5
    a.update(5, -1)
    assert a.frontier == DONE and a.is_empty()


def test_negative_counts_never_hold_the_frontier() -> None:
    a = MutableAntichain()
    a.update(2, -1)  # a consumer's -1 seen before the producer's +1
    assert a.frontier == DONE and not a.is_empty()
    a.update(2, 1)
    assert a.frontier == DONE and a.is_empty()


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(-3, 3)), max_size=40))
def test_frontier_matches_recomputation(updates: list[tuple[int, int]]) -> None:
    a = MutableAntichain()
    counts: dict[int, int] = {}
    for epoch, delta in updates:
        a.update(epoch, delta)
        counts[epoch] = counts.get(epoch, 0) + delta
        positive = [e for e, c in counts.items() if c > 0]
        assert a.frontier == (min(positive) if positive else DONE)


def test_change_batch_compacts() -> None:
    b = ChangeBatch()
    b.update(1, 0, +1)
    b.update(1, 0, -1)
    b.update(2, 3, +2)
    assert list(b) == [(2, 3, 2)]
    assert b.drain() == [(2, 3, 2)]
    assert not b
