"""What a new user hits first: bad paths and runs reported before any import or data, in one line, quietly.

The path checks run in the console script, before Keras (and TensorFlow) are
imported: these tests start a process because that boundary, its speed and its
stderr are what they are about.
"""

import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from keras_vae import datasets
from keras_vae.app.cli import main

pytestmark = pytest.mark.backend_independent


def keras_vae(*args, cwd):
    """`keras-vae ARGS` in a new process: `(exit code, stdout, stderr lines, seconds)`."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    start = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "keras_vae_cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return process.returncode, process.stdout, process.stderr.splitlines(), time.perf_counter() - start


def assert_one_line_error(code, stderr, *words):
    assert code == 2, stderr
    assert len(stderr) == 1 and stderr[0].startswith("Error: "), stderr
    for word in words:
        assert word in stderr[0], stderr[0]


def a_run_directory(path, checkpoint_bytes=None):
    """A run directory with a config and, if given, one checkpoint whose model.keras holds these bytes."""
    os.makedirs(path / "checkpoints")
    (path / "config.json").write_text('{"train": {"dataset": "data.npz"}}')  # no TFDS download, ever
    if checkpoint_bytes is not None:
        os.makedirs(path / "checkpoints" / "epoch-0001")
        (path / "checkpoints" / "epoch-0001" / "model.keras").write_bytes(checkpoint_bytes)
        (path / "checkpoints" / "epoch-0001" / "state.json").write_text(
            '{"epoch": 1, "history": {}, "latent_records": []}'
        )


def listing(path):
    return sorted(os.path.relpath(os.path.join(root, name), path) for root, _, names in os.walk(path) for name in names)


OUTPUTS = {
    "under a file": (lambda tmp: str(tmp / "afile" / "run"), ["cannot be created", "is a file"]),
    "under /proc": (lambda tmp: "/proc/keras-vae-test/run", ["cannot be created"]),
    "an existing directory": (lambda tmp: str(tmp), ["exists", "--overwrite"]),
}


@pytest.mark.parametrize("where", OUTPUTS)
def test_an_output_that_cannot_be_used_is_one_line_and_exit_2_in_under_2_seconds(tmp_path, where):
    (tmp_path / "afile").write_text("")
    make_output, words = OUTPUTS[where]
    output = make_output(tmp_path)
    code, _, stderr, seconds = keras_vae("train", "--output", output, cwd=tmp_path)
    assert_one_line_error(code, stderr, output, *words)
    assert seconds < 2, f"the path check took {seconds:.1f} s: it must come before TensorFlow is imported"
    assert listing(tmp_path) == ["afile"]


def test_resuming_a_run_killed_before_its_first_checkpoint_says_there_is_nothing_to_resume(tmp_path):
    a_run_directory(tmp_path / "run")
    before = listing(tmp_path)
    code, _, stderr, seconds = keras_vae("train", "--resume", "run", cwd=tmp_path)
    assert_one_line_error(code, stderr, "nothing to resume", "--overwrite")
    assert seconds < 2 and listing(tmp_path) == before


def test_a_truncated_checkpoint_is_named_as_truncated_with_the_whole_advice(tmp_path):
    archive = tmp_path / "whole.keras"
    with zipfile.ZipFile(archive, "w") as file:
        file.writestr("config.json", "{}" * 2000)
    a_run_directory(tmp_path / "run", checkpoint_bytes=archive.read_bytes()[:-100])
    before = listing(tmp_path)
    code, _, stderr, seconds = keras_vae("train", "--resume", "run", cwd=tmp_path)
    checkpoint = os.path.join("run", "checkpoints", "epoch-0001")
    assert_one_line_error(code, stderr, "truncated or unreadable", checkpoint, "start the run again with --overwrite.")
    assert seconds < 2 and listing(tmp_path) == before
    # In-process, the command line runs the same check (the message is not cut short).
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "run")])
    assert result.exit_code == 2 and "truncated or unreadable" in result.output
    assert result.output.rstrip().endswith("start the run again with --overwrite.")


def write_images(folder, count=12, corrupt=()):
    from PIL import Image

    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for index in range(count):
        path = os.path.join(folder, f"{index:02d}.png")
        Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(path)
        if index in corrupt:
            with open(path, "r+b") as file:
                file.truncate(40)


def test_a_folder_with_a_corrupt_image_names_the_file_on_load(tmp_path):
    write_images(tmp_path / "images", corrupt=(3, 7))
    with pytest.raises(datasets.DataError, match=r"03\.png as an image \(.+\) \(1 more files fail too\)"):
        datasets.load(str(tmp_path / "images"), validation_fraction=0.25, seed=0)


def test_a_data_error_after_the_imports_is_still_one_line_with_no_tensorflow_log_lines(tmp_path):
    write_images(tmp_path / "images", corrupt=(5,))
    code, _, stderr, _ = keras_vae("train", "--dataset", "images", "--output", "run", cwd=tmp_path)
    assert_one_line_error(code, stderr, "05.png", "remove or replace the file")
    assert not os.path.exists(tmp_path / "run")


def test_native_log_noise_is_dropped_and_every_other_stderr_line_kept(capfd):
    from keras_vae_cli import native_logs

    lines = [
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        b"I0000 00:00:1796058340.667507   17616 port.cc:153] oneDNN custom operations are on.\n",
        b"W0000 00:00:1796058340.667871   17616 cudart_stub.cc:31] Could not find cuda drivers on your machine\n",
        b"E0000 00:00:1796058345.258339   17616 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n",
        b"E0000 00:00:1796058345.258339   17616 tensor.cc:99] a real error\n",
        b"Error: one line for the user\n",
    ]
    with native_logs.filtered():
        for line in lines:
            os.write(2, line)
    assert capfd.readouterr().err.splitlines() == [lines[4].decode().rstrip(), "Error: one line for the user"]
    with native_logs.filtered(enabled=False):  # --verbose
        os.write(2, lines[1])
    assert capfd.readouterr().err == lines[1].decode()
