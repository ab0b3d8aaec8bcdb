"""Data-parallel training (keras_vae.distribute) on the backends' own engines.

A backend fixes its devices when it starts, and this suite's process has
started it with one CPU device: the two-device runs are subprocesses that
split the CPU first (`split_cpu`). Their posterior std is e^-15, so the draws
of ε (which differ between one and two devices on TensorFlow) do not matter
and one device and two must agree to float rounding; SGD, not Adam, so a
loss scaled wrongly for the replicas shows as a step of the wrong size.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from keras_vae import distribute

BACKEND = keras.backend.backend()
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
distributed_backends = pytest.mark.skipif(BACKEND == "torch", reason="Keras 3 has no distribution API for PyTorch")

# Trains on `data_parallel(devices)` (None: one device, no engine) and prints the losses and weights.
TRAIN = """
import contextlib, json, sys
import numpy as np, keras
sys.path.insert(0, {here!r})
from conftest import prototype_images, small_vae
from keras_vae import distribute, schedules

def train(engine, aggressive, epochs=2, part=slice(None), batch_size=64):
    x = prototype_images(256)[0][part]
    with engine.scope() if engine is not None else contextlib.nullcontext():
        vae = small_vae()
        vae(x[:2])
        log_var = vae.encoder.get_layer("z_log_var")
        log_var.bias.assign(np.full(log_var.bias.shape, -30.0, "float32"))
        vae.compile(
            optimizer=keras.optimizers.SGD(0.05),
            beta=schedules.LinearWarmup(6),
            free_bits=0.05,
            aggressive=aggressive,
            max_inner_steps=3,
            inner_check_every=1,
        )
        history = vae.fit(x, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0, validation_data=(x,) if aggressive else None)
    weights = [keras.ops.convert_to_numpy(v).tolist() for v in vae.trainable_variables]
    return {{k: [float(v) for v in values] for k, values in history.history.items()}}, weights
"""

EQUIVALENCE = (
    TRAIN
    + """
out = {{}}
engine = distribute.data_parallel(2)  # one per process: two tf.distribute strategies' collectives can collide
for aggressive in (False, True):
    one, w1 = train(None, aggressive)
    two, w2 = train(engine, aggressive)
    out[str(aggressive)] = dict(one=one, two=two, weight_diff=max(float(np.max(np.abs(np.subtract(a, b)))) for a, b in zip(w1, w2)))
print("RESULT" + json.dumps(out))
"""
)


def _run(script, env=None, timeout=240):
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout)


def _result(process):
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(next(line for line in process.stdout.splitlines() if line.startswith("RESULT"))[6:])


@distributed_backends
def test_two_devices_train_as_one_plain_and_aggressive():
    script = "from keras_vae import distribute\ndistribute.split_cpu(2)\n" + EQUIVALENCE.format(here=HERE)
    result = _result(_run(script))
    for mode in ("False", "True"):
        one, two = result[mode]["one"], result[mode]["two"]
        # Float rounding only (measured ≤ 1e-5 relative); a 2× step moves the loss by percents.
        for key in ("loss", "kl_loss", "reconstruction_loss", "beta") + (
            ("val_loss", "val_mutual_info", "encoder_steps") if mode == "True" else ()
        ):
            assert one[key] == pytest.approx(two[key], rel=1e-4), (mode, key)
        assert result[mode]["weight_diff"] < 1e-4
        assert one["beta"][0] < one["beta"][1] <= 1.0  # the warm-up counted the same iterations on both
    assert result["True"]["one"]["aggressive"][0] == 1.0


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@distributed_backends
def test_two_worker_processes_agree_on_the_weights(tmp_path):
    ports = [_free_port(), _free_port()]
    script = (
        TRAIN.format(here=HERE)
        + """
engine = distribute.data_parallel()
if keras.backend.backend() == "jax":
    # keras.distribution shards only tf.data input itself: each process brings its half.
    import jax
    engine.auto_shard_dataset = False
    half = jax.process_index()
    history, weights = train(engine, aggressive=False, epochs=1, part=slice(128 * half, 128 * (half + 1)), batch_size=32)
else:  # MultiWorkerMirroredStrategy shards the data
    history, weights = train(engine, aggressive=False, epochs=1)
print("RESULT" + json.dumps(dict(replicas=distribute.num_replicas(engine), loss=history["loss"], weights=weights)))
"""
    )
    workers = []
    for index in range(2):
        if BACKEND == "tensorflow":
            cluster = {
                "cluster": {"worker": [f"localhost:{port}" for port in ports]},
                "task": {"type": "worker", "index": index},
            }
            env = {"TF_CONFIG": json.dumps(cluster)}
        else:
            env = {
                "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"localhost:{ports[0]}",
                "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                "KERAS_DISTRIBUTION_PROCESS_ID": str(index),
            }
        env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
        )
    results = []
    for worker in workers:
        try:
            stdout, stderr = worker.communicate(timeout=240)
        finally:
            worker.kill()
        results.append(_result(subprocess.CompletedProcess(worker.args, worker.returncode, stdout, stderr)))
    assert [r["replicas"] for r in results] == [2, 2]
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-6)
    for a, b in zip(results[0]["weights"], results[1]["weights"], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


@distributed_backends
def test_more_devices_than_there_are_is_one_line():
    with pytest.raises(distribute.DistributeError, match="99 devices asked for, but this process sees 1"):
        distribute.data_parallel(99)


@pytest.mark.skipif(BACKEND != "torch", reason="the PyTorch refusal")
def test_torch_is_refused_in_one_line(tmp_path):
    with pytest.raises(distribute.DistributeError, match="no distribution API for the torch backend"):
        distribute.data_parallel()
    from keras_vae.app.cli import main

    result = CliRunner().invoke(main, ["train", "--distribute", "data-parallel", "--output", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "no distribution API for the torch backend" in result.output
    assert not (tmp_path / "run").exists()


@distributed_backends
def test_the_train_command_runs_data_parallel_with_a_last_batch_that_does_not_split_evenly(tmp_path):
    sys.path.insert(0, HERE)
    from conftest import prototype_images

    x = prototype_images(256)[0]
    np.savez(tmp_path / "images.npz", x_train=x[:192], x_test=x[192:])  # 173 training, 19 validation examples
    arguments = [
        "--dataset",
        str(tmp_path / "images.npz"),
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--latent-dim",
        "2",
        "--distribute",
        "data-parallel",
        "--devices",
        "2",
        "--aggressive",
        "--free-bits",
        "0.1",
        "--quiet",
    ]
    code = "import sys; from keras_vae.app.cli import main; sys.argv[0] = 'keras-vae'; main()"
    output = tmp_path / "run"
    result = _run_command([sys.executable, "-c", code, "train", *arguments, "--output", str(output)])
    if BACKEND == "jax":  # every batch is sharded: the last one must split too, which the command checks first
        assert result.returncode == 2 and "end in a batch of 13" in result.stderr, result.stderr[-2000:]
        assert not output.exists()
    else:  # tf.distribute gives the replicas slices of 10 and 9
        assert result.returncode == 0, result.stderr[-2000:]
        summary = json.loads((output / "summary.json").read_text())
        assert summary["epochs"] == 2 and np.isfinite(summary["test"]["negative_elbo"])
        assert len(os.listdir(output / "checkpoints")) == 2


def _run_command(command):
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
