"""What `keras-vae sample` writes: samples from the prior, reconstructions, and a latent interpolation."""

import os

import keras
import numpy as np

from keras_vae import plotting
from keras_vae.app.runs import RunError, is_image
from keras_vae.files import atomic_path


def write_samples(vae, datasets, output_dir, num_samples=64, interpolate=(0, 1), steps=10, file_format=None, seed=0):
    """Samples from the prior, reconstructions, and a latent interpolation between two test examples.

    Writes `samples`, `reconstructions` and `interpolation` into `output_dir` as
    PNG grids, `.npy` arrays or (text) sentences, atomically; returns their paths.
    """
    is_text = datasets.vocabulary is not None
    file_format = file_format or ("txt" if is_text else "png")
    if file_format == "png" and not is_image(datasets.input_shape):
        raise RunError(
            f"examples of shape {datasets.input_shape} are not images: pass --format {'txt' if is_text else 'npy'}."
        )
    if file_format == "txt" and not is_text:
        raise RunError(f"{datasets.name} is not text: pass --format png or npy.")
    inputs, _ = datasets.probe(max(16, max(interpolate) + 1))
    first, second = interpolate
    # A conditional VAE's inputs are a dict of x and the conditions: its samples take the
    # conditions of the test examples in turn, and the interpolation those of the first.
    x = inputs["x"] if datasets.conditions else inputs
    if max(interpolate) >= len(x):
        raise RunError(f"--interpolate {first} {second}: the test set has only {len(x)} examples.")
    to_numpy = keras.ops.convert_to_numpy
    examples = lambda index: keras.tree.map_structure(lambda array: array[index], inputs)  # noqa: E731
    if datasets.conditions:
        conditions = {name: np.resize(inputs[name], num_samples) for name in datasets.conditions}
        samples = to_numpy(vae.sample(num_samples, condition=conditions, seed=seed))
        line = interpolation(
            vae, examples([first, second]), steps, {name: inputs[name][first] for name in datasets.conditions}
        )
    else:
        samples = to_numpy(vae.sample(num_samples, seed=seed))
        line = interpolation(vae, examples([first, second]), steps)
    reconstructions = to_numpy(vae.reconstruct(examples(slice(0, 16))))
    outputs = {
        "samples": (samples, "samples from the prior"),
        "reconstructions": (
            np.concatenate([x[:8], reconstructions[:8], x[8:16], reconstructions[8:16]]),
            "inputs above reconstructions",
        ),
        "interpolation": (np.concatenate([x[[first]], line, x[[second]]]), f"test example {first} → {second}"),
    }
    paths = []
    for name, (images, title) in outputs.items():
        path = os.path.join(output_dir, f"{name}.{file_format}")
        if file_format == "txt":
            lines = datasets.vocabulary.decode(images)
            if name == "reconstructions":  # inputs above reconstructions, as pairs
                lines = [
                    f"{a}\n  → {b}"
                    for a, b in zip(datasets.vocabulary.decode(x[:16]), lines[8:16] + lines[24:32], strict=False)
                ]
            with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as file:
                file.write(f"# {title}\n" + "\n".join(lines) + "\n")
        elif file_format == "npy":
            with atomic_path(path) as temporary:
                np.save(temporary, images)
        else:
            plotting.plot_images(images, path, title=title, columns=steps + 2 if name == "interpolation" else 8)
        paths.append(path)
    return paths


def interpolation(vae, pair, steps, condition=None):
    """Decodings of `steps` evenly spaced points on the line between the codes of two inputs.

    Args:
        vae: a `keras_vae.VAE` (a `ConditionalVAE` takes `condition`, `{name: value}`).
        pair: the two inputs, as the model takes them (batch of 2).
        steps: int, points on the line, both ends included.

    Returns:
        A NumPy array `(steps, *input_shape)`.
    """
    codes = keras.ops.convert_to_numpy(vae.embed(pair))
    weights = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
    points = (1 - weights) * codes[0] + weights * codes[1]
    decoded = vae.decode(points) if condition is None else vae.decode(points, condition)
    return keras.ops.convert_to_numpy(decoded)
