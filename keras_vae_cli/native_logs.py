"""TensorFlow's native log lines, kept off a CPU-only user's terminal unless they are errors.

TensorFlow 2.21 logs through absl before absl is initialized, so those lines go
to file descriptor 2 whatever `TF_CPP_MIN_LOG_LEVEL` says: notes on oneDNN, "Could
not find cuda drivers", and an error line when there is no GPU to initialize.
`filtered()` passes the process's stderr through a pipe and drops absl's note
about it, every native INFO and WARNING line (what `TF_CPP_MIN_LOG_LEVEL=2`
hides once absl is initialized), and the CUDA-probing error; every other line
(Python's, or a real TensorFlow error) goes through unchanged.
`--verbose` turns all of this off.
"""

import contextlib
import logging
import os
import re
import sys
import threading

# absl's INFO and WARNING lines ("I0000 00:00:1796058340.667507   17616 port.cc:153] ..."), its note that
# they go to stderr, and the error of probing CUDA on a machine without a GPU.
NOISE = re.compile(
    rb"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
    rb"|E\d{4} [\d:.]+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit)"
)


@contextlib.contextmanager
def filtered(enabled=True):
    """Within the block, stderr lines that match `NOISE` are dropped (nothing changes when not `enabled`)."""
    if not enabled:
        yield
        return
    # Hides the same notes once absl is initialized; errors still print.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TFDS's Python warnings about the folders it probes ("has no dataset_info.json").
    logging.getLogger("absl").setLevel(logging.ERROR)
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    forward_to = os.dup(terminal)

    def forward():
        with os.fdopen(read_end, "rb") as pipe, os.fdopen(forward_to, "wb", buffering=0) as out:
            for line in pipe:
                if not NOISE.match(line):
                    out.write(line)

    thread = threading.Thread(target=forward, name="keras-vae-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: the thread reads to its end and stops
        os.close(terminal)
        thread.join(timeout=5)
