import itertools

import numpy as np
import pytest

from conftest import small_vae, to_numpy
from keras_vae import names
from keras_vae.trainers import aggressive
from keras_vae.trainers.aggressive import AggressiveTrainingSwitch


def snapshot(variables):
    return [to_numpy(v).copy() for v in variables]


def assert_same(before, after):
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def assert_changed(before, after):
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.fixture
def compiled_vae(images):
    vae = small_vae()
    vae.compile(aggressive=True)
    vae.fit(images[:64], epochs=1, batch_size=32, verbose=0)  # builds everything
    return vae


def test_encoder_step_leaves_decoder_weights_optimizer_metrics_and_beta_counter(compiled_vae, images):
    vae = compiled_vae
    decoder = snapshot(vae.decoder.variables)
    decoder_optimizer = snapshot(vae.optimizer.decoder_optimizer.variables)
    encoder = snapshot(vae.encoder.variables)
    encoder_iterations = int(to_numpy(vae.optimizer.encoder_optimizer.iterations))
    iterations = int(to_numpy(vae.train_iterations))
    metrics = snapshot(vae.metrics_variables)
    for _ in range(3):
        vae.train_part_on_batch(images[:32], names.ENCODER)
    assert_same(decoder, snapshot(vae.decoder.variables))
    assert_same(decoder_optimizer, snapshot(vae.optimizer.decoder_optimizer.variables))
    assert_same(metrics, snapshot(vae.metrics_variables))
    assert_changed(encoder, snapshot(vae.encoder.variables))
    assert int(to_numpy(vae.optimizer.encoder_optimizer.iterations)) == encoder_iterations + 3
    assert int(to_numpy(vae.train_iterations)) == iterations


def test_decoder_step_leaves_encoder_weights_and_optimizer(compiled_vae, images):
    vae = compiled_vae
    encoder = snapshot(vae.encoder.variables)
    encoder_optimizer = snapshot(vae.optimizer.encoder_optimizer.variables)
    decoder = snapshot(vae.decoder.variables)
    iterations = int(to_numpy(vae.train_iterations))
    vae.train_part_on_batch(images[:32], names.DECODER)
    assert_same(encoder, snapshot(vae.encoder.variables))
    assert_same(encoder_optimizer, snapshot(vae.optimizer.encoder_optimizer.variables))
    assert_changed(decoder, snapshot(vae.decoder.variables))
    assert int(to_numpy(vae.train_iterations)) == iterations + 1


def test_inner_loop_stops_when_the_windowed_loss_rises():
    losses = iter([5.0, 4.0, 3.0, 2.0, 3.0, 3.0] + [0.0] * 100)
    steps = aggressive.run_inner_encoder_steps(lambda batch: next(losses), itertools.repeat(None), 100, 2)
    assert steps == 6  # windows 4.5, 2.5, 3.0: stop after the third
    flat = aggressive.run_inner_encoder_steps(lambda batch: 1.0, itertools.repeat(None), 30, 10)
    assert flat == 30  # never rises: runs to max_inner_steps


def test_aggressive_fit_logs_its_mode_and_inner_steps(images):
    vae = small_vae()
    vae.compile(aggressive=True, max_inner_steps=12, inner_check_every=4, mi_patience=5)
    history = vae.fit(images, epochs=2, batch_size=64, validation_data=(images[:128],), verbose=0).history
    assert history["aggressive"] == [1.0, 1.0]
    assert all(4 <= steps <= 12 for steps in history["encoder_steps"])
    assert len(history["val_mutual_info"]) == 2 and np.all(np.isfinite(history["val_mutual_info"]))
    # The epoch logs count the model's iterations, not the inner encoder steps.
    assert int(to_numpy(vae.train_iterations)) == 2 * (len(images) // 64)
    assert int(to_numpy(vae.optimizer.decoder_optimizer.iterations)) == 2 * (len(images) // 64)
    assert int(to_numpy(vae.optimizer.iterations)) == 2 * (len(images) // 64)
    assert int(to_numpy(vae.optimizer.encoder_optimizer.iterations)) >= 4 * 2 * (len(images) // 64)
    assert np.all(np.isfinite(history["loss"])) and min(history["kl_loss"]) >= 0


def test_switch_turns_aggressive_mode_off_when_mutual_information_falls(compiled_vae, images):
    vae = compiled_vae
    switch = AggressiveTrainingSwitch(images[:256], patience=1, batch_size=64)
    switch.set_model(vae)
    vae.aggressive_mode.assign(1)  # the fixture's own fit may have ended it
    vae.best_mutual_info.assign(0.0)
    # A sharp, input-dependent posterior: I(x; z) close to its bound log(64).
    mean_kernel, _ = vae.encoder.get_layer("z_mean").weights
    mean_kernel.assign(np.random.default_rng(0).normal(scale=5.0, size=mean_kernel.shape))
    vae.encoder.get_layer("z_log_var").weights[1].assign(np.full((3,), -6.0, "float32"))
    first = {}
    switch.on_epoch_end(0, first)
    assert vae.is_aggressive() and first["aggressive"] == 1.0
    assert first["val_mutual_info"] > 2.0
    # The stopping rule's state is model state: it survives fit() calls and saves.
    np.testing.assert_allclose(float(to_numpy(vae.best_mutual_info)), first["val_mutual_info"], rtol=1e-6)
    # An encoder that ignores its input: posterior = prior, I(x; z) ≈ 0 < before.
    for variable in vae.encoder.trainable_variables:
        variable.assign(np.zeros(variable.shape, "float32"))
    second = {}
    switch.on_epoch_end(1, second)
    assert second["val_mutual_info"] < first["val_mutual_info"]
    assert not vae.is_aggressive()
    third = {}
    switch.on_epoch_end(2, third)
    assert third["aggressive"] == 0.0 and "val_mutual_info" not in third


def test_aggressive_mode_off_trains_both_parts_jointly(images):
    vae = small_vae()
    vae.compile(aggressive=False)
    vae.fit(images[:128], epochs=1, batch_size=32, verbose=0)
    assert int(to_numpy(vae.optimizer.encoder_optimizer.iterations)) == 4
    assert int(to_numpy(vae.optimizer.decoder_optimizer.iterations)) == 4


def test_rises_below_the_minimum_gain_end_aggressive_mode(compiled_vae, images, monkeypatch):
    vae = compiled_vae
    estimates = iter([1.0, 1.5, 1.52, 1.55])  # a clear rise, then hundredths of a nat per epoch
    monkeypatch.setattr(aggressive.latent, "latent_statistics", lambda *args: {"mutual_info": next(estimates)})
    switch = AggressiveTrainingSwitch(images[:64], patience=1, batch_size=64, min_gain=0.05)
    switch.set_model(vae)
    vae.aggressive_mode.assign(1)
    vae.best_mutual_info.assign(0.0)
    for epoch in range(2):
        switch.on_epoch_end(epoch, {})
        assert vae.is_aggressive()
    switch.on_epoch_end(2, {})  # 1.52 beats 1.5, by less than 0.05
    assert not vae.is_aggressive()
    # He et al.'s rule, on the same curve, would have kept it on through every epoch.
    assert aggressive.first_epoch_without_rise([1.0, 1.5, 1.52, 1.55]) is None


@pytest.mark.backend_independent
def test_he_et_al_rule_ends_at_the_first_epoch_not_above_the_previous():
    assert aggressive.first_epoch_without_rise([0.1, 0.5, 0.4, 0.9]) == 3
    assert aggressive.first_epoch_without_rise([0.1, 0.1]) == 2
    assert aggressive.first_epoch_without_rise([0.3]) is None
