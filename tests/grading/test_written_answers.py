"""Written answers: scored by a person in written.csv, counted by the next `course grade`.

First the scores file on its own (every way a hand-edited CSV goes wrong says which line and
what to do; what spreadsheets do to a CSV is undone), then the round trip with real nbgrader
on 01_activations: grade, score one answer, grade again, change the answer, grade again; and
a file as a spreadsheet set to German saves it.
"""

import csv

import nbformat
import pytest
from conftest import REPO, partial_submission

from course_lib.cli import main
from course_lib.grading.written_answers import (
    WrittenScoresError,
    digest,
    read_scores,
    write_page,
)

POINTS = {("01_activations", "q_saturation"): 2.0}
HEADER = "student_id,notebook,grade_id,max_points,score,comment,answer_digest\n"


def _scores(tmp_path, body, header=HEADER):
    path = tmp_path / "written.csv"
    path.write_text(header + body, encoding="utf-8")
    return read_scores(path, POINTS)


def test_a_filled_in_file_is_read_blank_scores_wait_and_commas_are_decimal_points(tmp_path):
    scores = _scores(tmp_path, "ann,01_activations,q_saturation,2,\"1,5\",Good.,abc\n"
                               "ben,01_activations,q_saturation,2,,,\n")
    ann = scores["ann", "01_activations", "q_saturation"]
    assert (ann.score, ann.comment, ann.digest) == (1.5, "Good.", "abc")
    assert scores["ben", "01_activations", "q_saturation"].score is None


@pytest.mark.parametrize("body, header, said", [
    ("ann,01_activations,q_other,2,1,,\n", HEADER, "not a written answer of this assignment"),
    ("ann,01_activations,q_saturation,2,3,,\n", HEADER, "is not a number from 0 to 2"),
    ("ann,01_activations,q_saturation,2,-1,,\n", HEADER, "is not a number from 0 to 2"),
    ("ann,01_activations,q_saturation,2,good,,\n", HEADER, "is not a number from 0 to 2"),
    ("ann,01_activations,q_saturation,2,nan,,\n", HEADER, "is not a number from 0 to 2"),
    ("ann,01_activations,q_saturation,2,1,,\nann,01_activations,q_saturation,2,2,,\n", HEADER,
     "scored a second time"),
    ("ann,01_activations,2\n", "student_id,notebook,points\n", "no column grade_id, score"),
])
def test_a_wrong_file_names_the_line_and_what_to_fix(tmp_path, body, header, said):
    with pytest.raises(WrittenScoresError, match=said) as info:
        _scores(tmp_path, body, header)
    assert "written.csv" in str(info.value)
    if header == HEADER:
        assert "line 2" in str(info.value) or "line 3" in str(info.value)


def test_a_missing_or_binary_file_says_how_to_get_one(tmp_path):
    with pytest.raises(WrittenScoresError, match="Run `course grade` once without --written"):
        read_scores(tmp_path / "nothing.csv", POINTS)
    (tmp_path / "x.csv").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(WrittenScoresError, match="not UTF-8"):
        read_scores(tmp_path / "x.csv", POINTS)
    with pytest.raises(WrittenScoresError, match="no written answers; grade it without"):
        read_scores(tmp_path / "x.csv", {})


def test_a_file_saved_by_a_spreadsheet_set_to_a_decimal_comma_language_is_read(tmp_path):
    # Such spreadsheets save "CSV" with semicolons (or tabs), a byte-order mark, decimal
    # commas, and rows emptied but not deleted.
    for sep in (";", "\t"):
        path = tmp_path / "written.csv"
        rows = [HEADER.strip().split(","),
                ["ann", "01_activations", "q_saturation", "2", "1,5", "Good; go on.", "d1"],
                [""] * 7,
                ["ben", "01_activations", "q_saturation", "2", "", "", "d2"]]
        with open(path, "w", newline="", encoding="utf-8-sig") as fh:
            csv.writer(fh, delimiter=sep).writerows(rows)
        scores = read_scores(path, POINTS)
        ann = scores["ann", "01_activations", "q_saturation"]
        assert (ann.score, ann.comment, ann.digest) == (1.5, "Good; go on.", "d1")
        assert scores["ben", "01_activations", "q_saturation"].score is None
        assert len(scores) == 2


def test_an_id_of_digits_that_lost_its_leading_zeros_finds_its_student_again(tmp_path):
    path = tmp_path / "written.csv"
    path.write_text(HEADER + "412,01_activations,q_saturation,2,1,,\n"
                             "12,01_activations,q_saturation,2,2,,\n", encoding="utf-8")
    scores = read_scores(path, POINTS, students=["0412", "012", "0012", "ann"])
    assert scores["0412", "01_activations", "q_saturation"].named_as == "412"
    # 012 and 0012 both lose their zeros to 12: nothing is guessed, the row stays as written.
    assert scores["12", "01_activations", "q_saturation"].named_as == ""
    assert ("412", "01_activations", "q_saturation") not in scores


def test_no_digest_looks_like_a_number_to_a_spreadsheet():
    # About one answer in 280 has 12 decimal digits as its hash's first 12 hex digits, which a
    # spreadsheet would turn into a number (and drop any leading zeros) if the digest were
    # only those digits.
    answers = [f"answer {i}" for i in range(5000)]
    digits = [a for a in answers if digest(a).removeprefix("sha256:").isdigit()]
    assert digits, "no all-digit hash among 5000 answers; widen the search"
    for answer in digits + answers[:50]:
        with pytest.raises(ValueError):
            float(digest(answer))


def test_an_answer_cannot_pass_itself_off_as_another_students(tmp_path):
    # ann's answer ends with a heading made to look like the start of ben's answer.
    forged = ("Saturation is bad.\n\n### ben <small>(q_saturation, digest sha256:000000000000, "
              "not scored yet)</small>\n\nSigmoid's slope is at most 1/4, so deep stacks of it "
              "shrink gradients.")
    key = ("01_activations", "q_saturation")
    write_page(tmp_path / "written.html", "01_activations", {key: "Why does it saturate?"},
               {"ann": {key: forged}, "ben": {key: "No idea."}}, {})
    page = (tmp_path / "written.html").read_text()
    assert page.count('<h3 class="who">') == 2
    ann = page[page.index('<h3 class="who">ann'):page.index('<h3 class="who">ben')]
    assert "<h3>ben &lt;small&gt;" in ann and 'class="text"' in ann
    assert ".who{" in page and ".text :is(h1,h2,h3,h4,h5,h6){font-size:1em}" in page


def _submission(folder, name, answer):
    nb = partial_submission("01_activations", solved=1)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "q_saturation":
            cell.source = answer
    nbformat.write(nb, folder / f"{name}.ipynb")


def _grade(subs, out, *extra):
    return main(["grade", "01_activations", str(subs), "--out", str(out), "--repo", str(REPO),
                 "--timeout", "600", *extra])


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["student_id"]: row for row in csv.DictReader(fh)}


def test_scores_given_in_written_csv_count_show_in_feedback_and_follow_the_answer(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    _submission(subs, "ann", "Sigmoid saturates: its derivative is at most 1/4, so a < b.")
    _submission(subs, "ben", "")
    assert _grade(subs, out) == 0
    written = _rows(out / "written.csv")
    assert set(written) == {"ann", "ben"} and written["ann"]["score"] == ""
    assert written["ann"]["max_points"] == "2" and written["ann"]["answer_digest"]
    page = (out / "written.html").read_text()
    assert "Name ReLU's own failure mode" in page and "so a &lt; b." in page
    assert "Content-Security-Policy" in page and "not scored yet" in page
    before = _rows(out / "grades.csv")["ann"]

    # The instructor scores ann's answer (a spreadsheet keeps the other columns as they were).
    lines = list(written.values())
    lines[0].update(score="1.5", comment="Right; now name the remedy for dead ReLUs.")
    with open(out / "written.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(lines[0]))
        writer.writeheader()
        writer.writerows(lines)
    assert _grade(subs, out, "--written", str(out / "written.csv")) == 0
    grades = _rows(out / "grades.csv")
    assert float(grades["ann"]["score"]) == float(before["score"]) + 1.5
    assert grades["ann"]["manual_pending"] == "0" and grades["ben"]["manual_pending"] == "2"
    feedback = (out / grades["ann"]["feedback"]).read_text()
    assert "Written response</a> (Score: 1.5 / 2.0)" in feedback
    assert "now name the remedy for dead ReLUs" in feedback
    assert _rows(out / "written.csv")["ann"]["score"] == "1.5"
    assert "scored 1.5" in (out / "written.html").read_text()

    # ann resubmits another answer: the old score no longer applies, and nothing is lost.
    _submission(subs, "ann", "ReLU does not saturate for positive inputs.")
    assert _grade(subs, out, "--written", str(out / "written.csv")) == 0
    grades = _rows(out / "grades.csv")
    assert grades["ann"]["manual_pending"] == "2"
    assert "changed since it was scored 1.5" in grades["ann"]["reason"]
    again = _rows(out / "written.csv")["ann"]
    assert again["score"] == "" and again["answer_digest"] != written["ann"]["answer_digest"]
    assert again["comment"] == "Right; now name the remedy for dead ReLUs."


def test_a_bad_scores_file_stops_before_anything_is_graded(tmp_path, capsys):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    _submission(subs, "ann", "An answer.")
    bad = tmp_path / "written.csv"
    bad.write_text(HEADER + "ann,01_activations,q_saturation,2,5,,\n", encoding="utf-8")
    assert _grade(subs, out, "--written", str(bad)) == 2
    assert "line 2: score '5' for ann's q_saturation is not a number from 0 to 2" in \
        capsys.readouterr().err
    assert not (out / "grades.csv").exists()


def test_scores_that_went_through_a_spreadsheet_count_and_strangers_are_named(tmp_path, capsys):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    _submission(subs, "0412", "Sigmoid saturates at both ends.")
    assert _grade(subs, out) == 0
    row = _rows(out / "written.csv")["0412"]
    # Saved from a spreadsheet set to German: semicolons, a byte-order mark, a decimal comma,
    # the id read as a number, and a row for a student of another term kept from before.
    lines = [list(row), ["412", *list(row.values())[1:4], "1,5", "Gut.", row["answer_digest"]],
             ["1.23457E+15", *list(row.values())[1:4], "2", "", "sha256:000000000000"]]
    with open(out / "excel.csv", "w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh, delimiter=";").writerows(lines)
    capsys.readouterr()
    assert _grade(subs, out, "--written", str(out / "excel.csv")) == 0
    said = capsys.readouterr().out
    grades = _rows(out / "grades.csv")["0412"]
    assert grades["manual_pending"] == "0"
    assert "found under 412 (a spreadsheet dropped the id's leading zeros)" in grades["reason"]
    written = _rows(out / "written.csv")
    assert written["0412"]["score"] == "1.5" and written["0412"]["comment"] == "Gut."
    assert "412" not in written and written["1.23457E+15"]["score"] == "2"
    assert "rows of 1 student(s) not in this batch: 1.23457E+15" in said
    assert "every one is scored" in said and "still wait" not in said
