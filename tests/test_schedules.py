import keras
import numpy as np
import pytest

from conftest import to_numpy
from keras_vae import schedules

STEPS = np.arange(0, 2000, 7)


def values(schedule):
    return np.array([float(to_numpy(schedule(step))) for step in STEPS])


def test_constant():
    np.testing.assert_allclose(values(schedules.Constant(0.5)), 0.5)
    assert isinstance(schedules.get(0.25), schedules.Constant)


@pytest.mark.parametrize("cls", [schedules.LinearWarmup, schedules.CosineWarmup])
def test_warmups_rise_monotonically_from_start_to_end(cls):
    schedule = cls(1000, start=0.1, end=0.9)
    v = values(schedule)
    assert np.all(np.diff(v) >= -1e-6)
    np.testing.assert_allclose(float(to_numpy(schedule(0))), 0.1, atol=1e-6)
    np.testing.assert_allclose(float(to_numpy(schedule(500))), 0.5, atol=1e-6)
    np.testing.assert_allclose(float(to_numpy(schedule(1000))), 0.9, atol=1e-6)
    np.testing.assert_allclose(float(to_numpy(schedule(10**6))), 0.9, atol=1e-6)


def test_linear_warmup_known_values():
    schedule = schedules.LinearWarmup(100)
    assert [round(float(to_numpy(schedule(s))), 6) for s in (0, 25, 50, 100, 150)] == [0.0, 0.25, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("ramp", ["linear", "cosine", "sigmoid"])
def test_cyclical_cycles_between_start_and_end(ramp):
    schedule = schedules.Cyclical(total_steps=1000, n_cycles=4, ratio=0.5, ramp=ramp, start=0.0, end=1.0)
    v = values(schedule)
    assert v.min() >= -1e-6 and v.max() <= 1 + 1e-6
    # Each cycle of 250 steps starts at 0, ramps for 125 steps and holds 1.
    for cycle_start in (0, 250, 500, 750):
        np.testing.assert_allclose(float(to_numpy(schedule(cycle_start))), 0.0, atol=1e-6)
        np.testing.assert_allclose(float(to_numpy(schedule(cycle_start + 125))), 1.0, atol=1e-6)
        np.testing.assert_allclose(float(to_numpy(schedule(cycle_start + 200))), 1.0, atol=1e-6)
        middle = float(to_numpy(schedule(cycle_start + 62)))
        assert 0.1 < middle < 0.9
    np.testing.assert_allclose(float(to_numpy(schedule(1000))), 1.0, atol=1e-6)
    np.testing.assert_allclose(float(to_numpy(schedule(1100))), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.Constant(0.3),
        schedules.LinearWarmup(10, start=0.2),
        schedules.CosineWarmup(10),
        schedules.Cyclical(100, n_cycles=2, ratio=0.25, ramp="sigmoid"),
    ],
)
def test_schedules_serialize(schedule):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    np.testing.assert_allclose(values(restored), values(schedule))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="ramp"):
        schedules.Cyclical(100, ramp="square")
    with pytest.raises(ValueError, match="ratio"):
        schedules.Cyclical(100, ratio=0.0)
    with pytest.raises(ValueError, match="≥ 0"):
        schedules.LinearWarmup(10, start=-1.0)
    with pytest.raises(ValueError, match="β schedule"):
        schedules.get("warmup")
