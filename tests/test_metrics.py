import math

import keras
import numpy as np

from conftest import to_numpy
from keras_vae.metrics import mutual_information


def test_mutual_information_is_near_zero_when_the_posterior_is_the_prior():
    # The estimate's noise here is 0.5 * sqrt(2 * latent_dim / batch) ≈ 0.02.
    zeros = np.zeros((4096, 4), "float32")
    mi = float(to_numpy(mutual_information(zeros, zeros, seed=keras.random.SeedGenerator(0))))
    assert abs(mi) < 0.1


def test_mutual_information_approaches_log_batch_for_a_sharp_informative_posterior():
    batch = 1024
    rng = np.random.default_rng(0)
    z_mean = rng.normal(scale=10.0, size=(batch, 4)).astype("float32")
    z_log_var = np.full((batch, 4), -8.0, "float32")
    mi = float(to_numpy(mutual_information(z_mean, z_log_var, seed=1)))
    # The bound log(batch) holds up to the noise of one draw of z per example,
    # 0.5 * sqrt(2 * latent_dim / batch) ≈ 0.044 here.
    assert abs(mi - math.log(batch)) < 0.2
