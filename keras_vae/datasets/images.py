"""Folders of images (flat, or one subfolder per class) as splits of examples scaled to [0, 1],
read with Keras's `image_dataset_from_directory` after checks where Keras would fail or mislead."""

import os
import re

import keras

from keras_vae.datasets.splits import DataError, Splits, first_line

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras's image loader reads


def load_image_folder(folder, validation_fraction, seed):
    """The splits of an image folder: validation is a seeded part of the files, and is the test set too."""
    image_paths = _image_paths(folder)
    has_class_folders = _checked_folder_layout(folder, image_paths, validation_fraction)
    _check_images_decode(image_paths)
    height, width, channels = _image_shape(image_paths[0])
    # Gray, or gray + alpha: the alpha channel is dropped, as it is for RGBA.
    color_mode = "grayscale" if channels <= 2 else "rgb"
    train, validation = keras.utils.image_dataset_from_directory(
        folder,
        labels="inferred" if has_class_folders else None,
        color_mode=color_mode,
        batch_size=None,
        image_size=(height, width),
        shuffle=True,  # the file order is shuffled (seeded) before the split; train is reshuffled each epoch
        seed=seed,
        validation_split=validation_fraction,
        subset="both",
        data_format="channels_last",
        verbose=False,
    )
    validation = _folder_examples(validation)
    return Splits(
        train=_folder_examples(train),
        validation=validation,
        test=validation,
        input_shape=(height, width, 1 if color_mode == "grayscale" else 3),
        name=os.path.basename(os.path.normpath(folder)),
        value_range=(0.0, 1.0),
    )


def _checked_folder_layout(folder, image_paths, validation_fraction):
    """Whether the images sit in class subfolders; a DataError where Keras would fail or mislead."""
    if not image_paths:
        raise DataError(
            f"No images in folder {folder}; put {'/'.join(IMAGE_EXTENSIONS)} files in it, "
            "or in one subfolder per class."
        )
    top_level = [path for path in image_paths if os.path.dirname(path) == os.path.normpath(folder)]
    has_class_folders = len(top_level) < len(image_paths)
    if has_class_folders and top_level:
        # Keras would infer labels from the subfolders and silently skip these.
        raise DataError(
            f"{folder} has {len(top_level)} images beside its class subfolders (e.g. {top_level[0]}); "
            "move them into a class subfolder, or put all images in subfolders or none."
        )
    if not validation_fraction:
        raise DataError(
            "An image folder has no test set, so its test set is the validation set: set validation_fraction "
            f"above 0 (e.g. 0.1) for {folder}."
        )
    if int(validation_fraction * len(image_paths)) == 0:
        # Keras would fail with "No training images found", which misleads.
        raise DataError(
            f"{folder} has {len(image_paths)} images, too few to hold out validation_fraction="
            f"{validation_fraction} of them: raise validation_fraction or add images."
        )
    return has_class_folders


def _image_paths(folder):
    """Image files under `folder`, in Keras's order (sorted walk), by extension."""
    paths = []
    for root, directories, files in os.walk(folder):
        directories.sort()
        paths.extend(
            os.path.join(os.path.normpath(root), name)
            for name in sorted(files)
            if name.lower().endswith(IMAGE_EXTENSIONS)
        )
    return paths


def _check_images_decode(paths):
    """A DataError naming the first file TensorFlow cannot decode; every file is decoded once, in parallel.

    Mid-training, Keras's pipeline would fail on such a file with an error that does not name it.
    """
    import tensorflow as tf

    def decoded_index(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        return index + 0 * tf.size(image, out_type=tf.int64)  # depends on the decode, so it runs

    decodable = set(
        tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int64), paths))
        .map(decoded_index, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .ignore_errors()
        .as_numpy_iterator()
    )
    bad = [path for index, path in enumerate(paths) if index not in decodable]
    if bad:
        try:
            tf.io.decode_image(tf.io.read_file(bad[0]), expand_animations=False)
            reason = "it fails to decode"
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
            reason = _decoder_reason(error)
        more = f" ({len(bad) - 1} more files fail too)" if len(bad) > 1 else ""
        raise DataError(f"Cannot read {bad[0]} as an image ({reason}){more}; remove or replace the file.")


def _decoder_reason(error):
    """TensorFlow's reason without its op decorations: "Invalid PNG. Failed to initialize decoder."."""
    reason = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*$", "", first_line(error))
    return reason or type(error).__name__


def _image_shape(path):
    import tensorflow as tf

    try:
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
        raise DataError(
            f"Cannot read {path} as an image ({_decoder_reason(error)}); remove or replace the file."
        ) from error
    return tuple(image.shape)


def _folder_examples(dataset):
    """Keras's `image` (or `(image, label)`) elements as example dicts, scaled to [0, 1]."""
    import tensorflow as tf

    def to_example(image, label=None):
        example = {"x": image / 255.0}
        if label is not None:
            example["label"] = tf.cast(label, tf.int64)
        return example

    return dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
