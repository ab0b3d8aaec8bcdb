"""The gated PixelCNN decoder: causality (by gradient), conditioning on z, shapes, serialization."""

import keras
import numpy as np
import pytest

from conftest import to_numpy
from keras_vae import networks
from keras_vae.networks import GatedPixelCNNBlock, MaskedConv2D

SHAPE = (6, 6, 1)
LATENT_DIM = 3


def small_decoder(shape=SHAPE, seed=0):
    keras.utils.set_random_seed(seed)
    return networks.pixelcnn_decoder(shape, LATENT_DIM, filters=8, num_blocks=3)


def random_inputs(batch=1, shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((batch, LATENT_DIM)).astype("float32")
    x = (rng.random((batch, *shape)) < 0.5).astype("float32")
    return z, x


def gradient(scalar_fn, x):
    """d scalar_fn(x) / dx on the active backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = scalar_fn(x)
        return to_numpy(tape.gradient(value, x))
    if backend == "jax":
        import jax

        return to_numpy(jax.jit(jax.grad(scalar_fn))(jax.numpy.asarray(x)))  # one compilation, not one per op
    if backend == "torch":
        x = keras.ops.convert_to_tensor(x).requires_grad_()
        scalar_fn(x).backward()
        return to_numpy(x.grad)
    pytest.skip(f"no gradient helper for the {backend} backend")


def logit_jacobian(decoder, z, x):
    """`J[i, j]` = d logit_i / d x_j, pixels in raster order, for one image: all rows in one gradient.

    Example i of a batch of copies of x contributes its own logit i; examples do
    not interact, so the gradient with respect to example i is row i.
    """
    pixels = int(np.prod(x.shape[1:]))
    copies = np.repeat(x, pixels, axis=0)
    pick = keras.ops.convert_to_tensor(np.eye(pixels, dtype="float32"))
    z = keras.ops.convert_to_tensor(np.repeat(z, pixels, axis=0))

    def picked_logits(copies):
        logits = keras.ops.reshape(decoder([z, copies]), (pixels, pixels))
        return keras.ops.sum(logits * pick)

    return gradient(picked_logits, copies).reshape(pixels, pixels)


@pytest.mark.parametrize("shape", [(6, 6, 1), (5, 7, 1)])
def test_logit_depends_only_on_earlier_pixels(shape):
    decoder = small_decoder(shape)
    jacobian = logit_jacobian(decoder, *random_inputs(shape=shape))
    # Pixel j >= i (raster order) must not reach logit i, not even by rounding.
    assert np.all(jacobian[np.triu_indices_from(jacobian)] == 0)
    height, width, _ = shape
    row, column = 2, 3  # interior: neighbours on every side
    reached = jacobian[row * width + column].reshape(height, width)
    # Above, above-left, left, and above-right: the blind spot of one-stack PixelCNNs.
    for neighbour in [(row - 1, column), (row - 1, column - 1), (row, column - 1), (row - 1, column + 1)]:
        assert reached[neighbour] != 0, f"logit at {(row, column)} does not see pixel {neighbour}"
    assert jacobian[1, 0] != 0  # pixel 1 sees pixel 0 (mask A's left tap)


def test_z_reaches_every_pixel():
    decoder = small_decoder()
    z, x = random_inputs(batch=2)
    x[1] = x[0]
    logits = to_numpy(decoder([z, x]))
    assert np.all(logits[0] != logits[1])


def test_shapes_names_and_finite_logits():
    decoder = small_decoder()
    z, x = random_inputs(batch=4)
    logits = to_numpy(decoder([z, x]))
    assert logits.shape == (4, *SHAPE)
    assert np.all(np.isfinite(logits))
    assert [tensor.name for tensor in decoder.inputs] == ["z", "x"]
    assert tuple(decoder.inputs[0].shape[1:]) == (LATENT_DIM,)
    assert tuple(decoder.inputs[1].shape[1:]) == SHAPE
    last = decoder.layers[-1]
    assert last.name == "likelihood_parameters"
    assert isinstance(last, keras.layers.Conv2D) and tuple(last.kernel_size) == (1, 1)
    assert tuple(last.bias.shape) == (1,)
    assert [type(layer) for layer in decoder.layers].count(GatedPixelCNNBlock) == 3


def test_saved_model_gives_the_same_logits(tmp_path):
    decoder = small_decoder()
    z, x = random_inputs(batch=2)
    path = tmp_path / "decoder.keras"
    decoder.save(path)
    loaded = keras.saving.load_model(path)
    assert [tensor.name for tensor in loaded.inputs] == ["z", "x"]
    np.testing.assert_array_equal(to_numpy(loaded([z, x])), to_numpy(decoder([z, x])))


@pytest.mark.parametrize(
    "layer",
    [
        MaskedConv2D(4, 3, mask_type="A"),
        MaskedConv2D(4, (1, 5), mask_type="vertical", use_bias=False),
        GatedPixelCNNBlock(4, kernel_size=5, mask_type="A", name="block"),
    ],
    ids=["masked_conv", "masked_conv_vertical", "gated_block"],
)
def test_layer_config_round_trip(layer):
    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.mask_type == layer.mask_type


def test_masks():
    masks = {kind: MaskedConv2D(1, 3, mask_type=kind).mask[:, :, 0, 0] for kind in ("A", "B", "vertical")}
    np.testing.assert_array_equal(masks["A"], [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(masks["B"], [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(masks["vertical"], [[1, 1, 1], [1, 1, 1], [0, 0, 0]])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"output_shape": (6, 6)}, r"\(height, width, 1\)"),
        ({"output_shape": (6, 6, 3)}, "Binarize to one channel"),
        ({"output_shape": SHAPE, "condition_dim": 2}, "does not take a condition"),
        ({"output_shape": SHAPE, "kernel_size": 4}, "odd kernel size"),
        ({"output_shape": SHAPE, "num_blocks": 0}, "num_blocks >= 1"),
    ],
)
def test_bad_arguments_say_what_to_do(kwargs, message):
    with pytest.raises(ValueError, match=message):
        networks.pixelcnn_decoder(latent_dim=LATENT_DIM, **kwargs)


def test_bad_mask_types():
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2D(4, 3, mask_type="C")
    with pytest.raises(ValueError, match="pads 'same'"):
        MaskedConv2D(4, 3, padding="valid")
    with pytest.raises(ValueError, match="mask_type 'A'"):
        GatedPixelCNNBlock(4, mask_type="vertical")
