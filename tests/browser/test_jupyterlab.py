"""JupyterLab 4 with nbgrader, driven by a real headless Chromium (Selenium + chromedriver).

Starts JupyterLab on a copy of the course, then:
1. opens the student version of 00_setup, runs all cells, and reads from the page that the
   first check reports its exercise unanswered ("not written yet"; Run All stops there);
2. opens the solution version, runs all cells, and reads that the checks pass (✓, no failure);
3. opens nbgrader's formgrader and reads that it lists the course's assignments and has an
   exchange (no "does not exist" warning);
4. opens a class report (`report.html` of `course grade`) and checks its figures are drawn;
5. grades a submission whose written answer holds HTML meant to act in the page, opens its
   feedback page and the page of written answers, and reads that each stayed put and shows
   the answer as the student typed it.
Screenshots of each step are saved in course_output/browser/ (a test artefact).

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them) and `selenium` (the
`test` extra). Slow: JupyterLab and two kernels start.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "course_output" / "browser"
TOKEN = "course-browser-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    for part in ("solutions", "notebooks"):
        shutil.copytree(REPO / part, root / part)
    shutil.copy(REPO / "nbgrader_config.py", root)
    port = _free_port()
    # nbgrader's formgrader creates its gradebook by running `alembic`, found on PATH: put
    # this interpreter's bin folder first, as an activated virtualenv would.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, COURSE_PROFILE="quick", JUPYTER_CONFIG_DIR=str(root / ".jupyter"),
               PATH=path)
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", "--allow-root",
         f"--ServerApp.root_dir={root}"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start:\n" + (root / "lab.log").read_text()[-3000:])
    yield base
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "install Debian's chromium and chromium-driver (.ci/run does)"
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(120)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _wait_for(driver, predicate, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        if predicate(driver):
            return
        time.sleep(1)
    driver.save_screenshot(str(SHOTS / f"timeout-{what}.png"))
    pytest.fail(f"timed out waiting for {what}")


def _run_all(driver, base, path, name):
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/lab/tree/{path}?token={TOKEN}")
    _wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 120,
              f"{name}-open")
    _wait_for(driver, lambda d: "Idle" in d.find_element(By.TAG_NAME, "body").text, 120,
              f"{name}-kernel")
    menu = next(e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel")
                if e.text.strip() == "Run")
    menu.click()
    _wait_for(driver, lambda d: any(e.text.strip() == "Run All Cells" for e in d.find_elements(
        By.CSS_SELECTOR, ".lm-Menu-itemLabel")), 20, f"{name}-menu")
    next(e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu-itemLabel")
         if e.text.strip() == "Run All Cells").click()


def _show_text(driver, text: str) -> None:
    """Scroll the output holding ``text`` into the middle of the screenshot."""
    driver.execute_script(
        "const el = [...document.querySelectorAll('.jp-OutputArea-output')]"
        "  .find(e => e.innerText.includes(arguments[0]));"
        "if (el) el.scrollIntoView({block: 'center'});", text)
    time.sleep(1)


def _outputs(driver) -> str:
    from selenium.webdriver.common.by import By

    return "\n".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea"))


@pytest.mark.slow
def test_student_notebook_reports_unanswered_exercises(lab, browser):
    _run_all(browser, lab, "notebooks/00_setup/00_setup.ipynb", "student")
    # JupyterLab's "Run All" stops at the first failing cell, as a student sees it.
    _wait_for(browser, lambda d: "not written yet" in _outputs(d), 180, "student-checks")
    _show_text(browser, "not written yet")
    browser.save_screenshot(str(SHOTS / "student_00_setup.png"))
    text = _outputs(browser)
    assert "CheckFailed" in text and "`standardize` is not written yet" in text
    assert "Replace `raise NotImplementedError()`" in text


@pytest.mark.slow
def test_solution_notebook_passes_its_checks(lab, browser):
    _run_all(browser, lab, "solutions/00_setup/00_setup.ipynb", "solution")
    _wait_for(browser, lambda d: "✓ one_hot(y, 3)" in _outputs(d), 180, "solution-checks")
    _show_text(browser, "✓ standardize(X)")
    browser.save_screenshot(str(SHOTS / "solution_00_setup.png"))
    text = _outputs(browser)
    assert "✓ standardize(X)" in text
    assert "not written yet" not in text


@pytest.mark.slow
def test_formgrader_lists_the_assignments(lab, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{lab}/formgrader?token={TOKEN}")
    _wait_for(browser, lambda d: "00_setup" in d.find_element(By.TAG_NAME, "body").text, 120,
              "formgrader")
    browser.save_screenshot(str(SHOTS / "formgrader.png"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "01_activations" in body
    # nbgrader_config.py gives the course an exchange, so release and collect are available
    assert "does not exist" not in body and "will not be available" not in body, body[:2000]


@pytest.mark.slow
def test_class_report_shows_its_figures(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from course_lib.grading.autograde import GradeRow
    from course_lib.grading.class_report import write_report

    rows = [GradeRow(f"s{i}", "01_x", score=s, max_score=4, auto_score=s, auto_max_score=4,
                     status="graded", tests={"test_a": "" if s > 1 else "CheckFailed: wrong",
                                             "test_b": "" if s > 3 else "CheckFailed: shape"})
            for i, s in enumerate([4, 4, 3, 2, 1, 0])]
    page = write_report(rows + [GradeRow("late", "01_x", reason="not valid notebook JSON")],
                        "01_x", tmp_path / "report.html")
    browser.get(page.as_uri())
    _wait_for(browser, lambda d: "need a person" in d.find_element(By.TAG_NAME, "body").text,
              30, "report")
    browser.save_screenshot(str(SHOTS / "class_report.png"))
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 2
    # each figure decoded and drawn (the page's policy allows inline images, nothing else)
    assert all(browser.execute_script("return arguments[0].naturalWidth", im) > 300
               for im in images)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Tests, hardest first" in body and "late" in body


@pytest.mark.slow
def test_grading_pages_show_a_written_answer_as_typed_and_let_it_do_nothing(browser, tmp_path):
    import nbformat
    from conftest import partial_submission
    from selenium.webdriver.common.by import By

    from course_lib.grading.autograde import grade

    elsewhere = tmp_path / "elsewhere.html"
    elsewhere.write_text("<title>ELSEWHERE</title>somewhere else")
    answer = ("For large $z$, $\\sigma'(z) < 0.01$: the gradient vanishes.\n\n"
              "```python\nif a < b and b > c:\n    pass\n```\n\n"
              f'<meta http-equiv="refresh" content="1;url={elsewhere.as_uri()}">\n'
              "<img src=x onerror=\"document.title='ACTED'\"> <b>not bold</b>")
    nb = partial_submission("01_activations", solved=1)
    cell = next(c for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "q_saturation")
    cell.source = answer
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(nb, subs / "ann.ipynb")
    (row,) = grade(REPO, "01_activations", subs, tmp_path / "out", cell_timeout=600)
    assert row.status == "graded" and row.feedback, row.reason

    page = tmp_path / "out" / row.feedback
    browser.get(page.as_uri())
    _wait_for(browser, lambda d: "gradient vanishes" in d.find_element(By.TAG_NAME, "body").text,
              30, "feedback")
    time.sleep(3)  # longer than the refresh the answer asked for
    assert browser.current_url == page.as_uri() and browser.title not in ("ELSEWHERE", "ACTED")
    shown = next(e for e in browser.find_elements(By.CSS_SELECTOR, ".rendered_html")
                 if "gradient vanishes" in e.text)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", shown)
    browser.save_screenshot(str(SHOTS / "feedback_written_answer.png"))
    text = shown.text
    assert "$\\sigma'(z) < 0.01$" in text and "if a < b and b > c:" in text, text
    assert "<b>not bold</b>" in text and "&lt;" not in text, text
    assert not shown.find_elements(By.CSS_SELECTOR, "b, img, meta")

    # The page of written answers, question by question, shows it the same way.
    answers = tmp_path / "out" / "written.html"
    browser.get(answers.as_uri())
    _wait_for(browser, lambda d: "gradient vanishes" in d.find_element(By.TAG_NAME, "body").text,
              30, "written-answers")
    time.sleep(3)
    browser.save_screenshot(str(SHOTS / "written_answers.png"))
    assert browser.current_url == answers.as_uri() and browser.title not in ("ELSEWHERE", "ACTED")
    shown = browser.find_element(By.CSS_SELECTOR, ".answer")
    assert "if a < b and b > c:" in shown.text and "<b>not bold</b>" in shown.text, shown.text
    assert "Name ReLU's own failure mode" in browser.find_element(By.TAG_NAME, "body").text
    assert not shown.find_elements(By.CSS_SELECTOR, "b, img, meta")
