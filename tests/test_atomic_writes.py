"""A process that dies while writing leaves the previous version, never half of one.

The kill -9 tests of the CLI and the export kill at a moment they do not
choose, usually between writes; these die inside the write itself, so a file,
directory or checkpoint written in place (not under a temporary name, then
renamed) fails them.
"""

import json
import os

import keras
import numpy as np
import pytest

from conftest import prototype_images, small_vae, to_numpy
from keras_vae import callbacks
from keras_vae.files import atomic_directory, atomic_path, restore_moved_aside, write_json


class Killed(Exception):
    """Stands for the process dying."""


def test_a_run_killed_while_saving_a_checkpoint_keeps_the_last_complete_one(tmp_path, monkeypatch):
    x = prototype_images(64)[0]
    vae = small_vae(latent_dim=2)
    vae.compile()
    save = vae.save

    def save_then_die_on_the_second_epoch(path, *args, **kwargs):
        if int(to_numpy(vae.train_iterations)) > 2:
            with open(path, "wb") as file:
                file.write(b"PK\x03\x04")  # the first bytes of a .keras zip, and no more
            raise Killed
        return save(path, *args, **kwargs)

    monkeypatch.setattr(vae, "save", save_then_die_on_the_second_epoch)
    directory = tmp_path / "checkpoints"
    with pytest.raises(Killed):
        vae.fit(x, epochs=2, batch_size=32, verbose=0, callbacks=[callbacks.RunCheckpoint(directory)])
    paths = callbacks.checkpoint_paths(directory)
    assert [os.path.basename(p) for p in paths] == ["epoch-0001"]
    assert sorted(os.listdir(paths[0])) == ["model.keras", "state.json"]
    restored = keras.models.load_model(os.path.join(paths[0], "model.keras"))
    assert int(to_numpy(restored.train_iterations)) == 2
    assert all(np.all(np.isfinite(to_numpy(w))) for w in restored.weights)


@pytest.mark.backend_independent
def test_a_file_writer_that_dies_leaves_the_previous_file(tmp_path):
    target = tmp_path / "state.json"
    write_json(target, {"epoch": 1})
    with pytest.raises(Killed), atomic_path(target) as temporary:
        with open(temporary, "w") as file:
            file.write('{"epo')
        raise Killed
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left behind


@pytest.mark.backend_independent
def test_a_directory_writer_that_dies_leaves_the_previous_directory(tmp_path):
    target = tmp_path / "export"
    with atomic_directory(target) as staging:
        with open(os.path.join(staging, "saved_model.pb"), "w") as file:
            file.write("complete")
    with pytest.raises(Killed), atomic_directory(target, replace=True) as staging:
        with open(os.path.join(staging, "saved_model.pb"), "w") as file:
            file.write("half")
        raise Killed
    assert (target / "saved_model.pb").read_text() == "complete"
    assert os.listdir(tmp_path) == ["export"]


@pytest.mark.backend_independent
def test_a_directory_killed_between_its_two_renames_is_moved_back(tmp_path, monkeypatch):
    target = tmp_path / "best"
    with atomic_directory(target) as staging:
        with open(os.path.join(staging, "best.json"), "w") as file:
            file.write("epoch 2")
    real_replace = os.replace

    def killed_after_moving_aside(source, destination):
        real_replace(source, destination)
        if os.path.basename(os.path.dirname(destination)).startswith(".old-best-"):
            raise Killed

    monkeypatch.setattr(os, "replace", killed_after_moving_aside)
    with pytest.raises(Killed), atomic_directory(target, replace=True) as staging:
        with open(os.path.join(staging, "best.json"), "w") as file:
            file.write("epoch 3")
    monkeypatch.setattr(os, "replace", real_replace)
    assert not target.exists()  # the window this guards against
    restore_moved_aside(tmp_path)
    assert (target / "best.json").read_text() == "epoch 2"
