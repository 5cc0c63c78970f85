"""Learning-rate schedules are pure functions of the step."""

import math

import pytest

from convscope.optim import constant, cosine, make_schedule, step_decay, warmup


def test_cosine_endpoints_and_midpoint():
    lr = cosine(0.1, 100)
    assert lr(0) == pytest.approx(0.1)
    assert lr(50) == pytest.approx(0.05)
    assert lr(100) == pytest.approx(0.0, abs=1e-12)
    assert lr(500) == pytest.approx(0.0, abs=1e-12)


def test_cosine_matches_formula():
    lr = cosine(1.0, 10, min_lr=0.1)
    for t in range(11):
        assert lr(t) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * t / 10)))


def test_step_decay():
    lr = step_decay(1.0, 10, gamma=0.5)
    assert [lr(t) for t in (0, 9, 10, 25)] == pytest.approx([1.0, 1.0, 0.5, 0.25])


def test_warmup_ramps_linearly_then_hands_over():
    lr = warmup(constant(0.2), 4)
    assert [lr(t) for t in range(6)] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2])


def test_make_schedule_rejects_unknown_names():
    with pytest.raises(ValueError, match="cosine"):
        make_schedule("linear", 0.1, 10)
    with pytest.raises(ValueError, match="total_steps"):
        cosine(0.1, 0)
