"""Per-epoch figures of a training VAE: its latent space, and image grids of samples and reconstructions."""

import os

import keras
import numpy as np

from keras_vae.ops import latent


class _EpochFigures(keras.callbacks.Callback):
    """Base: figures every `every` epochs and after the last one, saved as PNG (and to TensorBoard if asked)."""

    def __init__(self, output_dir, every=1, tensorboard_dir=None):
        super().__init__()
        self.output_dir = os.fspath(output_dir)
        self.every = every
        self.tensorboard_dir = tensorboard_dir and os.fspath(tensorboard_dir)
        self._ended = self._drawn = None

    def on_epoch_end(self, epoch, logs=None):
        self._ended = epoch + 1
        if (epoch + 1) % self.every == 0:
            self._draw(epoch + 1)

    def on_train_end(self, logs=None):
        if self._ended is not None and self._drawn != self._ended:
            self._draw(self._ended)

    def _draw(self, epoch):
        self._drawn = epoch
        for tag, path in self.draw(epoch):
            self._to_tensorboard(tag, path, epoch)

    def _to_tensorboard(self, tag, path, step):
        if not self.tensorboard_dir:
            return
        import tensorflow as tf

        image = tf.io.decode_png(tf.io.read_file(path), channels=4)
        with tf.summary.create_file_writer(self.tensorboard_dir).as_default():
            tf.summary.image(tag, image[None], step=step)


class LatentSpacePlot(_EpochFigures):
    """The posterior means of a labelled probe set, as a 2-D scatter coloured by label.

    With more than two latent dimensions the scatter shows the first two
    principal components (or their UMAP embedding, `projection="umap"`, with
    the `[umap]` extra); with exactly two it is the latent plane itself, drawn
    beside the decoded images of a grid over that plane. Saves
    `latent_space_epoch_NNN.png` in `output_dir` every `every` epochs and
    after the last.

    Args:
        x: probe inputs (array).
        labels: array of int labels for the colours, or None.
        output_dir: str.
        every: int, epochs between figures (the last epoch's is drawn too). Defaults to `1`.
        grid_size: int, images per side of the decoded grid; 0 for none. Defaults to `15`.
        tensorboard_dir: str or None.
        projection: `"pca"` or `"umap"`. Defaults to `"pca"`. UMAP without
            umap-learn installed raises an ImportError that says how to get it.
    """

    def __init__(self, x, labels, output_dir, every=1, grid_size=15, tensorboard_dir=None, projection="pca"):
        from keras_vae import plotting  # matplotlib: only once a figure is drawn

        super().__init__(output_dir, every, tensorboard_dir)
        plotting.check_projection(projection)  # at once, not after the first epoch
        self.x = x
        self.labels = labels
        self.grid_size = grid_size
        self.projection = projection

    def draw(self, epoch):
        from keras_vae import plotting  # matplotlib: only once a figure is drawn

        z_mean, _ = latent.encode_data(self.model, self.x)
        grid = None
        if z_mean.shape[1] == 2 and np.ndim(self.x) >= 3 and self.grid_size:
            # ±1.8 standard deviations of the prior: where the decoder has seen most codes.
            edge = np.linspace(-1.8, 1.8, self.grid_size)
            plane = np.stack(np.meshgrid(edge, edge[::-1]), axis=-1).reshape(-1, 2).astype("float32")
            grid = np.asarray(keras.ops.convert_to_numpy(self.model.decode(plane)))
        path = os.path.join(self.output_dir, f"latent_space_epoch_{epoch:03d}.png")
        plotting.plot_latent_space(
            z_mean, path, labels=self.labels, decoded_grid=grid, title=f"epoch {epoch}", projection=self.projection
        )
        return [("latent_space", path)]


class ImageGrids(_EpochFigures):
    """Samples from the prior and reconstructions of probe images, as PNG grids.

    Saves `samples_epoch_NNN.png` (`n_samples` draws of the decoder's mean at
    z ~ N(0, I)) and `reconstructions_epoch_NNN.png` (each probe image above its
    reconstruction) in `output_dir` every `every` epochs and after the last.
    """

    def __init__(self, x, output_dir, n_samples=64, every=1, tensorboard_dir=None):
        super().__init__(output_dir, every, tensorboard_dir)
        self.x = np.asarray(x)[:32]
        self.n_samples = n_samples

    def draw(self, epoch):
        from keras_vae import plotting  # matplotlib: only once a figure is drawn

        to_numpy = keras.ops.convert_to_numpy
        samples = to_numpy(self.model.sample(self.n_samples))
        reconstructions = to_numpy(self.model.reconstruct(self.x))
        pairs = np.concatenate(
            [np.concatenate([self.x[i : i + 8], reconstructions[i : i + 8]]) for i in range(0, len(self.x), 8)]
        )
        sample_path = os.path.join(self.output_dir, f"samples_epoch_{epoch:03d}.png")
        reconstruction_path = os.path.join(self.output_dir, f"reconstructions_epoch_{epoch:03d}.png")
        plotting.plot_images(samples, sample_path, title=f"samples, epoch {epoch}")
        plotting.plot_images(pairs, reconstruction_path, title=f"inputs above reconstructions, epoch {epoch}")
        return [("samples", sample_path), ("reconstructions", reconstruction_path)]
