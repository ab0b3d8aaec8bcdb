"""The optimizer options of `keras-vae train` (--optimizer, moments, momentum) and batch-size
scaling of the learning rate (--reference-batch-size, --lr-scaling), end to end."""

import json
import math

import click
import keras
import numpy as np
import pytest
from click.testing import CliRunner

import keras_vae
from conftest import prototype_images
from keras_vae import optimizers
from keras_vae.app import build, config
from keras_vae.app.cli import main
from keras_vae.optimizers import RAdam, WarmupLearningRate, batch_size_scale

FAST = ["--epochs", "1", "--batch-size", "32", "--latent-dim", "2", "--quiet"]


@pytest.fixture
def images_npz(tmp_path):
    x, labels = prototype_images(160)
    x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))  # 8×8, for the conv networks of a VAE-GAN
    path = tmp_path / "prototypes.npz"
    np.savez(path, x_train=x[:128], y_train=labels[:128], x_test=x[128:], y_test=labels[128:])
    return str(path)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.backend_independent
def test_a_vae_gan_with_radam_its_moments_and_a_sqrt_scaled_rate_from_flags(tmp_path, images_npz):
    # One run for both (a run takes long): the optimizer options, and `--model vae-gan` end to end.
    run = tmp_path / "radam"
    result = invoke(
        "train", "--model", "vae-gan", "--dataset", images_npz, *FAST, "--optimizer", "radam", "--beta-1", "0.8", "--beta-2", "0.99",
        "--epsilon", "1e-6", "--learning-rate", "0.002", "--reference-batch-size", "8", "--lr-scaling", "sqrt",
        "--output", run,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = 0.002 * math.sqrt(32 / 8)
    assert "conv VAE-GAN" in result.output  # conv networks by default on images
    assert "radam, learning rate 0.004 (sqrt scaling of 0.002 from batch size 8 to 32, with warm-up)" in result.output
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["resolved_learning_rate"] == pytest.approx(expected)
    assert (saved["optimizer"], saved["beta_1"], saved["beta_2"], saved["epsilon"]) == ("radam", 0.8, 0.99, 1e-6)
    model = keras.saving.load_model(run / "model.keras")
    assert isinstance(model, keras_vae.VAEGAN)
    optimizer = model.optimizer.part_optimizers["decoder"]
    assert isinstance(optimizer, RAdam) and isinstance(model.optimizer.discriminator_optimizer, RAdam)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.8, 0.99, 1e-6)
    # Warm-up over 5% of the 4 steps (one step), then the scaled rate.
    schedule = optimizer._learning_rate
    assert isinstance(schedule, WarmupLearningRate) and schedule.warmup_steps == 1
    assert float(keras.ops.convert_to_numpy(schedule(3))) == pytest.approx(expected)
    # config.json is a config file: the recorded resolved rate is read as no option.
    defaults = config.file_defaults(str(run / "config.json"), main.commands, "train")
    assert defaults["optimizer"] == "radam" and "resolved_learning_rate" not in defaults


@pytest.mark.backend_independent
def test_sgd_with_nesterov_momentum_and_a_linear_scaled_rate_from_a_config_file(tmp_path, images_npz):
    path = tmp_path / "sgd.toml"
    path.write_text(
        f'[train]\ndataset = "{images_npz}"\noptimizer = "sgd"\nmomentum = 0.9\nnesterov = true\n'
        "learning-rate = 0.01\nreference-batch-size = 64\nbatch-size = 32\n"
    )
    # The keys are the flags' names; the train command turns them into this config.
    context = main.commands["train"].make_context("train", ["--config", str(path)], parent=click.Context(main))
    train_config = config.TrainConfig.from_options(context.params)
    train_config.check()
    assert build.resolved_learning_rate(train_config) == pytest.approx(0.005)
    optimizer = build.optimizer(train_config, total_steps=100, steps_in_epoch=10)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert (optimizer.momentum, optimizer.nesterov) == (0.9, True)
    assert optimizer._learning_rate.warmup_steps == 5
    assert float(keras.ops.convert_to_numpy(optimizer._learning_rate(50))) == pytest.approx(0.005)


@pytest.mark.backend_independent
def test_adam_and_adamw_take_the_moment_options():
    for name, expected in (("adam", keras.optimizers.Adam), ("adamw", keras.optimizers.AdamW)):
        optimizer = optimizers.get(name, learning_rate=0.01, beta_1=0.5, beta_2=0.9, epsilon=1e-5)
        assert type(optimizer) is expected
        assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.5, 0.9, 1e-5)


BAD_COMBINATIONS = {
    "moments with sgd": (["--optimizer", "sgd", "--beta-1", "0.5"], ["--beta-1", "--optimizer sgd", "adam"]),
    "epsilon with sgd": (["--optimizer", "sgd", "--epsilon", "1e-4"], ["--epsilon", "drop it"]),
    "momentum with adam": (["--momentum", "0.9"], ["--momentum", "--optimizer adam", "--optimizer sgd"]),
    "nesterov with radam": (["--optimizer", "radam", "--nesterov"], ["--nesterov", "--optimizer sgd"]),
    "nesterov without momentum": (["--optimizer", "sgd", "--nesterov"], ["--nesterov", "--momentum"]),
    "a beta of 1": (["--beta-2", "1"], ["--beta-2"]),
    "scaling without a reference": (["--lr-scaling", "sqrt"], ["--lr-scaling", "--reference-batch-size"]),
    "the removed --scale-learning-rate": (["--scale-learning-rate"], ["--reference-batch-size N --lr-scaling linear"]),
    "devices without data parallelism": (["--devices", "2"], ["--devices", "--distribute data-parallel"]),
}


@pytest.mark.backend_independent
@pytest.mark.parametrize("case", list(BAD_COMBINATIONS))
def test_refused_optimizer_combinations_get_one_line_and_exit_code_2(tmp_path, images_npz, case):
    args, fragments = BAD_COMBINATIONS[case]
    result = invoke("train", "--dataset", images_npz, *FAST, *args, "--output", tmp_path / "run")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.backend_independent
def test_batch_size_scaling_rules():
    assert batch_size_scale(512, 128, "linear") == 4.0
    assert batch_size_scale(512, 128, "sqrt") == 2.0
    assert batch_size_scale(64, 256, "sqrt") == 0.5
    with pytest.raises(ValueError, match="linear"):
        batch_size_scale(64, 256, "cubic")


def test_warmup_ramps_any_rate_up_and_round_trips():
    cosine = keras.optimizers.schedules.CosineDecay(1.0, decay_steps=100)
    schedule = WarmupLearningRate(cosine, warmup_steps=4)
    rates = [float(keras.ops.convert_to_numpy(schedule(step))) for step in range(6)]
    expected = [float(keras.ops.convert_to_numpy(cosine(step))) * min(1, (step + 1) / 4) for step in range(6)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert rates[0] == pytest.approx(0.25) and rates[1] < rates[2] < rates[3]
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert float(keras.ops.convert_to_numpy(restored(1))) == pytest.approx(rates[1])
    constant = WarmupLearningRate(0.1, 10)
    assert float(keras.ops.convert_to_numpy(constant(4))) == pytest.approx(0.05)
    assert WarmupLearningRate.from_config(constant.get_config()).learning_rate == 0.1
