"""A tuned threshold departs from its default only when a second measurement agrees, or,
where the second does not, a third does (kernels/_tuning_choices.confirmed, used by
kernels/_tuning.measure)."""

from __future__ import annotations

import math

import pytest

from kioku.kernels import _tuning, _tuning_probes

CHOICE = _tuning.CHOICES["MIN_ROWS"]  # default 4, "at_least"


def _levels(on_wins_from: float | None, gap: float = 0.5) -> list[dict]:
    """Levels where the guarded path is ``gap`` faster from ``on_wins_from`` rows on
    (slower below; never faster with ``None``)."""
    return [
        {"quantity": q, "on_s": 1.0 - (gap if on_wins_from and q >= on_wins_from else -gap),
         "off_s": 1.0}
        for q in CHOICE.candidates
    ]  # fmt: skip


def test_a_departure_the_second_measurement_does_not_repeat_keeps_the_default():
    value, levels = _tuning.confirmed(CHOICE, _levels(8), _levels(4))
    assert value == CHOICE.default
    assert [level["quantity"] for level in levels] == list(CHOICE.candidates)


def test_a_confirmed_departure_is_picked_from_both_measurements():
    first, second = _levels(8, gap=0.3), _levels(2, gap=0.1)
    value, levels = _tuning.confirmed(CHOICE, first, second)
    for a, b, both in zip(first, second, levels):
        assert both["on_s"] == pytest.approx(math.sqrt(a["on_s"] * b["on_s"]))
        assert both["off_s"] == pytest.approx(math.sqrt(a["off_s"] * b["off_s"]))
    assert value == _tuning.pick(CHOICE, levels) == 8  # the larger gap decides at 2 and 4
    assert _tuning.confirmed(CHOICE, _levels(8), _levels(8))[0] == 8


def test_a_third_measurement_breaks_the_tie():
    first, second = _levels(8, gap=0.3), _levels(4, gap=0.1)
    assert _tuning.pick(CHOICE, second) == CHOICE.default
    value, levels = _tuning.confirmed(CHOICE, first, second, _levels(4))
    assert value == CHOICE.default  # two of three keep it
    third = _levels(8, gap=0.3)
    value, levels = _tuning.confirmed(CHOICE, first, second, third)
    for a, b, c, all3 in zip(first, second, third, levels):
        assert all3["on_s"] == pytest.approx((a["on_s"] * b["on_s"] * c["on_s"]) ** (1 / 3))
        assert all3["off_s"] == pytest.approx((a["off_s"] * b["off_s"] * c["off_s"]) ** (1 / 3))
    assert value == _tuning.pick(CHOICE, levels) == 8  # picked from all three as one
    # two of three depart, but by too little measured as one: the default
    weak = _levels(8, gap=0.02)
    assert _tuning.confirmed(CHOICE, weak, _levels(4, gap=0.02), weak)[0] == CHOICE.default


def test_levels_of_other_sizes_keep_the_default():
    second = [dict(level, quantity=level["quantity"] * 2) for level in _levels(8)]
    assert _tuning.confirmed(CHOICE, _levels(8), second)[0] == CHOICE.default


@pytest.fixture
def scripted(monkeypatch):
    """Every probe answers from a script: MIN_ROWS's answers in turn, the others none
    (their defaults kept); returns the list of MIN_ROWS's remaining answers."""
    answers: list[list[dict]] = []

    def probe(choice, clock, scale):
        if choice.name == "MIN_ROWS":
            return answers.pop(0), None
        return [], "not measured here"

    for choice in _tuning.CHOICES.values():
        monkeypatch.setattr(_tuning_probes, choice.probe, probe)
    monkeypatch.setattr(_tuning, "apply", lambda *args, **kwargs: None)
    return answers


def test_measure_asks_twice_before_departing(scripted):
    scripted[:] = [_levels(8), _levels(4), _levels(4)]  # the second and third: the default
    entry = _tuning.measure()["choices"]["MIN_ROWS"]
    assert scripted == []  # measured three times
    assert entry["value"] == CHOICE.default
    assert entry["note"] == "8 measured first, not confirmed by a second or a third measurement"
    scripted[:] = [_levels(8), _levels(4, gap=0.1), _levels(8)]  # the third sides with the first
    entry = _tuning.measure()["choices"]["MIN_ROWS"]
    assert scripted == [] and entry["value"] == 8 and entry["note"] is None
    scripted[:] = [_levels(8), _levels(8)]
    entry = _tuning.measure()["choices"]["MIN_ROWS"]
    assert scripted == [] and entry["value"] == 8 and entry["note"] is None
    scripted[:] = [_levels(8), _levels(None)]  # both depart upwards: decided on both
    assert _tuning.measure()["choices"]["MIN_ROWS"]["value"] == 8


def test_the_default_and_a_dry_run_are_measured_once(scripted):
    scripted[:] = [_levels(4), _levels(8)]  # picks the default: no second measurement
    assert _tuning.measure()["choices"]["MIN_ROWS"]["value"] == CHOICE.default
    assert len(scripted) == 1
    scripted[:] = [_levels(8), _levels(None)]
    assert _tuning.measure(confirm=False)["choices"]["MIN_ROWS"]["value"] == 8
    assert len(scripted) == 1
