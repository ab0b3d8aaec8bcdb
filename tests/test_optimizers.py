import pathlib

import keras
import numpy as np
import pytest

from conftest import small_vae, to_numpy
from keras_vae.optimizers import RAdam
from keras_vae.trainers.optimizer import EncoderDecoderOptimizer


def test_compile_gives_each_part_its_own_optimizer_state():
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), encoder_optimizer=keras.optimizers.SGD(0.1))
    assert isinstance(vae.optimizer, EncoderDecoderOptimizer)
    assert isinstance(vae.optimizer.encoder_optimizer, keras.optimizers.SGD)
    assert isinstance(vae.optimizer.decoder_optimizer, keras.optimizers.Adam)
    default = small_vae()
    default.compile(optimizer="adam")
    assert default.optimizer.encoder_optimizer is not default.optimizer.decoder_optimizer


def test_learning_rate_reaches_both_optimizers(images):
    vae = small_vae()
    vae.compile()
    vae.optimizer.learning_rate = 0.01
    for optimizer in (vae.optimizer.encoder_optimizer, vae.optimizer.decoder_optimizer):
        np.testing.assert_allclose(float(to_numpy(optimizer.learning_rate)), 0.01)
    callback = keras.callbacks.LearningRateScheduler(lambda epoch: 0.005)
    history = vae.fit(images[:64], epochs=1, batch_size=32, verbose=0, callbacks=[callback]).history
    np.testing.assert_allclose(float(to_numpy(vae.optimizer.encoder_optimizer.learning_rate)), 0.005)
    # One optimizer to Keras's callbacks: one `learning_rate` log, as with any optimizer.
    assert history["learning_rate"] == [pytest.approx(0.005)]


def test_serialization_keeps_both_configurations():
    optimizer = EncoderDecoderOptimizer(keras.optimizers.SGD(0.1), keras.optimizers.AdamW(3e-4, weight_decay=0.01))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
    assert isinstance(restored.encoder_optimizer, keras.optimizers.SGD)
    assert isinstance(restored.decoder_optimizer, keras.optimizers.AdamW)
    assert restored.decoder_optimizer.weight_decay == 0.01


# ----------------------------------------------------------------------- RAdam
RADAM_STEPS, RADAM_LR, RADAM_EPSILON = 300, 0.01, 1e-8


def _least_squares():
    """The reference problem: 5 weights fitted to 32 random linear equations (`tests/data/radam_optax.txt`)."""
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(32, 5)).astype("float32")
    targets = rng.normal(size=(32,)).astype("float32")
    start = rng.normal(size=(5,)).astype("float32")
    return start, lambda w: (2 * inputs.T @ (inputs @ w - targets) / len(targets)).astype("float32")


@pytest.fixture(scope="module")
def radam_trajectory():
    """The weights after each of RADAM_STEPS steps of keras_vae's RAdam, and the start and gradient."""
    start, gradient = _least_squares()
    weights = keras.Variable(start.copy())
    optimizer = RAdam(RADAM_LR, epsilon=RADAM_EPSILON)
    optimizer.build([weights])
    trajectory = []
    for _ in range(RADAM_STEPS):
        optimizer.apply([gradient(to_numpy(weights))], [weights])
        trajectory.append(to_numpy(weights).copy())
    return np.array(trajectory), start, gradient


def test_radam_matches_torch_radam_step_by_step(radam_trajectory):
    import torch  # the reference implementation, installed with the torch backend

    trajectory, start, gradient = radam_trajectory
    weights = torch.tensor(start.copy(), requires_grad=True)
    optimizer = torch.optim.RAdam([weights], lr=RADAM_LR, eps=RADAM_EPSILON)
    reference = []
    for _ in range(RADAM_STEPS):
        weights.grad = torch.tensor(gradient(weights.detach().numpy()))
        optimizer.step()
        reference.append(weights.detach().numpy().copy())
    reference = np.array(reference)
    assert np.abs(reference[-1] - start).max() > 0.5  # the problem moves the weights far
    # Float32 on both sides: measured ≤ 3.4e-6 apart on all three backends.
    np.testing.assert_allclose(trajectory, reference, atol=2e-5, rtol=0)


def test_radam_matches_optax_radam_step_by_step(radam_trajectory):
    # optax.radam's trajectory on the same problem, recorded (optax is not a dependency).
    # They differ in float32 rounding of ρ_t (ρ∞ − ρ_t cancels) at the first rectified
    # steps, where r_t is steep: measured 1.1e-4 apart, as torch and optax are (1.2e-4).
    reference = np.loadtxt(pathlib.Path(__file__).parent / "data" / "radam_optax.txt", dtype="float32")
    trajectory = radam_trajectory[0]
    np.testing.assert_allclose(trajectory[:5], reference[:5], atol=1e-6, rtol=0)
    np.testing.assert_allclose(trajectory, reference, atol=5e-4, rtol=0)


def test_radam_takes_momentum_steps_until_the_variance_is_tractable(radam_trajectory):
    trajectory, start, gradient = radam_trajectory
    weights, momentum, beta_1 = start, np.zeros_like(start), 0.9
    for t in range(1, 8):
        momentum = beta_1 * momentum + (1 - beta_1) * gradient(weights)
        momentum_step = -RADAM_LR * momentum / (1 - beta_1**t)
        step = trajectory[t - 1] - weights
        if t <= 5:  # ρ_t ≤ 5 with β₂ = 0.999: SGD with bias-corrected momentum, no adaptive scaling
            np.testing.assert_allclose(step, momentum_step, rtol=1e-4, atol=1e-7)
        else:  # rectified: scaled by r_t / sqrt(v̂) per coordinate, much smaller at first (r_6 ≈ 0.03)
            assert np.abs(step).max() < 0.5 * np.abs(momentum_step).max()
        weights = trajectory[t - 1]


def test_radam_trains_a_vae_and_resumes_with_its_state_from_a_keras_file(images, tmp_path):
    vae = small_vae()
    vae.compile(optimizer=RAdam(3e-3, beta_2=0.99), encoder_optimizer=RAdam(1e-3))
    history = vae.fit(images[:128], epochs=3, batch_size=32, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    vae.save(tmp_path / "vae.keras")
    restored = keras.saving.load_model(tmp_path / "vae.keras")
    for part in ("encoder_optimizer", "decoder_optimizer"):
        original, loaded = getattr(vae.optimizer, part), getattr(restored.optimizer, part)
        assert isinstance(loaded, RAdam) and loaded.get_config() == original.get_config()
        assert len(loaded.variables) == len(original.variables) > 2
        for a, b in zip(original.variables, loaded.variables, strict=True):
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert restored.optimizer.decoder_optimizer.beta_2 == 0.99
    assert int(to_numpy(restored.optimizer.iterations)) == 12
