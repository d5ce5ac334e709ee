"""`course collect`: LMS downloads and a JupyterHub exchange become nbgrader's layout."""

import zipfile

from course_lib.cli import main
from course_lib.grading.collect import collect, parse_lms_name

A = "01_activations"
NB = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def test_lms_name_forms():
    assert parse_lms_name(f"jdoe_{A}.ipynb", A) == ("jdoe", 0)
    assert parse_lms_name(f"doe_12345_67890_{A}.ipynb", A) == ("doe", 0)
    assert parse_lms_name(f"doe_LATE_12345_67890_{A}-2.ipynb", A) == ("doe", 2)
    assert parse_lms_name("jdoe_02_losses.ipynb", A) is None


def test_zip_with_traversal_resubmissions_and_strays(tmp_path):
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"jdoe_{A}.ipynb", NB)
        z.writestr(f"doe_1_2_{A}.ipynb", b"old")
        z.writestr(f"doe_1_3_{A}-1.ipynb", NB)
        z.writestr(f"../../escape_{A}.ipynb", NB)
        z.writestr(f"/abs/root_{A}.ipynb", NB)
        z.writestr("notes.txt", b"x")
        z.writestr("x_02_losses.ipynb", NB)
    dest = tmp_path / "work" / "submitted"
    report = collect(A, archive, dest)
    assert sorted(report.collected) == ["doe", "escape", "jdoe", "root"]
    assert (dest / "doe" / A / f"{A}.ipynb").read_bytes() == NB  # the resubmission won
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.ipynb"))
    assert all(str(p).startswith("work/submitted/") for p in written), written
    reasons = dict(report.skipped)
    assert "earlier submission" in reasons[f"doe_1_2_{A}.ipynb"]
    assert reasons["notes.txt"] == "not a notebook"
    assert "does not end in" in reasons["x_02_losses.ipynb"]


def test_folder_with_symlink_is_not_followed(tmp_path):
    src = tmp_path / "lms"
    src.mkdir()
    (src / f"ann_{A}.ipynb").write_bytes(NB)
    secret = tmp_path / "secret.ipynb"
    secret.write_bytes(b"instructor only")
    (src / f"bob_{A}.ipynb").symlink_to(secret)
    report = collect(A, src, tmp_path / "submitted")
    assert list(report.collected) == ["ann"]
    assert ("bob_" + A + ".ipynb", "a symbolic link; not followed") in report.skipped


def test_jupyterhub_exchange_latest_wins(tmp_path, capsys):
    inbound = tmp_path / "exchange" / "dl-course" / "inbound"
    for stamp, data in (("2026-11-01 10:00:00", b"old"), ("2026-11-02 09:00:00", NB)):
        folder = inbound / f"ann+{A}+{stamp}+abc"
        folder.mkdir(parents=True)
        (folder / f"{A}.ipynb").write_bytes(data)
    (inbound / "ann+02_losses+2026-11-03 00:00:00").mkdir()
    dest = tmp_path / "submitted"
    assert main(["collect", A, str(tmp_path / "exchange" / "dl-course"), "--to", str(dest)]) == 0
    assert (dest / "ann" / A / f"{A}.ipynb").read_bytes() == NB
    assert "1 submission(s)" in capsys.readouterr().out
