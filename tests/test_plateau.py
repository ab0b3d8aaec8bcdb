"""He et al. (2019)'s training recipe: the learning rate decayed on a plateau with the best weights reloaded,
early stopping, and the best model kept, in `model.fit` and in `keras-vae train`."""

import csv
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import keras_vae
from conftest import INPUT_SHAPE, prototype_images, small_vae, to_numpy
from keras_vae import callbacks
from keras_vae.app.cli import main
from keras_vae.callbacks.plateau import network_weights, optimizer_slots


class _ScriptedMonitor(keras.callbacks.Callback):
    """Logs `val_loss` from a script, one value per epoch, so that the plateaus fall where a test wants them."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]


class _Snapshots(keras.callbacks.Callback):
    """The network weights and optimizer slots at each epoch end, where this callback sits in the list."""

    def __init__(self):
        super().__init__()
        self.weights, self.slots = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([to_numpy(v) for v in network_weights(self.model)])
        self.slots.append([to_numpy(v) for v in optimizer_slots(self.model.optimizer)])


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _sgd_vae(learning_rate=0.1):
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.5, global_clipnorm=5.0))
    return vae


def test_a_plateau_reloads_the_best_weights_and_halves_every_parts_rate_until_the_last_decay(tmp_path):
    x = prototype_images(64)[0]
    vae = _sgd_vae()
    before, after = _Snapshots(), _Snapshots()
    decay = callbacks.DecayOnPlateau(patience=1, max_decays=2, best_weights_path=tmp_path / "best.npz")
    # Best at epochs 2 and 4 (from 1); no gain at epochs 3 and 5: two decays, then the stop.
    scripted = _ScriptedMonitor([3.0, 2.0, 4.0, 1.0, 5.0, 0.5, 0.5])
    history = vae.fit(x, epochs=7, batch_size=32, verbose=0, callbacks=[scripted, before, decay, after]).history
    assert len(history["loss"]) == 5  # stopped after the 2nd decay
    assert history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05])
    assert history["lr_decays"] == [0, 0, 1, 1, 2]
    # Each decay reloads the best epoch's weights and momentum; other epochs leave them as trained.
    assert _same(after.weights[2], before.weights[1]) and _same(after.slots[2], before.slots[1])
    assert _same(after.weights[4], before.weights[3]) and _same(after.slots[4], before.slots[3])
    assert not _same(after.weights[2], before.weights[2]) and _same(after.weights[3], before.weights[3])
    for part in vae.optimizer.part_optimizers.values():
        assert float(to_numpy(part.learning_rate)) == pytest.approx(0.025)
    # The training state is not rewound: 5 epochs of 2 iterations were counted.
    assert int(to_numpy(vae.train_iterations)) == 10 and int(to_numpy(vae.optimizer.iterations)) == 10
    assert {id(v) for v in network_weights(vae)} >= {id(v) for v in vae.trainable_weights}
    assert not {id(v) for v in network_weights(vae)} & {id(vae.train_iterations), id(vae.aggressive_mode)}

    # A resumed run: a new callback given the counters reads the best weights from the file.
    assert decay.get_state() == {"best": 1.0, "best_epoch": 3, "wait": 0, "decays": 2}
    resumed = callbacks.DecayOnPlateau(patience=1, max_decays=3, best_weights_path=tmp_path / "best.npz")
    resumed.set_state(json.loads(json.dumps(decay.get_state())))
    for variable in network_weights(vae):
        variable.assign(np.zeros(variable.shape, variable.dtype))
    history = vae.fit(x, epochs=1, batch_size=32, verbose=0, callbacks=[_ScriptedMonitor([9.0]), resumed]).history
    assert _same([to_numpy(v) for v in network_weights(vae)], before.weights[3])
    assert history["lr_decays"] == [3] and history["learning_rate"] == pytest.approx([0.025])
    assert vae.stop_training


@pytest.mark.backend_independent
def test_a_learning_rate_schedule_is_refused_in_one_line():
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(0.1, 10)))
    with pytest.raises(ValueError, match="is a schedule.*float learning rate"):
        vae.fit(prototype_images(32)[0], epochs=1, verbose=0, callbacks=[callbacks.DecayOnPlateau()])
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        callbacks.DecayOnPlateau(factor=2.0)


@pytest.mark.backend_independent
def test_no_decay_before_start_from_epoch_and_a_discriminator_is_a_network():
    vae = _sgd_vae()
    vae.build((None, *INPUT_SHAPE))
    vae.optimizer.build(vae.trainable_variables)
    lines = []
    decay = callbacks.DecayOnPlateau(patience=1, start_from_epoch=2, verbose=1, print_fn=lines.append)
    decay.set_model(vae)
    decay.on_train_begin()
    decays = []
    for epoch, value in enumerate([1.0, 2.0, 3.0]):
        logs = {"val_loss": value}
        decay.on_epoch_end(epoch, logs)
        decays.append(logs["lr_decays"])
    assert decays == [0, 0, 1] and float(to_numpy(vae.optimizer.learning_rate)) == pytest.approx(0.05)
    assert len(lines) == 1 and "Epoch 3:" in lines[0] and "weights of epoch 1" in lines[0] and "0.05" in lines[0]
    gan = keras_vae.VAEGAN.from_input_shape(INPUT_SHAPE, latent_dim=2, architecture="mlp")
    networks = {id(v) for v in network_weights(gan)}
    assert {id(v) for v in gan.discriminator.weights} <= networks and id(gan.train_iterations) not in networks


@pytest.mark.backend_independent
def test_early_stopping_resumed_from_a_history_stops_where_the_whole_run_would():
    stopper = callbacks.ResumedEarlyStopping(history={"val_loss": [3.0, 2.0, 2.5]}, patience=2)
    stopper.set_model(small_vae())
    stopper.model.stop_training = False
    stopper.on_train_begin()
    assert stopper.best == 2.0 and stopper.wait == 1 and not stopper.model.stop_training
    stopper.on_epoch_end(3, {"val_loss": 2.4})
    assert stopper.model.stop_training and stopper.stopped_epoch == 3


@pytest.mark.backend_independent  # the command line's wiring; the callbacks run on every backend above
def test_the_recipe_through_the_command_line_keeps_the_best_epoch_and_resumes_its_state(tmp_path):
    x, labels = prototype_images(192)
    data = tmp_path / "prototypes.npz"
    np.savez(data, x_train=x[:128], y_train=labels[:128], x_test=x[128:], y_test=labels[128:])
    run = tmp_path / "run"
    recipe = ["--optimizer", "sgd", "--learning-rate", "1.0", "--clip-norm", "5", "--momentum", "0.5"]
    # At the first epoch without a lower validation loss, the rate halves (the best weights reloaded) and training stops.
    recipe += ["--lr-decay-patience", "1", "--early-stopping", "1", "--keep-best"]
    options = ["--dataset", data, "--batch-size", "32", "--latent-dim", "2", "--quiet", *recipe]
    result = CliRunner().invoke(main, [str(a) for a in ["train", *options, "--epochs", "6", "--output", run]])
    assert result.exit_code == 0, result.output

    rows = list(csv.DictReader(open(run / "history.csv")))
    losses = [float(row["val_loss"]) for row in rows]
    summary = json.loads((run / "summary.json").read_text())
    best = int(np.argmin(losses)) + 1
    # SGD at rate 1.0 does not lower this validation loss every epoch: it stopped at its first plateau.
    assert len(rows) < 6 and best == len(rows) - 1
    assert summary["best_epoch"] == best and summary["best_val_loss"] == min(losses)
    assert f"model.keras is the best epoch, {best}" in result.output
    assert [float(row["learning_rate"]) for row in rows] == [1.0] * len(rows)  # the rate each epoch trained at
    assert [int(float(row["lr_decays"])) for row in rows] == [0] * best + [1]
    # model.keras is the best epoch's model: its iteration counter says so (the last checkpoint's is the run's).
    last = keras.saving.load_model(run / "checkpoints" / f"epoch-{len(rows):04d}" / "model.keras")
    kept = keras.saving.load_model(run / "model.keras")
    steps = int(to_numpy(last.train_iterations)) // len(rows)
    assert int(to_numpy(kept.train_iterations)) == best * steps

    # Resumed for one more epoch, the decay carries on from its counters (the rate is not reset to 1.0).
    result = CliRunner().invoke(main, ["train", "--resume", str(run), "--epochs", str(len(rows) + 1), "--quiet"])
    assert result.exit_code == 0, result.output
    resumed = list(csv.DictReader(open(run / "history.csv")))[-1]
    assert float(resumed["learning_rate"]) == 0.5 and int(float(resumed["lr_decays"])) >= 1
