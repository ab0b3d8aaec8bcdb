"""ONNX exports, and exports of autoregressive models: named endpoints that match the model without keras-vae."""

import functools
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest

from conftest import small_vae, to_numpy
from keras_vae import hub, likelihoods, networks
from keras_vae.models import VAE, AutoregressiveVAE, ConditionalVAE

SMALL_NETWORKS = {
    "mlp": (
        functools.partial(networks.mlp_encoder, hidden_units=(16,)),
        functools.partial(networks.mlp_decoder, hidden_units=(16,)),
    ),
    "pixelcnn": (
        functools.partial(networks.conv_encoder, filters=(4,), dense_units=8),
        functools.partial(networks.pixelcnn_decoder, filters=4, num_blocks=2),
    ),
    "lstm": (
        functools.partial(networks.lstm_encoder, embedding_dim=4, units=8),
        functools.partial(networks.lstm_decoder, embedding_dim=4, units=8),
    ),
}
CONDITIONS = {"batch": 3, "depth": None}


def build(kind):
    """A tiny untrained model of each kind the export must handle."""
    keras.utils.set_random_seed(0)
    with pytest.MonkeyPatch.context() as patch:
        for architecture, builders in SMALL_NETWORKS.items():
            patch.setitem(networks.ARCHITECTURES, architecture, builders)
        if kind == "bernoulli-mlp":
            return small_vae(latent_dim=3)
        if kind == "gaussian-conv":
            shape, gaussian = (8, 8, 1), likelihoods.Gaussian(scale=0.5, learn_scale="per_feature")
            encoder = networks.conv_encoder(shape, 3, filters=(4,), dense_units=8)
            return VAE(encoder, networks.conv_decoder(shape, 3, filters=(4,), dense_units=8), likelihood=gaussian)
        if kind == "conditional-nb":
            return ConditionalVAE.from_input_shape((12,), CONDITIONS, latent_dim=3, likelihood="nb")
        if kind == "pixelcnn":
            return AutoregressiveVAE.from_input_shape((4, 4, 1), latent_dim=3, architecture="pixelcnn")
        return AutoregressiveVAE.from_input_shape(
            (5,), latent_dim=3, architecture="lstm", likelihood=likelihoods.Categorical(11)
        )


def expected_outputs(vae, inputs):
    """`{endpoint/output: array}` from the model's public methods (not the export's own functions)."""
    conditions = {name: inputs[name] for name in getattr(vae, "conditions", {})}
    x = {"x": inputs["x"], **conditions} if conditions else inputs["x"]
    z_mean, z_log_var = (to_numpy(t) for t in vae.encode(x))
    outputs = {"encode/z_mean": z_mean, "encode/z_log_var": z_log_var, "embed/z_mean": to_numpy(vae.embed(x))}
    if not isinstance(vae, AutoregressiveVAE):
        decode = functools.partial(vae.decode, condition=conditions) if conditions else vae.decode
        outputs["decode/mean"] = to_numpy(decode(inputs["z"]))
        outputs["sample/mean"] = to_numpy(decode(inputs["epsilon"]))
        outputs["reconstruct/mean"] = to_numpy(vae.reconstruct(x))
    return outputs


# Under JAX and PyTorch an ONNX export starts a TensorFlow process (several seconds each): slow
# there. CI runs slow tests once, on TensorFlow, where the three models export in-process.
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bernoulli-mlp", "gaussian-conv", "conditional-nb"])
def test_an_onnx_export_has_named_endpoints_that_onnxruntime_runs_like_the_model(tmp_path, kind):
    import onnxruntime  # the onnx extra, which the test command installs

    vae = build(kind)
    differences = hub.export(vae, tmp_path / "export", format="onnx")
    assert {key.split("/")[0] for key in differences} == set(hub.ENDPOINTS)
    assert all(np.isfinite(value) and value >= 0 for value in differences.values()), differences

    metadata = hub.read_metadata(tmp_path / "export")
    assert metadata["format"] == "onnx" and metadata["backend"] == keras.backend.backend()
    assert sorted(os.listdir(tmp_path / "export")) == sorted(
        [f"{name}.onnx" for name in hub.ENDPOINTS] + ["keras_vae.json"]
    )
    conditions = list(getattr(vae, "conditions", ()))
    rng = np.random.default_rng(3)
    for batch_size in (1, 7):
        inputs = hub.endpoints.example_inputs(vae, batch_size, rng)
        expected = expected_outputs(vae, inputs)
        for name, described in metadata["endpoints"].items():
            session = onnxruntime.InferenceSession(str(tmp_path / "export" / f"{name}.onnx"))
            input_names = [item.name for item in session.get_inputs()]
            output_names = [item.name for item in session.get_outputs()]
            assert input_names == [hub.ENDPOINT_INPUTS[name], *conditions] == list(described["inputs"])
            assert sorted(output_names) == sorted(described["outputs"])
            outputs = dict(zip(output_names, session.run(None, {key: inputs[key] for key in input_names})))
            for key, value in outputs.items():
                assert value.shape == (batch_size, *described["outputs"][key][1:]), f"{name}/{key}"
                assert np.all(np.isfinite(value)), f"{name}/{key}"
                if f"{name}/{key}" in expected:
                    np.testing.assert_allclose(
                        value, expected[f"{name}/{key}"], rtol=hub.RTOL, atol=hub.ATOL, err_msg=f"{name}/{key}"
                    )


# Runs in a fresh process that cannot import keras_vae: what a user of the export has.
RELOAD_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["keras_vae"] = None  # any import of keras_vae now fails
    import numpy as np
    import tensorflow as tf

    for export_dir, inputs_file, outputs_file in zip(*[iter(sys.argv[1:])] * 3):
        loaded, inputs = tf.saved_model.load(export_dir), np.load(inputs_file)
        outputs = {}
        for name in ("encode", "embed"):
            for key, value in loaded.signatures[name](x=tf.constant(inputs["x"])).items():
                outputs[f"{name}/{key}"] = value.numpy()
        outputs["signatures"] = np.array(sorted(loaded.signatures))
        np.savez(outputs_file, **outputs)
    """
)


@pytest.mark.slow  # a fresh TensorFlow process reloads the exports
def test_autoregressive_models_export_encode_and_embed_and_reload_without_keras_vae(tmp_path):
    arguments, models = [], {}
    rng = np.random.default_rng(0)
    for kind in ("pixelcnn", "lstm"):
        vae = build(kind)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            differences = hub.export(vae, tmp_path / kind)
        assert set(differences) == {"encode/z_mean", "encode/z_log_var", "embed/z_mean"}
        refusals = [str(warning.message) for warning in caught if "not exported" in str(warning.message)]
        assert len(refusals) == 3 and all("autoregressive" in line and "\n" not in line for line in refusals)
        metadata = hub.read_metadata(tmp_path / kind)
        assert list(metadata["endpoints"]) == ["encode", "embed"]
        assert sorted(metadata["refused_endpoints"]) == ["decode", "reconstruct", "sample"]
        inputs = hub.endpoints.example_inputs(vae, 7, rng)  # binary-valued or token ids
        np.savez(tmp_path / f"{kind}-inputs.npz", x=inputs["x"])
        models[kind] = vae, inputs
        arguments += [tmp_path / kind, tmp_path / f"{kind}-inputs.npz", tmp_path / f"{kind}-outputs.npz"]
    (tmp_path / "reload.py").write_text(RELOAD_SCRIPT)
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    environment.pop("KERAS_BACKEND", None)
    subprocess.run(
        [sys.executable, str(tmp_path / "reload.py"), *map(str, arguments)], check=True, env=environment, cwd=tmp_path
    )
    for kind, (vae, inputs) in models.items():
        reloaded = dict(np.load(tmp_path / f"{kind}-outputs.npz"))
        assert list(reloaded.pop("signatures")) == ["embed", "encode", "serving_default"]
        expected = expected_outputs(vae, inputs)
        assert set(reloaded) == set(expected)
        for key, value in expected.items():
            np.testing.assert_allclose(reloaded[key], value, rtol=hub.RTOL, atol=hub.ATOL, err_msg=f"{kind} {key}")
