"""The README's Python snippets, run as written on the backend under test (with a few hundred MNIST images)."""

import os
import re
import warnings

import numpy as np
import pytest

import keras_vae
from keras_vae import datasets

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
SPLITS = {"train": "train[:512]", "test": "test[:256]"}


def readme_snippets():
    with open(README, encoding="utf-8") as file:
        return re.findall(r"```python\n(.*?)```", file.read(), flags=re.DOTALL)


def test_the_readme_snippets_run_and_every_inference_method_returns_numpy(tmp_path, monkeypatch):
    real_image_dataset = datasets.image_dataset

    def small_image_dataset(name, split, **kwargs):
        # The prepared TFDS data, fewer images; download=False so that a missing dataset fails at once.
        return real_image_dataset(name, SPLITS[split], **{**kwargs, "download": False})

    monkeypatch.setattr(datasets, "image_dataset", small_image_dataset)
    monkeypatch.chdir(tmp_path)
    snippets = readme_snippets()
    assert len(snippets) >= 2
    namespace = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for snippet in snippets:
            exec(compile(snippet, README, "exec"), namespace)
    assert not [w for w in caught if "shuffle" in str(w.message)], "fit on a tf.data pipeline warned about shuffle"

    vae = namespace["vae"]
    assert isinstance(vae, keras_vae.VAE) and os.path.exists(tmp_path / "vae.keras")
    x = next(iter(namespace["test"]))[:5]
    z_mean, z_log_var = vae.encode(x)
    outputs = {
        "sample": namespace["digits"],
        "encode/z_mean": z_mean,
        "encode/z_log_var": z_log_var,
        "embed": vae.embed(x),
        "decode": vae.decode(np.zeros((3, vae.latent_dim), "float32")),
        "reconstruct": vae.reconstruct(x),
    }
    for name, output in outputs.items():
        assert isinstance(output, np.ndarray), f"{name} returned {type(output).__name__}"
        array = np.asarray(output)
        assert np.isfinite(array).all() and np.min(array) == array.min(), name
    assert outputs["sample"].shape == (16, 28, 28, 1)
    assert outputs["embed"].shape == outputs["encode/z_mean"].shape == (5, 32)
    assert outputs["reconstruct"].shape == (5, 28, 28, 1) and outputs["decode"].shape == (3, 28, 28, 1)
    np.testing.assert_allclose(outputs["embed"], outputs["encode/z_mean"], rtol=1e-5, atol=1e-6)
    assert 0 <= outputs["sample"].min() and outputs["sample"].max() <= 1  # pixel probabilities


@pytest.mark.parametrize("method", ["encode", "embed", "reconstruct"])
def test_the_conditional_vae_inference_methods_return_numpy(method):
    x = np.random.default_rng(0).poisson(2.0, (6, 10)).astype("float32")
    inputs = {"x": x, "batch": np.arange(6) % 2}
    cvae = keras_vae.ConditionalVAE.from_input_shape((10,), {"batch": 2}, latent_dim=2, likelihood="poisson")
    outputs = getattr(cvae, method)(inputs)
    for output in outputs if isinstance(outputs, tuple) else (outputs,):
        assert isinstance(output, np.ndarray) and np.isfinite(output).all()
    sampled = cvae.sample(4, condition={"batch": 1})
    assert isinstance(sampled, np.ndarray) and sampled.shape == (4, 10)
