"""Data-parallel training on each backend's own engine.

`data_parallel()` returns `keras.distribution.DataParallel` under JAX and a
`tf.distribute` strategy under TensorFlow (MultiWorkerMirroredStrategy when
`TF_CONFIG` names several workers, else MirroredStrategy); both have `.scope()`.
Build, compile and fit the VAE inside it. Keras 3 has no distribution API for
PyTorch, so there it raises.
"""

import json
import os

import keras


class DistributeError(ValueError):
    """A distribution the backend or the machine cannot give."""


def data_parallel(devices=None, initialize=None):
    """The backend's data-parallel engine over `devices`.

    Every device holds a copy of the weights and trains on an equal slice of each
    batch; gradients are summed across devices before every update, so a step
    on `n` devices is a step on the whole (global) batch.

    Args:
        devices: None (all local accelerators, else all CPU devices), an int
            (the first that many) or a list of device names (`"gpu:0"`...).
        initialize: bool or None. JAX only: call `keras.distribution.initialize()`
            first (several processes; it reads `KERAS_DISTRIBUTION_JOB_ADDRESSES`,
            `KERAS_DISTRIBUTION_NUM_PROCESSES`, `KERAS_DISTRIBUTION_PROCESS_ID`).
            Defaults to whether `KERAS_DISTRIBUTION_NUM_PROCESSES` is over 1.

    Returns:
        An object with `.scope()`: a `keras.distribution.DataParallel` (JAX) or
        a `tf.distribute.Strategy` (TensorFlow).

    Example:
    ```python
    with keras_vae.distribute.data_parallel(2).scope():
        vae = keras_vae.VAE.from_input_shape((28, 28, 1))
        vae.compile()
    vae.fit(x, batch_size=256)  # the global batch: 128 per device
    ```
    """
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_data_parallel(devices, initialize)
    if backend == "tensorflow":
        return _tensorflow_data_parallel(devices)
    raise DistributeError(
        f"Keras 3 has no distribution API for the {backend} backend: "
        "train data-parallel with KERAS_BACKEND=jax or tensorflow."
    )


def split_cpu(count):
    """Makes the CPU show up as `count` devices, to try data parallelism without accelerators.

    Must run before the backend starts its runtime: before JAX is imported
    (it sets `XLA_FLAGS`), or before TensorFlow runs its first op. The devices
    share the machine's cores, so this tests correctness, not speed.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        # Read when JAX starts its CPU runtime (at its first device query).
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    elif backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError:  # already started: fine if it was split as asked
            if len(tf.config.list_logical_devices("CPU")) < count:
                raise DistributeError(
                    f"TensorFlow started before the CPU could be split into {count} devices: split it first thing."
                ) from None


def num_replicas(engine):
    """Devices (over all processes) that `engine` splits each batch over."""
    if keras.backend.backend() == "tensorflow":
        return engine.num_replicas_in_sync
    return len(engine.device_mesh.devices.flatten())


def _pick(available, devices, kind):
    if devices is None:
        return list(available)
    if isinstance(devices, int):
        if devices < 1 or devices > len(available):
            raise DistributeError(
                f"{devices} devices asked for, but this process sees {len(available)} {kind} "
                f"device(s): {', '.join(available)} (without accelerators, split the CPU first: split_cpu)."
            )
        return list(available[:devices])
    return list(devices)


def _jax_data_parallel(devices, initialize):
    if initialize is None:
        initialize = int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1")) > 1
    if initialize:
        keras.distribution.initialize()
    import jax

    # Accelerators when there are any; `list_devices` names every process's devices.
    kind = "gpu" if jax.devices()[0].platform == "gpu" else "tpu" if jax.devices()[0].platform == "tpu" else "cpu"
    available = keras.distribution.list_devices(kind)
    return keras.distribution.DataParallel(devices=_pick(available, devices, kind))


def _tensorflow_data_parallel(devices):
    import tensorflow as tf

    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if sum(len(cluster.get(job, [])) for job in ("chief", "worker")) > 1:
        if devices is not None and not isinstance(devices, int):
            raise DistributeError(
                "With TF_CONFIG, each worker uses all its local GPUs (or its CPU): pass no device list."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    kind = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    available = [d.name for d in tf.config.list_logical_devices(kind)]
    return tf.distribute.MirroredStrategy(devices=_pick(available, devices, kind))
