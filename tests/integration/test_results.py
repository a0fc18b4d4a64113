"""`fruitsctl report` and `fruitsctl evaluate` on a real run over the Fruits-360 sample."""

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

from fruits.cli.main import app
from fruits.results.evaluate import NUMBER_BLOCKS, evaluate, split_rows
from support.console_text import flat

runner = CliRunner()


@pytest.fixture(scope="module")
def report(sample_run, tmp_path_factory):
    output, _manifest, _ = sample_run
    folder = tmp_path_factory.mktemp("report")
    result = runner.invoke(app, ["report", str(output), "--to", str(folder)])
    assert result.exit_code == 0, result.output
    return result, (folder / "report.html").read_text(), folder


@pytest.mark.parametrize(
    "section",
    [
        "Summary",
        "Images per label and split",
        "Errors",
        "Timings per stage",
        "Explained variance (scree plot)",
        "PCA: first two components",
        "PCA: components 1-3 pairwise",
        "PCA: each label against the rest",
        "Example images",
        "Evaluation",
    ],
)
def test_report_has_each_section(report, section):
    assert f"<h2>{section}</h2>" in report[1]


def test_report_plots_are_real_svg_drawings(report):
    page = report[1]
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 4  # scree, scatter, pairs, per-label panels; counts and timings are tables with bars
    per_label = page.split("<h2>Images per label and split</h2>")[1].split("</section>")[0]
    assert "<svg" not in per_label and per_label.count("class='bar'") == 18
    panels = page.split("<h2>PCA: each label against the rest</h2>")[1].split("</section>")[0]
    assert all(f">{label}</text>" in panels for label in ("Kiwi", "Walnut"))
    scatter = page.split("<h2>PCA: first two components</h2>")[1].split("</section>")[0]
    assert scatter.count("<use ") + scatter.count("<path ") >= 648  # one marker per image
    scree = page.split("<h2>Explained variance (scree plot)</h2>")[1].split("</section>")[0]
    assert "k = " in scree and scree.count("<path ") > 30


def test_report_is_self_contained_with_thumbnails(report, sample_run):
    page = report[1]
    assert page.count('src="data:image/jpeg;base64,') == 18 * 4
    assert not re.search(r'(src|href)="(http|file)', page)
    assert sample_run[1]["run_id"] in page


def test_report_prints_a_summary_and_saves_the_evaluation(report):
    result, _, folder = report
    assert "images read 648" in flat(result.output) and "1-NN accuracy" in flat(result.output)
    assert json.loads((folder / "evaluation.json").read_text())["accuracy"] >= 0.9


def test_evaluate_scores_the_sample_and_writes_json(sample_run, tmp_path):
    result = runner.invoke(app, ["evaluate", str(sample_run[0]), "--json", "--to", str(tmp_path)])
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.output)
    assert evaluation["accuracy"] >= 0.9
    assert evaluation["split"] == NUMBER_BLOCKS  # the sample's names are numbered frames
    assert len(evaluation["per_class"]) == 18 and evaluation["train_images"] + evaluation["test_images"] == 648
    assert json.loads((tmp_path / "evaluation.json").read_text()) == evaluation
    table = runner.invoke(app, ["evaluate", str(sample_run[0]), "--to", str(tmp_path)])
    assert "1-NN accuracy" in flat(table.output) and "Walnut" in table.output


@pytest.mark.parametrize("command", ["report", "evaluate"])
def test_incomplete_outputs_are_refused(sample_run, tmp_path, command):
    copy = tmp_path / "copy"
    shutil.copytree(sample_run[0], copy)
    (copy / "manifest.json").unlink()
    result = runner.invoke(app, [command, str(copy), "--to", str(tmp_path / "r")])
    assert result.exit_code == 2 and "has no manifest.json: it is not a finished run" in flat(result.output)
    (copy / "_RUN_IN_PROGRESS").write_text("{}")
    running = runner.invoke(app, [command, str(copy), "--to", str(tmp_path / "r")])
    assert running.exit_code == 2 and "has not finished" in flat(running.output)
    missing = runner.invoke(app, [command, str(tmp_path / "nothing"), "--to", str(tmp_path / "r")])
    assert missing.exit_code == 2 and "No run output at" in flat(missing.output)


def test_the_split_column_is_used_when_the_run_has_one():
    labels = ["a", "a", "b", "b"]
    _train, test, how = split_rows(
        __import__("numpy").array(labels),
        __import__("numpy").array(["Training", "Test", "Training", "Test"], dtype=object),
    )
    assert how == "the run's split column" and list(test) == [False, True, False, True]
    result = evaluate(labels, ["Training", "Test", "Training", "Test"], [[0.0], [0.1], [5.0], [5.2]])
    assert result["accuracy"] == 1.0 and result["test_images"] == 2


def test_evaluate_states_its_memory_limit():
    from fruits.settings.errors import UserError

    with pytest.raises(UserError, match=r"more than evaluate holds in memory .* pass --sample"):
        evaluate(["a"] * 20, [None] * 20, [[float(i)] for i in range(20)], max_rows=10)
