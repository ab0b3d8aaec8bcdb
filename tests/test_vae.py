import keras
import numpy as np
import pytest

from conftest import INPUT_SHAPE, small_vae, to_numpy
from keras_vae import likelihoods, networks, schedules
from keras_vae.models import VAE

LOGGED = ("loss", "reconstruction_loss", "kl_loss", "beta")


def test_compile_with_no_arguments_trains_and_lowers_the_loss(images):
    vae = small_vae()
    vae.compile()
    before = vae.evaluate(images, verbose=0, return_dict=True)
    history = vae.fit(images, epochs=6, batch_size=16, validation_data=(images[:128],), verbose=0).history
    after = vae.evaluate(images, verbose=0, return_dict=True)
    for key in LOGGED:
        assert key in history and f"val_{key}" in history
        assert np.all(np.isfinite(history[key]))
    assert np.all(np.diff(history["loss"]) < 0)
    assert after["loss"] < 0.85 * before["loss"]
    assert min(history["kl_loss"]) >= 0 and min(history["val_kl_loss"]) >= 0
    np.testing.assert_allclose(history["beta"], 1.0)
    # The loss is the ELBO's two parts with β = 1.
    np.testing.assert_allclose(
        history["val_loss"], np.add(history["val_reconstruction_loss"], history["val_kl_loss"]), rtol=1e-4
    )


def test_eager_mode_trains_too(images):
    vae = small_vae()
    vae.compile(run_eagerly=True, aggressive=True, max_inner_steps=2)
    history = vae.fit(images[:64], epochs=2, batch_size=32, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["encoder_steps"] == [2.0, 2.0]


def test_shapes_of_the_public_methods(images):
    vae = small_vae(latent_dim=3)
    z_mean, z_log_var = vae.encode(images[:5])
    assert to_numpy(z_mean).shape == (5, 3) and to_numpy(z_log_var).shape == (5, 3)
    assert to_numpy(vae.embed(images[:5])).shape == (5, 3)
    reconstruction = to_numpy(vae.reconstruct(images[:5]))
    assert reconstruction.shape == (5, *INPUT_SHAPE)
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    assert to_numpy(vae.decode(np.zeros((2, 3), "float32"))).shape == (2, *INPUT_SHAPE)
    samples = to_numpy(vae.sample(7))
    assert samples.shape == (7, *INPUT_SHAPE) and np.all(np.isfinite(samples))
    outputs = vae(images[:4])
    assert sorted(outputs) == ["decoded", "z", "z_log_var", "z_mean"]


def test_beta_schedule_is_applied_inside_the_step_and_logged(images):
    vae = small_vae()
    steps_per_epoch = len(images) // 64
    vae.compile(beta=schedules.LinearWarmup(4 * steps_per_epoch))
    history = vae.fit(images, epochs=4, batch_size=64, verbose=0).history
    beta = np.array(history["beta"])
    # Epoch means of a linear ramp over the four epochs: 1/8, 3/8, 5/8, 7/8.
    np.testing.assert_allclose(beta, [0.125 - 0.125 / steps_per_epoch + k * 0.25 for k in range(4)], atol=1e-4)
    assert int(to_numpy(vae.train_iterations)) == 4 * steps_per_epoch


def test_free_bits_raise_the_loss_but_kl_loss_stays_the_true_kl(images):
    vae = small_vae()
    vae.compile(free_bits=2.0)
    x = images[:64]
    outputs = vae(x, training=True)
    terms = {k: float(to_numpy(v)) for k, v in vae.loss_terms(x, outputs).items()}
    kl_per_dim = 0.5 * (
        to_numpy(outputs["z_mean"]) ** 2 + np.exp(to_numpy(outputs["z_log_var"])) - to_numpy(outputs["z_log_var"]) - 1
    )
    np.testing.assert_allclose(terms["kl_loss"], kl_per_dim.sum(-1).mean(), rtol=1e-4)
    clamped = np.maximum(kl_per_dim.mean(0), 2.0).sum()
    np.testing.assert_allclose(terms["loss"] - terms["reconstruction_loss"], clamped, rtol=1e-4)
    assert terms["loss"] - terms["reconstruction_loss"] > terms["kl_loss"]


def test_keras_round_trip_restores_class_outputs_and_training_state(images, tmp_path):
    vae = small_vae()
    vae.compile(beta=schedules.CosineWarmup(50, start=0.1), free_bits=0.05, aggressive=True, max_inner_steps=3)
    vae.fit(images, epochs=1, batch_size=64, verbose=0)
    vae.aggressive_mode.assign(0)  # as if the switch had ended aggressive mode
    path = tmp_path / "vae.keras"
    vae.save(path)
    restored = keras.models.load_model(path)
    assert type(restored) is VAE
    np.testing.assert_allclose(to_numpy(restored.embed(images[:8])), to_numpy(vae.embed(images[:8])), atol=1e-6)
    np.testing.assert_allclose(
        to_numpy(restored.reconstruct(images[:8])), to_numpy(vae.reconstruct(images[:8])), atol=1e-6
    )
    assert int(to_numpy(restored.train_iterations)) == int(to_numpy(vae.train_iterations)) > 0
    assert not restored.is_aggressive() and restored.aggressive
    assert float(to_numpy(restored.best_mutual_info)) == float(to_numpy(vae.best_mutual_info)) > -1e9
    assert restored.beta_schedule.get_config() == vae.beta_schedule.get_config()
    assert (restored.free_bits, restored.max_inner_steps) == (0.05, 3)
    for name in ("encoder_optimizer", "decoder_optimizer"):
        saved = getattr(vae.optimizer, name).variables
        loaded = getattr(restored.optimizer, name).variables
        assert [v.path for v in saved] == [v.path for v in loaded]
        for a, b in zip(saved, loaded):
            np.testing.assert_allclose(to_numpy(a), to_numpy(b))
    # Training goes on from the restored state.
    restored.fit(images, epochs=1, batch_size=64, verbose=0)


def test_get_config_round_trip_with_a_gaussian_likelihood():
    vae = small_vae(likelihood=likelihoods.Gaussian(scale=0.3, learn_scale="per_feature"))
    clone = VAE.from_config(vae.get_config())
    assert clone.latent_dim == vae.latent_dim and clone.seed == vae.seed
    assert clone.likelihood.get_config() == vae.likelihood.get_config()
    assert clone.encoder.get_config() == vae.encoder.get_config()


def test_learned_gaussian_scale_is_trained_with_the_decoder():
    x = np.random.default_rng(0).normal(size=(256, *INPUT_SHAPE)).astype("float32")
    vae = small_vae(likelihood=likelihoods.Gaussian(learn_scale="global"))
    vae.compile()
    vae.fit(x, epochs=1, batch_size=64, verbose=0)
    log_scale = vae.likelihood.log_scale
    assert not vae._is_encoder_variable(log_scale)
    assert float(to_numpy(log_scale)) != 0.0


class TinyEncoder(keras.Model):
    """A subclassed encoder: plugs in through the documented output contract."""

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.flatten = keras.layers.Flatten()
        self.mean = keras.layers.Dense(latent_dim)
        self.log_var = keras.layers.Dense(latent_dim)

    def call(self, x):
        h = self.flatten(x)
        return [self.mean(h), self.log_var(h)]


def test_custom_encoder_and_conv_decoder_plug_in(images):
    decoder = networks.conv_decoder((8, 8, 1), latent_dim=2, filters=(8, 4), dense_units=16)
    vae = VAE(TinyEncoder(2), decoder, latent_dim=2)
    vae.compile()
    x = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    history = vae.fit(x, epochs=3, batch_size=64, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert to_numpy(vae.sample(3)).shape == (3, 8, 8, 1)


def test_from_input_shape_builds_both_architectures():
    for architecture in ("mlp", "conv"):
        vae = VAE.from_input_shape((8, 8, 1), latent_dim=4, architecture=architecture)
        outputs = vae(np.zeros((2, 8, 8, 1), "float32"))
        assert to_numpy(outputs["decoded"]).shape == (2, 8, 8, 1)
    with pytest.raises(ValueError, match="divisible by 4"):
        VAE.from_input_shape((6, 6, 1), architecture="conv")
    with pytest.raises(ValueError, match="Unknown architecture"):
        VAE.from_input_shape((6, 6, 1), architecture="resnet")


def test_compile_rejects_what_a_vae_does_not_take():
    vae = small_vae()
    with pytest.raises(ValueError, match="own loss"):
        vae.compile(loss="mse")
    with pytest.raises(ValueError, match="free_bits"):
        vae.compile(free_bits=-1)
    with pytest.raises(ValueError, match="max_inner_steps"):
        vae.compile(max_inner_steps=0)


def test_encoder_that_breaks_the_contract_gets_a_clear_error():
    inputs = keras.Input(INPUT_SHAPE)
    encoder = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    vae = VAE(encoder, networks.mlp_decoder(INPUT_SHAPE, 3))
    with pytest.raises(ValueError, match=r"\[z_mean, z_log_var\]"):
        vae.embed(np.zeros((1, *INPUT_SHAPE), "float32"))


def test_train_steps_are_compiled(images):
    vae = small_vae()
    vae.compile()
    vae.fit(images[:64], epochs=1, batch_size=32, verbose=0)
    backend = keras.backend.backend()
    step = vae._part_steps["joint"] if backend != "torch" else None
    if backend == "jax":
        assert vae.jit_compile is True
        assert hasattr(step, "lower")  # a jax.jit-compiled function
    elif backend == "tensorflow":
        assert hasattr(step, "get_concrete_function")  # a tf.function
        assert vae.jit_compile is True  # XLA, which Keras leaves off on a CPU: the steps ran faster with it
    else:
        assert vae.jit_compile is False  # Keras runs PyTorch eagerly by default: torch.compile pays late


@pytest.mark.slow  # torch.compile takes about 30 s on 2 cores
@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch.compile is PyTorch's")
def test_jit_compile_on_torch_compiles_the_steps_and_trains(images):
    vae = small_vae()
    vae.compile(jit_compile=True)
    history = vae.fit(images[:64], epochs=2, batch_size=32, verbose=0).history
    assert hasattr(vae._part_steps["joint"], "_torchdynamo_orig_callable")  # torch.compile's wrapper
    assert np.all(np.isfinite(history["loss"])) and history["loss"][1] < history["loss"][0]


def test_mixed_bfloat16_trains_with_the_objective_in_float32(images):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        vae = small_vae()
    finally:
        keras.config.set_dtype_policy(previous)
    vae.compile()
    assert vae.encoder.layers[-1].compute_dtype == "bfloat16" and vae.likelihood_dtype == "float32"
    outputs = vae(images[:8])
    terms = vae.loss_terms(images[:8], outputs)
    assert all(keras.backend.standardize_dtype(terms[name].dtype) == "float32" for name in LOGGED)
    assert keras.backend.standardize_dtype(outputs["decoded"].dtype) == "float32"
    history = vae.fit(images, epochs=3, batch_size=32, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
    assert min(history["kl_loss"]) >= 0
    assert all(variable.dtype == "float32" for variable in vae.trainable_variables)


def test_train_part_on_batch_works_on_a_fresh_model(images):
    for vae in (small_vae(), VAE(TinyEncoder(2), networks.mlp_decoder(INPUT_SHAPE, 2))):
        vae.compile()
        for part in ("decoder", "encoder", "joint"):
            result = vae.train_part_on_batch(images[:32], part)
            assert np.all(np.isfinite(to_numpy(result["loss"] if isinstance(result, dict) else result)))
        assert int(to_numpy(vae.optimizer.encoder_optimizer.iterations)) == 2
        assert int(to_numpy(vae.optimizer.decoder_optimizer.iterations)) == 2


def test_fit_rejects_what_it_cannot_honour(images):
    vae = small_vae()
    vae.compile()
    with pytest.raises(ValueError, match="sample_weight"):
        vae.fit(images[:32], sample_weight=np.ones(32), verbose=0)
    vae.compile(aggressive=True)
    with pytest.raises(ValueError, match="validation_data instead"):
        vae.fit(images[:64], validation_split=0.25, verbose=0)
    with pytest.raises(ValueError, match="one-shot"):
        vae.fit((batch for batch in [images[:32]]), verbose=0)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "nb", "zinb"])
def test_initialize_decoder_bias_starts_the_decoder_at_the_data_average(likelihood):
    rng = np.random.default_rng(0)
    if likelihood in ("nb", "zinb"):
        x = rng.poisson(np.exp(rng.normal(2, 1.5, 12)), (256, 12)).astype("float32")
    else:
        x = (rng.random((256, 12)) < rng.random(12)).astype("float32")
    keras.utils.set_random_seed(0)
    vae = VAE.from_input_shape((12,), latent_dim=2, likelihood=likelihood)
    vae.compile()
    before = vae.evaluate(x, verbose=0, return_dict=True)["reconstruction_loss"]
    vae.initialize_decoder_bias(x)
    after = vae.evaluate(x, verbose=0, return_dict=True)["reconstruction_loss"]
    assert after < before
    decoded = to_numpy(vae.decoder(np.zeros((1, 2), "float32")))
    bias = to_numpy(vae.decoder.get_layer("likelihood_parameters").bias).reshape(decoded.shape[1:])
    expected = vae.likelihood.initial_decoded(x)
    np.testing.assert_allclose(bias, expected, rtol=1e-5, atol=1e-5)
    if likelihood == "bernoulli":  # the decoded mean at the bias alone is the mean pixel
        np.testing.assert_allclose(to_numpy(vae.likelihood.mean(bias)), np.clip(x.mean(0), 1e-4, 1 - 1e-4), atol=1e-5)
    if likelihood == "nb":  # proportions at the bias alone are the mean proportions
        proportions = to_numpy(vae.likelihood.mean(bias[None])) / vae.likelihood.library_size
        np.testing.assert_allclose(proportions[0], (x / x.sum(1, keepdims=True)).mean(0), rtol=1e-4)


def test_initialize_decoder_bias_refuses_a_decoder_it_cannot_set():
    encoder = networks.mlp_encoder((4,), 2, hidden_units=(8,))
    z = keras.Input((2,))
    decoder = keras.Model(z, keras.layers.Activation("linear")(keras.layers.Dense(4)(z)))
    vae = VAE(encoder, decoder, likelihood="gaussian")
    with pytest.raises(ValueError, match="set its bias yourself"):
        vae.initialize_decoder_bias(np.zeros((8, 4), "float32"))
