"""course_lib.device: profile choice, backend detection and the environment report."""

import json
import subprocess
import sys

import pytest

from course_lib import device


def test_profile_env_overrides(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "full")
    assert device.profile() == "full"
    assert device.pick(quick=1, full=2) == 2
    monkeypatch.setenv("COURSE_PROFILE", "Quick ")
    assert device.profile() == "quick"
    assert device.pick(quick=1, full=2) == 1


def test_bad_profile_says_what_to_use(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="use one of quick, full"):
        device.profile()


def test_profile_defaults_to_hardware(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(device, "gpus", lambda: [])
    assert device.profile() == "quick"
    monkeypatch.setattr(device, "gpus", lambda: [device.GPU("H200", 143771)])
    assert device.profile() == "full"


def test_keras_backend_from_env_then_config(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert device.keras_backend() == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert device.keras_backend() == "tensorflow"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert device.keras_backend() == "torch"


def test_report_flags_missing_backend(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "nonexistent")
    findings = {f.item: f for f in device.report()}
    assert not findings["keras backend"].ok
    assert "set KERAS_BACKEND" in findings["keras backend"].fix
    assert findings["numpy"].ok
    text = device.format_report(list(findings.values()))
    assert "!! keras backend" in text


def test_seed_everything_is_reproducible():
    import numpy as np

    device.seed_everything(3)
    a = np.random.rand(3)
    device.seed_everything(3)
    assert np.array_equal(a, np.random.rand(3))


def test_setup_does_not_import_tensorflow():
    code = ("import sys; from course_lib import device; device.setup(1); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"
    assert "profile" in out.stdout
