import keras
import numpy as np
import pytest

from conftest import small_vae, to_numpy
from keras_vae import names, schedules

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


# ------------------------------------------------------------ learning rates
def learning_rates(schedule, steps):
    # One call per step: CosineDecay's warm-up branch takes scalar steps only.
    return np.array([float(to_numpy(schedule(int(step)))) for step in steps])


@pytest.mark.parametrize("mode", ["triangular", "triangular2"])
def test_cyclical_learning_rate_stays_within_its_bounds(mode):
    schedule = schedules.CyclicalLearningRate(1e-4, 1e-3, step_size=50, mode=mode)
    v = learning_rates(schedule, np.arange(0, 601, 3))
    assert v.min() >= 1e-4 * (1 - 1e-6) and v.max() <= 1e-3 * (1 + 1e-6)


def test_cyclical_learning_rate_draws_triangles():
    schedule = schedules.CyclicalLearningRate(1e-4, 1e-3, step_size=50)
    expected = {0: 1e-4, 25: 5.5e-4, 50: 1e-3, 75: 5.5e-4, 100: 1e-4, 150: 1e-3, 200: 1e-4, 10_050: 1e-3}
    np.testing.assert_allclose(learning_rates(schedule, expected), list(expected.values()), rtol=1e-5)
    # The step may be a tensor, as it is inside an optimizer's compiled step.
    np.testing.assert_allclose(float(to_numpy(schedule(keras.ops.convert_to_tensor(50, "int32")))), 1e-3, rtol=1e-6)
    halving = schedules.CyclicalLearningRate(1e-4, 1e-3, step_size=50, mode="triangular2")
    peaks = learning_rates(halving, [50, 150, 250])
    np.testing.assert_allclose(peaks - 1e-4, [9e-4, 4.5e-4, 2.25e-4], rtol=1e-5)


def test_one_cycle_rises_linearly_to_its_peak_then_falls_to_a_tiny_rate():
    schedule = schedules.one_cycle(1e-2, total_steps=1000)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    # Few points: on JAX each eager call of CosineDecay's ops.cond is slow.
    v = learning_rates(schedule, [0, 75, 150, 225, 300, 400, 600, 800, 1000])
    np.testing.assert_allclose(v[0], 1e-2 / 25, rtol=1e-5)
    np.testing.assert_allclose(v[2], (1e-2 / 25 + 1e-2) / 2, rtol=1e-5)  # linear warm-up: step 150 is halfway
    np.testing.assert_allclose(v[4], 1e-2, rtol=1e-5)  # step 300: the end of the warm-up
    np.testing.assert_allclose(v[-1], 1e-2 / 25 / 1e4, rtol=1e-4)  # step 1000
    assert np.all(np.diff(v[:5]) > 0) and np.all(np.diff(v[4:]) < 0)
    np.testing.assert_allclose(learning_rates(schedule, [5000]), v[-1], rtol=1e-6)  # stays at the end


def test_learning_rate_schedule_builds_each_named_schedule():
    assert names.LEARNING_RATE_SCHEDULES == ("constant", "cosine", "triangular", "one-cycle")
    build = schedules.learning_rate_schedule
    assert build("constant", 3e-4, 100, steps_per_epoch=10) == 3e-4
    cosine = build("cosine", 1e-3, 100)
    np.testing.assert_allclose(learning_rates(cosine, [0, 50, 100]), [1e-3, 5e-4, 0.0], atol=1e-9)
    warm = build("cosine", 1e-3, 100, warmup_steps=10)
    np.testing.assert_allclose(learning_rates(warm, [0, 5, 10, 100]), [0.0, 5e-4, 1e-3, 0.0], atol=1e-9)
    triangle = build("triangular", 1e-3, 1000, steps_per_epoch=25)
    # A quarter of the peak at the bottom; half-cycles of 4 epochs, rounded to whole cycles in 1000 steps.
    assert triangle.get_config() | {"name": None} == {
        "base_learning_rate": 2.5e-4,
        "max_learning_rate": 1e-3,
        "step_size": 100,
        "mode": "triangular",
        "name": None,
    }
    assert build("triangular", 1e-3, 1000).step_size == 500  # one cycle without epochs
    assert build("triangular", 1e-3, 1000, base_learning_rate=1e-5, step_size=10).base_learning_rate == 1e-5
    cycle = build("one-cycle", 1e-2, 100, steps_per_epoch=10, div_factor=10.0)
    np.testing.assert_allclose(learning_rates(cycle, [0, 30]), [1e-3, 1e-2], rtol=1e-5)


def test_bad_learning_rate_schedules_are_rejected():
    with pytest.raises(ValueError, match="constant.*cosine.*triangular.*one-cycle"):
        schedules.learning_rate_schedule("step", 1e-3, 100)
    with pytest.raises(ValueError, match="'warmup_fraction'.*takes 'warmup_steps'"):
        schedules.learning_rate_schedule("cosine", 1e-3, 100, warmup_fraction=0.3)
    with pytest.raises(ValueError, match="base_learning_rate ≤ max_learning_rate"):
        schedules.CyclicalLearningRate(1e-3, 1e-4, 10)
    with pytest.raises(ValueError, match="mode"):
        schedules.CyclicalLearningRate(1e-4, 1e-3, 10, mode="exp_range")
    with pytest.raises(ValueError, match="warmup_fraction"):
        schedules.one_cycle(1e-3, 100, warmup_fraction=1.0)


@pytest.mark.parametrize(
    "schedule",
    [schedules.CyclicalLearningRate(1e-4, 1e-3, 7, mode="triangular2"), schedules.one_cycle(1e-3, 40)],
    ids=["cyclical", "one-cycle"],
)
def test_learning_rate_schedules_serialize(schedule):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    np.testing.assert_allclose(learning_rates(restored, range(0, 50, 6)), learning_rates(schedule, range(0, 50, 6)))


@pytest.mark.parametrize("name", ["cosine", "triangular", "one-cycle"])
def test_a_vae_trains_with_each_learning_rate_schedule(name, images, tmp_path):
    x = images[:64]
    steps_per_epoch, epochs = 4, 3
    vae = small_vae()
    schedule = schedules.learning_rate_schedule(name, 1e-2, steps_per_epoch * epochs, steps_per_epoch=steps_per_epoch)
    vae.compile(optimizer=keras.optimizers.Adam(schedule))
    # Read between epochs: on JAX the variables are only synced then.
    rates = [float(to_numpy(vae.optimizer.learning_rate))]
    callback = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: rates.append(float(to_numpy(vae.optimizer.learning_rate)))
    )
    history = vae.fit(x, epochs=epochs, batch_size=16, verbose=0, callbacks=[callback]).history
    assert np.all(np.isfinite(history["loss"]))
    # The optimizers evaluate the schedule on their own step counters, in step.
    expected = learning_rates(schedule, range(0, steps_per_epoch * epochs + 1, steps_per_epoch))
    np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-12)
    assert len(set(np.round(rates, 12))) > 2
    np.testing.assert_allclose(float(to_numpy(vae.optimizer.encoder_optimizer.learning_rate)), rates[-1], rtol=1e-5)
    if name != "triangular":
        return
    # Saved inside the optimizers of a compiled model, the schedule comes back.
    path = tmp_path / "vae.keras"
    vae.save(path)
    restored = keras.models.load_model(path)
    for part in ("encoder_optimizer", "decoder_optimizer"):
        optimizer = getattr(restored.optimizer, part)
        loaded = keras.saving.deserialize_keras_object(optimizer.get_config()["learning_rate"])
        assert type(loaded) is schedules.CyclicalLearningRate and loaded.get_config() == schedule.get_config()
        np.testing.assert_allclose(float(to_numpy(optimizer.learning_rate)), rates[-1], rtol=1e-5)
    restored.fit(x, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_allclose(
        float(to_numpy(restored.optimizer.learning_rate)), learning_rates(schedule, [16])[0], rtol=1e-5
    )
