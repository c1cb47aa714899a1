"""Safe writes: a process killed (SIGKILL) in the middle of saving leaves the previous file as it
was. A child process saves over a good file with a writer slowed down mid-write, announces it,
and is killed; the good file must load unchanged. A control run without the temporary file
shows that the same kill would otherwise have destroyed the file."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from frontends.keras_like import callbacks
from frontends.keras_like.layers import Dense
from frontends.keras_like.models import Sequential, load_model

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
h5py = pytest.importorskip("h5py")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

CHILD = textwrap.dedent("""
    import os, sys, time, zipfile
    import h5py
    import numpy as np
    from frontends.keras_like import callbacks
    from frontends.keras_like.layers import Dense
    from frontends.keras_like.models import Sequential
    from frontends.keras_like.saving import atomic

    path, action, atomic_writes = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

    def stall():
        print("WRITING", flush=True)
        time.sleep(120)

    # Stall after part of the file is on disk, whatever the format.
    original_dataset = h5py.Group.create_dataset
    def create_dataset(self, name, *args, **kwargs):
        out = original_dataset(self, name, *args, **kwargs)
        if os.path.exists(self.file.filename):  # a file on disk, not the in-memory one in .keras
            self.file.flush()
            stall()
        return out
    h5py.Group.create_dataset = create_dataset
    original_writestr = zipfile.ZipFile.writestr
    def writestr(self, name, data, *args, **kwargs):
        original_writestr(self, name, data, *args, **kwargs)
        if name == "config.json":
            self.fp.flush()
            stall()
    zipfile.ZipFile.writestr = writestr
    original_write_array = np.lib.format.write_array
    def write_array(fp, array, *args, **kwargs):
        original_write_array(fp, array, *args, **kwargs)
        if array.ndim == 2:
            fp.flush()
            stall()
    np.lib.format.write_array = write_array
    if not atomic_writes:  # the control: write straight into the destination
        import contextlib
        atomic.atomic_path = contextlib.contextmanager(lambda p: (yield str(p)))
        import frontends.keras_like.saving as saving
        saving.atomic_path = atomic.atomic_path

    model = Sequential([Dense(256, input_dim=64), Dense(256), Dense(3)])
    model.compile("adam", "mse")
    if action == "save":
        model.save(path)
    elif action == "save_weights":
        model.save_weights(path)
    else:
        x, y = np.zeros((8, 64)), np.zeros((8, 3))
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(path)])
    print("DONE", flush=True)
""")


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _kill_mid_save(path, action, atomic_writes=True):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), action,
                             "1" if atomic_writes else "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "WRITING", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize("name,action", [
    ("m.keras", "save"), ("m.h5", "save"), ("m-archive", "save"),
    ("w.weights.h5", "save_weights"), ("checkpoint.keras", "checkpoint"),
])
def test_killed_save_leaves_the_previous_file_intact(tmp_path, name, action):
    good = Sequential([Dense(4, input_dim=64), Dense(3)])
    good.compile("sgd", "mse")
    path = tmp_path / name
    if action == "save_weights":
        good.save_weights(path)
    else:
        good.save(path)
    before = _digest(path)
    _kill_mid_save(path, action)
    assert _digest(path) == before
    x = np.ones((2, 64), "float32")
    if action == "save_weights":
        fresh = Sequential([Dense(4, input_dim=64), Dense(3)])
        fresh.load_weights(path)
        np.testing.assert_array_equal(fresh.predict(x), good.predict(x))
    else:
        np.testing.assert_array_equal(load_model(path).predict(x), good.predict(x))
    # the half-written temporary file is what the kill left behind, beside the destination
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != name]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{name}.")
    assert leftovers[0].endswith(".tmp")


def test_control_without_temporary_file_the_kill_corrupts(tmp_path):
    good = Sequential([Dense(4, input_dim=64), Dense(3)])
    path = tmp_path / "m.keras"
    good.save(path)
    before = _digest(path)
    _kill_mid_save(path, "save", atomic_writes=False)
    assert _digest(path) != before
    with pytest.raises(Exception):  # noqa: B017 - any failure to read shows the damage
        load_model(path)


def test_model_checkpoint_goes_through_the_safe_writer(tmp_path, monkeypatch):
    import frontends.keras_like.saving.atomic as atomic

    replaced = []
    original = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (replaced.append((a, b)), original(a, b)))
    model = Sequential([Dense(2, input_dim=3)])
    model.compile("sgd", "mse")
    path = str(tmp_path / "ck-{epoch:02d}.keras")
    model.fit(np.zeros((4, 3)), np.zeros((4, 2)), epochs=2, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(path), callbacks.ModelCheckpoint(
                  str(tmp_path / "w.weights.h5"), save_weights_only=True)])
    # graphc's compile cache also writes atomically (elsewhere): only the model's files count.
    replaced = [(a, b) for a, b in replaced if os.path.dirname(b) == str(tmp_path)]
    targets = sorted(os.path.basename(b) for _, b in replaced)
    assert targets == ["ck-01.keras", "ck-02.keras", "w.weights.h5", "w.weights.h5"]
    assert all(os.path.basename(a).endswith(".tmp") for a, _ in replaced)
