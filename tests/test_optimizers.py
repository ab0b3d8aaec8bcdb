import keras
import numpy as np
import pytest

from conftest import small_vae, to_numpy
from keras_vae.trainers.optimizer import EncoderDecoderOptimizer


def test_compile_gives_each_part_its_own_optimizer_state():
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), encoder_optimizer=keras.optimizers.SGD(0.1))
    assert isinstance(vae.optimizer, EncoderDecoderOptimizer)
    assert isinstance(vae.optimizer.encoder_optimizer, keras.optimizers.SGD)
    assert isinstance(vae.optimizer.decoder_optimizer, keras.optimizers.Adam)
    default = small_vae()
    default.compile(optimizer="adam")
    assert default.optimizer.encoder_optimizer is not default.optimizer.decoder_optimizer


def test_learning_rate_reaches_both_optimizers(images):
    vae = small_vae()
    vae.compile()
    vae.optimizer.learning_rate = 0.01
    for optimizer in (vae.optimizer.encoder_optimizer, vae.optimizer.decoder_optimizer):
        np.testing.assert_allclose(float(to_numpy(optimizer.learning_rate)), 0.01)
    callback = keras.callbacks.LearningRateScheduler(lambda epoch: 0.005)
    history = vae.fit(images[:64], epochs=1, batch_size=32, verbose=0, callbacks=[callback]).history
    np.testing.assert_allclose(float(to_numpy(vae.optimizer.encoder_optimizer.learning_rate)), 0.005)
    # One optimizer to Keras's callbacks: one `learning_rate` log, as with any optimizer.
    assert history["learning_rate"] == [pytest.approx(0.005)]


def test_serialization_keeps_both_configurations():
    optimizer = EncoderDecoderOptimizer(keras.optimizers.SGD(0.1), keras.optimizers.AdamW(3e-4, weight_decay=0.01))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
    assert isinstance(restored.encoder_optimizer, keras.optimizers.SGD)
    assert isinstance(restored.decoder_optimizer, keras.optimizers.AdamW)
    assert restored.decoder_optimizer.weight_decay == 0.01
