"""iterate_batches / num_batches: coverage, determinism from the generator, drop_last."""

import numpy as np
import pytest

from convscope.data import iterate_batches, num_batches


@pytest.mark.parametrize("n, batch_size", [(0, 3), (1, 1), (10, 3), (12, 4), (5, 8)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_covers_every_index_once(n, batch_size, shuffle):
    rng = np.random.default_rng(0) if shuffle else None
    batches = list(iterate_batches(n, batch_size, rng))
    assert len(batches) == num_batches(n, batch_size)
    assert all(b.dtype == np.int64 for b in batches)
    assert all(len(b) == batch_size for b in batches[:-1])
    flat = np.concatenate(batches) if batches else np.zeros(0, np.int64)
    assert sorted(flat.tolist()) == list(range(n))
    if not shuffle:
        assert flat.tolist() == list(range(n))


def test_deterministic_for_a_seed_and_different_across_seeds():
    def order(seed):
        return np.concatenate(list(iterate_batches(100, 7, np.random.default_rng(seed))))
    np.testing.assert_array_equal(order(5), order(5))
    assert not np.array_equal(order(5), order(6))
    assert not np.array_equal(order(5), np.arange(100))


@pytest.mark.parametrize("n, batch_size, count, last", [(10, 3, 3, 3), (9, 3, 3, 3), (2, 3, 0, None)])
def test_drop_last(n, batch_size, count, last):
    batches = list(iterate_batches(n, batch_size, np.random.default_rng(1), drop_last=True))
    assert len(batches) == count == num_batches(n, batch_size, drop_last=True)
    if batches:
        assert len(batches[-1]) == last


def test_last_short_batch_is_kept():
    assert [len(b) for b in iterate_batches(10, 4)] == [4, 4, 2]
    assert num_batches(10, 4) == 3


@pytest.mark.parametrize("n, batch_size, error, fact", [
    (-1, 2, ValueError, "n must be an integer >= 0, got -1"),
    (5, 0, ValueError, "batch_size must be an integer >= 1, got 0"),
    (5, 2.0, TypeError, "batch_size must be an integer >= 1, got 2.0"),
    (3.5, 2, TypeError, "n must be an integer >= 0, got 3.5"),
    (True, 2, TypeError, "n must be an integer >= 0, got True"),
])
def test_rejects_bad_sizes(n, batch_size, error, fact):
    with pytest.raises(error, match=fact):
        iterate_batches(n, batch_size)                         # raises at the call, not at next()
    with pytest.raises(error, match=fact):
        num_batches(n, batch_size)


def test_rejects_a_seed_as_rng():
    with pytest.raises(TypeError, match="Generator"):
        iterate_batches(5, 2, rng=42)
