"""An export read by TensorFlow Hub's `KerasLayer` inside a tf-keras model, as its consumers do (the `hub` extra)."""

import numpy as np
import pytest

import keras_vae

pytestmark = pytest.mark.backend_independent


def test_hub_keras_layer_serves_the_embed_signature_inside_a_tf_keras_model(tmp_path):
    import tensorflow_hub  # the hub extra, which the test command installs
    import tf_keras

    vae = keras_vae.VAE.from_input_shape((6,), latent_dim=2, seed=0)
    x = np.random.default_rng(0).random((7, 6)).astype("float32")
    vae.embed(x)  # builds it
    path = str(tmp_path / "export")
    keras_vae.export(vae, path)

    model = tf_keras.Sequential(
        [tf_keras.Input((6,)), tensorflow_hub.KerasLayer(path, signature="embed", output_key="z_mean")]
    )
    codes = model.predict(x, verbose=0)
    assert codes.shape == (7, 2)
    np.testing.assert_allclose(codes, vae.embed(x), rtol=1e-5, atol=1e-6)
