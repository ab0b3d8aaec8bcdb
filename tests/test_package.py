"""The package as a user meets it: what `import keras_vae` gives, and which way its imports run."""

import ast
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae import likelihoods, names, networks, schedules

PACKAGE = pathlib.Path(keras_vae.__file__).parent

# Lower layers may not import higher ones. Within a layer imports are free.
LAYERS = (
    ("keras_vae.version", "keras_vae.names", "keras_vae.files"),
    (
        "keras_vae.ops",
        "keras_vae.likelihoods",
        "keras_vae.schedules",
        "keras_vae.optimizers",
        "keras_vae.datasets.batching",
    ),
    ("keras_vae.networks",),
    ("keras_vae.trainers",),
    ("keras_vae.models",),
    (
        "keras_vae.evaluation",
        "keras_vae.callbacks",
        "keras_vae.datasets",
        "keras_vae.plotting",
        "keras_vae.hub",
        "keras_vae.lr_finder",
        "keras_vae.distribute",
    ),
    ("keras_vae.app",),
)


def _layer(module):
    """The layer of a `keras_vae` module: the longest matching prefix wins (datasets.batching vs datasets)."""
    best, best_length = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


def _module_name(path, root=PACKAGE.parent):
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name):
    relative = pathlib.Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").exists() or (
        PACKAGE.parent / relative / "__init__.py"
    ).exists()


def _imports(path, root=PACKAGE.parent):
    """Every `keras_vae` module a file imports, at any depth (function-level imports count too)."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("keras_vae"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if not base.startswith("keras_vae"):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if _is_module(submodule) else base


@pytest.mark.backend_independent
def test_imports_run_one_way():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module == "keras_vae":  # the public API imports everything
            continue
        own = _layer(module)
        assert own is not None, f"{module} is in no layer of this test: add it to LAYERS"
        for imported in _imports(path):
            if imported == "keras_vae":
                upward.append(f"{module} imports the package root")
                continue
            layer = _layer(imported)
            if layer is not None and layer > own:
                upward.append(f"{module} (layer {own}) imports {imported} (layer {layer})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


@pytest.mark.backend_independent
def test_the_import_check_catches_an_upward_import(tmp_path):
    # The walker must see a function-level import of a higher layer.
    module = tmp_path / "keras_vae" / "models" / "fake.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from keras_vae import plotting\n    from keras_vae.app import runs\n")
    found = list(_imports(module, root=tmp_path))
    assert "keras_vae.plotting" in found and "keras_vae.app.runs" in found
    assert all(_layer(name) > _layer("keras_vae.models") for name in found)


@pytest.mark.backend_independent
def test_each_name_is_written_once_and_every_registry_uses_it():
    assert set(networks.ARCHITECTURES) == set(names.ARCHITECTURES)
    for name in names.LIKELIHOODS:
        if name == "categorical":  # needs its vocabulary size, and says so
            with pytest.raises(ValueError, match="Categorical"):
                likelihoods.get(name)
        else:
            assert isinstance(likelihoods.get(name), keras.layers.Layer), name
    assert set(names.COUNT_LIKELIHOODS) <= set(names.LIKELIHOODS)
    assert set(names.AUTOREGRESSIVE_ARCHITECTURES) <= set(names.ARCHITECTURES)
    for name in names.LEARNING_RATE_SCHEDULES:
        schedule = schedules.learning_rate_schedule(name, 1e-3, total_steps=100)
        assert float(keras.ops.convert_to_numpy(schedule(10) if callable(schedule) else schedule)) > 0, name
    for part in (names.ENCODER, names.DECODER, names.JOINT):
        assert part in names.PARTS


def _saved_models(tmp_path):
    """A VAE, a ConditionalVAE and an AutoregressiveVAE, tiny, saved as .keras; with inputs to embed."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = (rng.random((4, 6, 6, 1)) < 0.5).astype("float32")
    vae = keras_vae.VAE(
        networks.mlp_encoder((6, 6, 1), 2, hidden_units=(8,)),
        networks.mlp_decoder((6, 6, 1), 2, hidden_units=(8,)),
        seed=0,
    )
    cvae = keras_vae.ConditionalVAE.from_input_shape((5,), {"batch": 2}, latent_dim=2, likelihood="gaussian", seed=0)
    conditional = {"x": rng.normal(size=(4, 5)).astype("float32"), "batch": np.array([0, 1, 0, 1])}
    arvae = keras_vae.AutoregressiveVAE(
        networks.mlp_encoder((6, 6, 1), 2, hidden_units=(8,)),
        networks.pixelcnn_decoder((6, 6, 1), 2, filters=4, num_blocks=1),
        seed=0,
    )
    cases = {"vae": (vae, images), "cvae": (cvae, conditional), "arvae": (arvae, images)}
    for name, (model, inputs) in cases.items():
        model(inputs)
        model.save(tmp_path / f"{name}.keras")
        np.savez(tmp_path / f"{name}_inputs.npz", **(inputs if isinstance(inputs, dict) else {"x": inputs}))
    return {
        name: np.asarray(keras.ops.convert_to_numpy(model.embed(inputs))) for name, (model, inputs) in cases.items()
    }


def test_a_fresh_process_loads_every_model_after_import_keras_vae(tmp_path):
    expected = _saved_models(tmp_path)
    # No conftest, no keras_vae submodule imported by hand: only the public `import keras_vae`.
    code = (
        "import sys, keras, numpy as np, keras_vae\n"
        "print(all(callable(f) for f in (keras_vae.lr_finder.lr_range_test, keras_vae.distribute.data_parallel,\n"
        "    keras_vae.evaluation.evaluate, keras_vae.evaluation.metrics.importance_weighted_nll,\n"
        "    keras_vae.plotting.plot_latent_space, keras_vae.datasets.text.Vocabulary)))\n"
        "for name in sys.argv[2:]:\n"
        "    model = keras.saving.load_model(f'{sys.argv[1]}/{name}.keras')\n"
        "    inputs = dict(np.load(f'{sys.argv[1]}/{name}_inputs.npz'))\n"
        "    inputs = inputs['x'] if list(inputs) == ['x'] else inputs\n"
        "    print(name, type(model).__name__)\n"
        "    np.save(f'{sys.argv[1]}/{name}_embedded.npy', keras.ops.convert_to_numpy(model.embed(inputs)))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), *expected],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the checkout: tests/ and conftest.py are not importable from there
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Every module the documentation names is reachable from the package.
    assert result.stdout.split() == ["True", "vae", "VAE", "cvae", "ConditionalVAE", "arvae", "AutoregressiveVAE"]
    for name, embedded in expected.items():
        np.testing.assert_allclose(np.load(tmp_path / f"{name}_embedded.npy"), embedded, rtol=1e-5, atol=1e-6)
