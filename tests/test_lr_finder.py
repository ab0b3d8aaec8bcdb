import json
import math

import keras
import numpy as np
import pytest

from conftest import INPUT_SHAPE, small_vae, to_numpy
from keras_vae import lr_finder, plotting, schedules
from keras_vae.lr_finder import LRRangeTest, lr_range_test
from keras_vae.models import VAE


def compiled_vae(learning_rate=1e-3):
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return vae


def test_the_range_test_ramps_the_learning_rate_exponentially_and_records_each_batch(images):
    vae = compiled_vae(learning_rate=1e-3)
    result = lr_range_test(
        vae, images, min_learning_rate=1e-4, max_learning_rate=0.3, num_steps=30, batch_size=64, verbose=0
    )
    rates = np.array(result.learning_rates)
    assert len(rates) == len(result.losses) == len(result.smoothed_losses) == 30 and not result.diverged
    np.testing.assert_allclose([rates[0], rates[-1]], [1e-4, 0.3], rtol=1e-5)
    ratios = rates[1:] / rates[:-1]
    np.testing.assert_allclose(ratios, (0.3 / 1e-4) ** (1 / 29), rtol=1e-4)  # exponential: a constant ratio > 1
    assert np.all(np.isfinite(result.losses)) and np.all(np.isfinite(result.smoothed_losses))
    assert 1e-4 <= result.base_learning_rate < result.max_learning_rate <= 0.3
    assert result.smoothed_losses[-1] < result.smoothed_losses[0]  # it learned something
    # The optimizers get their learning rate back; the result goes to JSON as it is.
    for optimizer in (vae.optimizer.encoder_optimizer, vae.optimizer.decoder_optimizer):
        np.testing.assert_allclose(float(to_numpy(optimizer.learning_rate)), 1e-3, rtol=1e-6)
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["losses"] == result.losses


def test_the_range_test_stops_once_the_loss_diverges(images):
    result = lr_range_test(
        compiled_vae(), images, min_learning_rate=1e-3, max_learning_rate=1e4, num_steps=40, batch_size=64, verbose=0
    )
    assert result.diverged and len(result.losses) < 40
    assert len(result.learning_rates) == len(result.losses) == len(result.smoothed_losses)
    assert np.all(np.isfinite(result.losses[:-1]))  # the last step may be the one that overflowed
    assert 1e-3 <= result.base_learning_rate < result.max_learning_rate < result.learning_rates[-1]


def deterministic_vae():
    """σ ≈ 5e-5 and decoder logits near +2: the loss of a batch is a fixed number, and
    all-zero images cost about 70 nats more than all-one images."""
    x_in = keras.Input(INPUT_SHAPE)
    hidden = keras.layers.Dense(8, activation="tanh")(keras.layers.Flatten()(x_in))
    log_var = keras.layers.Dense(2, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(-20.0))
    encoder = keras.Model(x_in, [keras.layers.Dense(2)(hidden), log_var(hidden)])
    z_in = keras.Input((2,))
    logits = keras.layers.Dense(math.prod(INPUT_SHAPE), bias_initializer=keras.initializers.Constant(2.0))(z_in)
    decoder = keras.Model(z_in, keras.layers.Reshape(INPUT_SHAPE)(logits))
    return VAE(encoder, decoder, seed=0)


class TwoBatches(keras.utils.PyDataset):
    def __init__(self, *batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def test_each_recorded_loss_is_its_own_batch_loss_not_a_running_mean():
    zeros, ones = np.zeros((8, *INPUT_SHAPE), "float32"), np.ones((8, *INPUT_SHAPE), "float32")
    vae = deterministic_vae()
    vae.compile(optimizer=keras.optimizers.Adam())
    # Learning rates too small to move the weights.
    data = TwoBatches(zeros, ones)
    result = lr_range_test(vae, data, min_learning_rate=1e-12, max_learning_rate=1e-11, num_steps=6, verbose=0)
    expected = [float(to_numpy(vae.loss_terms(x, vae(x))["loss"])) for x in (zeros, ones)]
    assert expected[0] - expected[1] > 50  # a running mean would be far from either
    # Each pass reads both batches, in a shuffled order.
    for first, second in zip(result.losses[::2], result.losses[1::2]):
        np.testing.assert_allclose(sorted([first, second]), sorted(expected), rtol=1e-4)


def test_the_range_test_needs_a_compiled_model_with_a_settable_learning_rate(images):
    with pytest.raises(ValueError, match="Compile"):
        lr_range_test(small_vae(), images, num_steps=5, verbose=0)
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(schedules.one_cycle(1e-3, 100)))
    with pytest.raises(ValueError, match="float learning rate"):
        lr_range_test(vae, images, num_steps=5, verbose=0)
    with pytest.raises(ValueError, match="min_learning_rate < max_learning_rate"):
        lr_range_test(compiled_vae(), images, min_learning_rate=1.0, max_learning_rate=0.1, verbose=0)


@pytest.mark.backend_independent
def test_suggestions_follow_the_documented_rule():
    # Without smoothing there is no lag: flat, falling, lowest at step 7, rising.
    rates = 10.0 ** np.arange(-6, 4, dtype=float)
    losses = np.array([10.0, 10.0, 9.5, 8.0, 6.0, 4.0, 3.0, 2.0, 5.0, 50.0])
    # The base: the first loss a tenth of the fall (10 - 2) below the start, 8.0 ≤ 9.2.
    assert lr_finder._suggest(rates, losses, smoothing=0.0) == (rates[3], rates[7])
    # An average with weight 0.5 on the past is centred about one step back.
    assert lr_finder._suggest(rates, losses, smoothing=0.5) == (rates[2], rates[6])
    # A loss that never falls suggests nothing.
    base, top = lr_finder._suggest(rates, np.linspace(1.0, 2.0, 10), smoothing=0.0)
    assert math.isnan(base) and math.isnan(top)


@pytest.mark.backend_independent
def test_the_range_test_plot_is_written(tmp_path):
    import matplotlib.image

    rates = list(np.geomspace(1e-5, 1.0, 30))
    losses = [100.0 - 80.0 / (1.0 + math.exp(-(math.log10(r) + 3) * 3)) for r in rates[:-1]] + [math.nan]
    result = LRRangeTest(rates, losses, losses, base_learning_rate=1e-4, max_learning_rate=1e-2, diverged=True)
    for source, name in ((result, "result.png"), (result.to_dict(), "from_json.png")):
        path = plotting.plot_lr_range_test(source, str(tmp_path / name))
        assert matplotlib.image.imread(path).ndim == 3
