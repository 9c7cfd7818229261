"""Advice of the search-space editor: when a linear range should be a log one."""

from __future__ import annotations

from core.spec import ChoiceParam, FloatParam, IntParam
from core.spec.edit import range_advice


def test_a_linear_range_over_two_decades_gets_a_sentence_with_its_share() -> None:
    advice = range_advice([FloatParam("learning_rate", 0.001, 0.1)])
    sentence = advice["learning_rate"]
    assert "0.001 to 0.1 on a linear scale: 91% of that range is 0.01 or more" in sentence
    assert "between 0.001 and 0.01" in sentence and "set its scale to log" in sentence


def test_narrow_log_zero_based_and_choice_ranges_get_none() -> None:
    space = [
        FloatParam("dropout_rate", 0.2, 0.4),  # not even one decade
        FloatParam("learning_rate", 0.0001, 0.1, scale="log"),
        FloatParam("dropout_rate", 0.0, 0.5),  # starts at 0: no decades to speak of
        FloatParam("learning_rate", 0.001, 0.0999),  # just under two decades
        ChoiceParam("batch_size", (32, 64, 128)),
    ]
    assert range_advice(space) == {}


def test_integer_ranges_are_advised_too() -> None:
    advice = range_advice([IntParam("dense_units", 8, 1024, step=8)])
    assert advice["dense_units"].startswith("dense_units spans 8 to 1024 on a linear scale: 91%")
