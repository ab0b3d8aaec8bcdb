"""TensorFlow-Hub-style export: reloaded without keras-vae, every endpoint matches the model."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import INPUT_SHAPE, prototype_images, small_vae, to_numpy
from keras_vae import __version__, hub, likelihoods
from keras_vae.app.cli import main
from keras_vae.models import VAE

# Runs in a fresh process that cannot import keras_vae: what a user of the export has.
# Arguments: (export_dir, inputs_file, outputs_file) triples, one per export, so one process reloads them all.
RELOAD_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["keras_vae"] = None  # any import of keras_vae now fails
    import numpy as np
    import tensorflow as tf

    for export_dir, inputs_file, outputs_file in zip(*[iter(sys.argv[1:])] * 3):
        loaded = tf.saved_model.load(export_dir)
        inputs = np.load(inputs_file)
        outputs = {}
        for batch in sorted({key.split("/")[0] for key in inputs}):
            for name, signature in loaded.signatures.items():
                (input_name,) = signature.structured_input_signature[1]
                for key, value in signature(**{input_name: tf.constant(inputs[f"{batch}/{input_name}"])}).items():
                    outputs[f"{batch}/{name}/{key}"] = value.numpy()
            # The endpoints are methods of the loaded object too.
            outputs[f"{batch}/method/embed/z_mean"] = loaded.embed(tf.constant(inputs[f"{batch}/x"]))["z_mean"].numpy()
        np.savez(outputs_file, **outputs)
    """
)
BATCH_SIZES = (1, 5, 13)  # the batch dimension of an export is free


@pytest.fixture(scope="module")
def exported(tmp_path_factory, trained_vae):
    """A trained VAE per likelihood, each exported once: {likelihood: (vae, export_dir, differences)}."""
    gaussian = small_vae(latent_dim=3, likelihood=likelihoods.Gaussian(scale=0.5, learn_scale="per_feature"))
    gaussian.compile()
    gaussian.fit(prototype_images(64)[0], epochs=1, batch_size=32, verbose=0)
    exports = {}
    for name, vae in (("bernoulli", trained_vae), ("gaussian", gaussian)):
        export_dir = tmp_path_factory.mktemp(f"export-{name}") / "export"
        exports[name] = (vae, export_dir, hub.export(vae, export_dir))
    return exports


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory, exported):
    """Every export reloaded by one fresh process that cannot import keras_vae: {likelihood: (inputs, outputs)}."""
    scratch = tmp_path_factory.mktemp("reload")
    rng = np.random.default_rng(1)
    arguments, files = [], {}
    for name, (_, export_dir, _) in exported.items():
        inputs = {}
        for batch_size in BATCH_SIZES:
            inputs[f"{batch_size}/x"] = prototype_images(batch_size, seed=batch_size)[0]
            inputs[f"{batch_size}/z"] = rng.standard_normal((batch_size, 3)).astype("float32")
            inputs[f"{batch_size}/epsilon"] = rng.standard_normal((batch_size, 3)).astype("float32")
        np.savez(scratch / f"{name}-inputs.npz", **inputs)
        files[name] = inputs, scratch / f"{name}-outputs.npz"
        arguments += [export_dir, scratch / f"{name}-inputs.npz", scratch / f"{name}-outputs.npz"]
    script = scratch / "reload.py"
    script.write_text(RELOAD_SCRIPT)
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    environment.pop("KERAS_BACKEND", None)
    subprocess.run(
        [sys.executable, str(script), *map(str, arguments)],
        check=True,
        env=environment,
        cwd=scratch,  # not the checkout, whose keras_vae/ would be importable
    )
    return {name: (inputs, dict(np.load(outputs))) for name, (inputs, outputs) in files.items()}


@pytest.mark.parametrize(
    "likelihood, parameter", [("bernoulli", "logits"), ("gaussian", "log_scale")], ids=["bernoulli", "gaussian"]
)
def test_an_export_reloads_without_keras_vae_and_matches_every_endpoint(exported, reloaded, likelihood, parameter):
    vae, _, differences = exported[likelihood]
    expected_outputs = {"encode": {"z_mean", "z_log_var"}, "embed": {"z_mean"}}
    for name in ("decode", "reconstruct", "sample"):
        expected_outputs[name] = {"mean", parameter}
    assert set(differences) == {f"{name}/{key}" for name, keys in expected_outputs.items() for key in keys}
    assert all(0 <= value <= hub.ATOL for value in differences.values()), differences

    inputs, reloaded_outputs = reloaded[likelihood]
    for batch_size in BATCH_SIZES:
        outputs = {
            key.split("/", 1)[1]: value for key, value in reloaded_outputs.items() if key.startswith(f"{batch_size}/")
        }
        batch_inputs = {
            key.split("/", 1)[1]: value for key, value in inputs.items() if key.startswith(f"{batch_size}/")
        }
        assert set(outputs) == {f"{name}/{key}" for name, keys in expected_outputs.items() for key in keys} | {
            f"serving_default/{key}" for key in expected_outputs["encode"]
        } | {"method/embed/z_mean"}
        z_mean, z_log_var = (to_numpy(t) for t in vae.encode(batch_inputs["x"]))
        decoded = vae.decoder(batch_inputs["z"])
        expected = {
            "encode/z_mean": z_mean,
            "encode/z_log_var": z_log_var,
            "serving_default/z_mean": z_mean,
            "embed/z_mean": z_mean,
            "method/embed/z_mean": z_mean,
            "decode/mean": to_numpy(vae.decode(batch_inputs["z"])),
            "reconstruct/mean": to_numpy(vae.reconstruct(batch_inputs["x"])),
            "sample/mean": to_numpy(vae.decode(batch_inputs["epsilon"])),
        }
        if parameter == "logits":
            expected["decode/logits"] = to_numpy(decoded)
        else:
            expected["decode/log_scale"] = np.broadcast_to(to_numpy(vae.likelihood.log_scale), decoded.shape)
        for key, value in expected.items():
            assert outputs[key].shape == value.shape, key
            np.testing.assert_allclose(outputs[key], value, rtol=hub.RTOL, atol=hub.ATOL, err_msg=key)
        assert outputs["decode/mean"].shape == (batch_size, *INPUT_SHAPE)
        assert np.all(np.isfinite(outputs["sample/mean"]))


def test_the_metadata_asset_describes_the_export(tmp_path):
    vae = small_vae(latent_dim=3)  # never called: export builds it
    hub.export(vae, tmp_path / "export")
    metadata = hub.read_metadata(tmp_path / "export")
    assert metadata["keras_vae_version"] == __version__
    assert metadata["backend"] == keras.backend.backend()
    assert metadata["input_shape"] == list(INPUT_SHAPE) and metadata["latent_dim"] == 3
    assert list(metadata["endpoints"]) == list(hub.ENDPOINTS)
    assert metadata["endpoints"]["sample"] == {
        "inputs": {"epsilon": [None, 3]},
        "outputs": {"mean": [None, *INPUT_SHAPE], "logits": [None, *INPUT_SHAPE]},
    }
    # The config rebuilds the model (with keras-vae installed).
    rebuilt = keras.saving.deserialize_keras_object(metadata["model"])
    assert rebuilt.latent_dim == 3


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="keras.layers.TFSMLayer needs the TensorFlow backend"
)
def test_a_tfsm_layer_serves_an_endpoint_inside_a_functional_model(exported):
    vae, export_dir, _ = exported["bernoulli"]
    inputs = keras.Input(INPUT_SHAPE)
    codes = keras.layers.TFSMLayer(str(export_dir), call_endpoint="embed")(inputs)["z_mean"]
    scores = keras.layers.Dense(4, activation="softmax")(codes)
    classifier = keras.Model(inputs, [codes, scores])
    x = prototype_images(9)[0]
    predicted_codes, predicted_scores = classifier.predict(x, verbose=0)
    np.testing.assert_allclose(predicted_codes, to_numpy(vae.embed(x)), rtol=hub.RTOL, atol=hub.ATOL)
    assert predicted_scores.shape == (9, 4)
    np.testing.assert_allclose(predicted_scores.sum(axis=1), 1.0, rtol=1e-5)


# The export directory's lifecycle (atomic_directory) and the command are the same code on every backend.
@pytest.mark.backend_independent
def test_export_replaces_an_earlier_export_and_refuses_anything_else(tmp_path):
    vae = small_vae(latent_dim=3)
    vae(prototype_images(2)[0])
    hub.export(vae, tmp_path / "export")
    hub.export(vae, tmp_path / "export")
    assert hub.is_export(tmp_path / "export")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(hub.ExportError, match="is not an export"):
        hub.export(vae, tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def test_an_encoder_without_a_fixed_input_shape_is_refused_in_one_line():
    encoder_input = keras.Input((None, 1))
    hidden = keras.layers.GlobalAveragePooling1D()(encoder_input)
    encoder = keras.Model(encoder_input, [keras.layers.Dense(2)(hidden), keras.layers.Dense(2)(hidden)])
    decoder_input = keras.Input((2,))
    decoder = keras.Model(decoder_input, keras.layers.Dense(4)(decoder_input))
    vae = VAE(encoder, decoder)
    with pytest.raises(hub.ExportError, match="fixed size"):
        hub.export(vae, "never-written")
    assert not os.path.exists("never-written")


@pytest.mark.backend_independent
def test_a_failed_verification_leaves_no_export(tmp_path, monkeypatch):
    vae = small_vae(latent_dim=3)
    vae(prototype_images(2)[0])
    monkeypatch.setattr(hub, "ATOL", -1.0)  # no difference can pass
    with pytest.raises(hub.ExportError, match="differs from the model"):
        hub.export(vae, tmp_path / "export")
    assert os.listdir(tmp_path) == []


@pytest.mark.slow  # an MNIST-sized export and a fresh TensorFlow process running the example
def test_the_loading_example_needs_only_tensorflow(tmp_path):
    import tensorflow_datasets as tfds

    if not tfds.builder("mnist").is_prepared():
        pytest.skip("MNIST is not prepared under TFDS_DATA_DIR, and the example must not download it here")
    vae = VAE.from_input_shape((28, 28, 1), latent_dim=4, seed=0)
    vae(np.zeros((1, 28, 28, 1), "float32"))
    hub.export(vae, tmp_path / "export")
    example = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "load_export.py")
    code = (
        "import runpy, sys; sys.modules['keras_vae'] = None; "  # any import of keras_vae fails
        f"sys.argv = ['load_export.py', {str(tmp_path / 'export')!r}, '--output', {str(tmp_path / 'demo.png')!r}]; "
        f"runpy.run_path({example!r}, run_name='__main__')"
    )
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    environment.pop("KERAS_BACKEND", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "signatures ['decode', 'embed', 'encode', 'reconstruct', 'sample', 'serving_default']" in result.stdout
    assert (tmp_path / "demo.png").stat().st_size > 0


# ----------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch run directory, trained once: the export command only reads it."""
    tmp_path = tmp_path_factory.mktemp("run")
    x, labels = prototype_images(96)
    np.savez(tmp_path / "images.npz", x_train=x[:64], y_train=labels[:64], x_test=x[64:], y_test=labels[64:])
    output = tmp_path / "run"
    options = "--epochs 1 --batch-size 32 --latent-dim 2 --quiet".split()
    result = CliRunner().invoke(
        main, ["train", "--dataset", str(tmp_path / "images.npz"), *options, "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    return output


def invoke(*args):
    return CliRunner().invoke(main, ["export", *map(str, args)])


@pytest.mark.backend_independent
def test_the_export_command_writes_a_verified_export(run, tmp_path):
    result = invoke(run, tmp_path / "export")
    assert result.exit_code == 0, result.output
    assert "signatures: encode, embed, decode, reconstruct, sample" in result.output
    assert "verified" in result.output
    assert hub.read_metadata(tmp_path / "export")["latent_dim"] == 2
    assert not [name for name in os.listdir(tmp_path) if name.startswith((".tmp-", ".old-"))]

    again = invoke(run, tmp_path / "export")
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert invoke(run, tmp_path / "export", "--overwrite", "--quiet").exit_code == 0
    refused = invoke(run, run, "--overwrite")
    assert refused.exit_code == 2 and "not one (no saved_model.pb)" in refused.output


@pytest.mark.backend_independent
def test_an_export_failing_verification_or_interrupted_leaves_out_dir_as_it_was(run, tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "ATOL", -1.0)
    failed = invoke(run, tmp_path / "export")
    assert failed.exit_code == 1 and "differs from the model" in failed.output
    assert len(failed.output.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "export")

    monkeypatch.undo()
    assert invoke(run, tmp_path / "export").exit_code == 0
    before = sorted(os.listdir(tmp_path / "export"))

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hub, "verify", interrupt)  # once the new export is written, before it is renamed
    interrupted = invoke(run, tmp_path / "export", "--overwrite")
    assert interrupted.exit_code == 1 and "Aborted." in interrupted.output
    assert sorted(os.listdir(tmp_path / "export")) == before and hub.is_export(tmp_path / "export")
    assert not [name for name in os.listdir(tmp_path) if name.startswith((".tmp-", ".old-"))]


@pytest.mark.backend_independent
def test_an_export_killed_midway_leaves_no_out_dir(run, tmp_path):
    command = [sys.executable, "-m", "keras_vae_cli", "export", str(run), str(tmp_path / "export")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(f".tmp-export-*/{hub.STAGING_MARKER}")):
        assert process.poll() is None and time.monotonic() < deadline, "the export never started writing"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not os.path.exists(tmp_path / "export")
    (stale,) = tmp_path.glob(".tmp-export-*")
    assert not hub.is_export(stale)
    # A new export beside the killed one's leftovers succeeds, and removes them.
    assert invoke(run, tmp_path / "export").exit_code == 0
    assert not stale.exists() and hub.is_export(tmp_path / "export")
    assert json.loads((tmp_path / "export" / hub.METADATA).read_text())["endpoints"]["embed"]["outputs"] == {
        "z_mean": [None, 2]
    }


@pytest.mark.backend_independent
def test_stale_staging_directories_are_removed_by_the_next_export_and_never_taken_for_exports(tmp_path):
    vae = small_vae(latent_dim=3)
    vae(prototype_images(2)[0])
    hub.export(vae, tmp_path / "first")
    # What killed exports to `export` leave: a complete but unverified SavedModel, an empty
    # staging directory from before the marker, and an earlier export being swapped out.
    stale = tmp_path / ".tmp-export-k1lled00"
    shutil.copytree(tmp_path / "first", stale)
    (stale / hub.STAGING_MARKER).write_text("4242\n")
    unmarked = tmp_path / ".tmp-export-k1lled01"
    unmarked.mkdir()
    hour_ago = time.time() - 3600
    os.utime(unmarked, (hour_ago, hour_ago))
    swapped_out = tmp_path / ".old-export-k1lled02"
    shutil.copytree(tmp_path / "first", swapped_out / "export")
    # Not leftovers: a staging directory a live export holds, one of another target, and a fresh one.
    live = tmp_path / ".tmp-export-l1ve0000"
    shutil.copytree(tmp_path / "first", live)
    other_target = tmp_path / ".tmp-export-2-k1lled03"
    other_target.mkdir()
    fresh = tmp_path / ".tmp-export-fresh000"
    fresh.mkdir()
    assert not hub.is_export(stale) and not hub.is_export(live / "missing")

    with open(live / hub.STAGING_MARKER, "w") as held:
        assert hub._try_lock(held)
        assert not hub.is_export(live)
        hub.export(vae, tmp_path / "export")
        assert live.exists()
    assert hub.is_export(tmp_path / "export")
    assert not stale.exists() and not unmarked.exists() and not swapped_out.exists()
    assert other_target.exists() and fresh.exists()
    # The CLI's --overwrite check refuses a staging directory as a target.
    with pytest.raises(hub.ExportError, match="is not an export"):
        hub.export(vae, live)


@pytest.mark.backend_independent
def test_the_export_command_writes_onnx_files_and_says_in_one_line_how_to_get_onnx(run, tmp_path, monkeypatch):
    result = invoke(run, tmp_path / "export", "--format", "onnx")
    assert result.exit_code == 0, result.output
    assert "files: encode.onnx, embed.onnx, decode.onnx, reconstruct.onnx, sample.onnx" in result.output
    assert hub.read_metadata(tmp_path / "export")["format"] == "onnx" and hub.is_export(tmp_path / "export")

    monkeypatch.setattr(hub.onnx_format, "REQUIRED", ("onnx", "an_uninstalled_module"))
    missing = invoke(run, tmp_path / "other", "--format", "onnx")
    assert missing.exit_code == 2 and "pip install 'keras-vae[onnx]'" in missing.output
    assert len(missing.output.strip().splitlines()) == 1 and not os.path.exists(tmp_path / "other")
