"""The benchmark scripts still run: each at toy sizes, as a user runs it from a shell.

A benchmark is run rarely and on another machine (the pretraining one on a GPU), so a change in
course_lib that breaks one is otherwise found only there, where time is scarce."""

import re
import subprocess
import sys

from conftest import REPO


def _bench(script, *args, timeout=600):
    return subprocess.run([sys.executable, str(REPO / "bench" / script), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout)


def test_pretrain_throughput_prints_tokens_per_second_and_utilisation():
    result = _bench("pretrain_throughput.py", "--profile", "quick", "--steps", "2",
                    "--warmup-steps", "1", "--peak-tflops", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    tokens = re.search(r"([\d,]+) tokens/s", result.stdout)
    assert tokens and int(tokens.group(1).replace(",", "")) > 0
    # the honest count is below the 6 x parameters x tokens shortcut for this small model
    ratio = re.search(r"\(([\d.]+) x as much\)", result.stdout)
    assert ratio and float(ratio.group(1)) > 1.0
    assert re.search(r"MFU against a peak of 1 TFLOP/s: [\d.]+%", result.stdout)


def test_numpy_vs_keras_prints_its_ratio():
    result = _bench("numpy_vs_keras.py", "--epochs", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    # both implementations trained (a finite loss each), and the ratio is a number
    assert len(re.findall(r"final training loss \d+\.\d+", result.stdout)) == 2
    assert re.search(r"ratio NumPy / Keras = \d+\.\d+", result.stdout)
