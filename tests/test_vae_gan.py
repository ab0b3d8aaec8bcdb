"""VAEGAN (Larsen et al. 2016): three parts with their own optimizers, trained by fit, saved,
resumed and exported, with tiny networks on the suite's backend."""

import keras
import numpy as np
import pytest

import keras_vae
from conftest import INPUT_SHAPE, prototype_images, to_numpy
from keras_vae import names, networks
from keras_vae.models.vae_gan import balanced_steps, mlp_discriminator


def tiny_vae_gan(seed=0):
    keras.utils.set_random_seed(seed)
    return keras_vae.VAEGAN(
        networks.mlp_encoder(INPUT_SHAPE, 2, hidden_units=(16,)),
        networks.mlp_decoder(INPUT_SHAPE, 2, hidden_units=(16,)),
        mlp_discriminator(INPUT_SHAPE, hidden_units=(16, 8)),
        seed=seed,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VAE-GAN after 2 epochs of 3 iterations, its weights before, its history and a .keras file."""
    images = prototype_images(96)[0]
    model = tiny_vae_gan()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), beta=keras_vae.schedules.LinearWarmup(5), free_bits=0.1)
    model(images[:2])
    before = {part: [to_numpy(v).copy() for v in model._trainable_variables_of(part)] for part in model._step_parts}
    history = model.fit(images, epochs=2, batch_size=32, verbose=0, validation_data=(images[:32],)).history
    path = tmp_path_factory.mktemp("vae_gan") / "model.keras"
    model.save(path)
    return model, before, history, path, images


def test_fit_steps_each_part_with_its_own_optimizer_and_logs_every_term(trained):
    model, before, history, _, _ = trained
    for key in ("loss", "reconstruction_loss", "kl_loss", "beta", "feature_reconstruction_loss", "decoder_loss",
                "discriminator_loss", "real_cross_entropy", "fake_cross_entropy", "val_loss", "val_discriminator_loss"):  # fmt: skip
        assert key in history and np.all(np.isfinite(history[key])), key
    assert min(history["kl_loss"]) >= 0
    assert history["beta"][0] < history["beta"][1] <= 1.0  # the schedule reads the iteration counter
    assert int(to_numpy(model.train_iterations)) == 6
    assert isinstance(model.optimizer, keras_vae.MultiPartOptimizer)
    for part in model._step_parts:
        optimizer = model.optimizer.part_optimizers[part]
        assert int(to_numpy(optimizer.iterations)) == 6, part  # one step per iteration each (no balancing)
        after = model._trainable_variables_of(part)
        assert all(np.any(to_numpy(a) != b) for a, b in zip(after, before[part], strict=True)), part
    parts = [model._part_of(v) for v in model.trainable_variables]
    assert parts.count(names.DISCRIMINATOR) == len(model.discriminator.trainable_variables)
    assert parts.count(names.ENCODER) == len(model.encoder.trainable_variables)


def test_save_restores_every_optimizers_state_and_training_resumes(trained):
    model, _, _, path, images = trained
    restored = keras.saving.load_model(path)
    assert isinstance(restored, keras_vae.VAEGAN)
    assert restored.optimizer.part_names == (names.ENCODER, names.DECODER, names.DISCRIMINATOR)
    assert len(restored.optimizer.variables) == len(model.optimizer.variables) > 10
    for a, b in zip(model.optimizer.variables, restored.optimizer.variables, strict=True):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    np.testing.assert_allclose(restored.embed(images[:8]), model.embed(images[:8]), rtol=1e-5, atol=1e-6)
    history = restored.fit(images[:64], epochs=1, batch_size=32, verbose=0).history
    assert np.isfinite(history["discriminator_loss"][0])
    assert int(to_numpy(restored.train_iterations)) == 8
    assert int(to_numpy(restored.optimizer.part_optimizers[names.DISCRIMINATOR].iterations)) == 8


@pytest.mark.backend_independent
def test_balancing_pauses_the_winning_side():
    # pythae's equilibrium 0.68 and margin 0.4: cross-entropies under 0.28 mean the discriminator wins.
    assert balanced_steps(0.7, 0.7, 0.68, 0.4) == (True, True)
    assert balanced_steps(0.1, 0.7, 0.68, 0.4) == (True, False)
    assert balanced_steps(0.7, 1.5, 0.68, 0.4) == (False, True)
    assert balanced_steps(0.1, 1.5, 0.68, 0.4) == (True, True)  # both would pause: both train


@pytest.mark.backend_independent
def test_balanced_iterations_skip_the_steps_of_the_paused_part():
    model = tiny_vae_gan(seed=1)
    model.compile(balance=True)  # pythae's equilibrium 0.68 and margin 0.4
    for (real, fake), expected in (
        ((0.7, 0.6), [names.ENCODER, names.DECODER, names.DISCRIMINATOR]),
        ((0.2, 0.6), [names.ENCODER, names.DECODER]),
        ((0.7, 1.2), [names.ENCODER, names.DISCRIMINATOR]),
    ):
        steps = []

        def run_step(part, data, real=real, fake=fake, steps=steps):
            steps.append(part)
            return {"real_cross_entropy": np.float32(real), "fake_cross_entropy": np.float32(fake)}

        model._run_iteration(None, run_step, aggressive=False)
        assert steps == expected, (real, fake)


@pytest.mark.slow  # the export's own code is tested per backend in test_hub.py; here, that a VAEGAN goes through it
def test_export_writes_a_vaes_endpoints(trained, tmp_path):
    model, _, _, _, images = trained
    differences = keras_vae.export(model, tmp_path / "export")
    assert {"embed/z_mean", "decode/mean", "sample/mean"} <= set(differences)
    assert max(differences.values()) < 1e-4


@pytest.mark.backend_independent
def test_from_input_shape_builds_conv_networks_and_a_conv_discriminator():
    model = keras_vae.VAEGAN.from_input_shape((8, 8, 1), latent_dim=3)
    logit, features = model.discriminator(np.zeros((2, 8, 8, 1), "float32"))
    assert tuple(logit.shape) == (2, 1) and len(features.shape) == 4
    assert model.sample(3).shape == (3, 8, 8, 1)
    with pytest.raises(ValueError, match="aggressive"):
        model.compile(aggressive=True)


@pytest.mark.backend_independent
def test_the_train_command_refuses_aggressive_training_for_a_vae_gan(tmp_path):
    # test_optimizer_options.py trains `--model vae-gan` end to end.
    from click.testing import CliRunner

    from keras_vae.app.cli import main

    np.savez(tmp_path / "images.npz", x_train=prototype_images(64)[0])
    args = [
        "train",
        "--model",
        "vae-gan",
        "--dataset",
        tmp_path / "images.npz",
        "--aggressive",
        "--output",
        tmp_path / "run",
    ]
    refused = CliRunner().invoke(main, [str(a) for a in args])
    assert refused.exit_code == 2 and "--model vae-gan" in refused.output and len(refused.output.splitlines()) == 1
    assert not (tmp_path / "run").exists()
