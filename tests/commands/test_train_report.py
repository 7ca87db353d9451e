"""`mmkeras train` on Shapes: the results table it prints and the report.html it writes."""

import json

from mmkeras.cli import main
from mmkeras.commands.demo import QUICK_BUDGETS
from mmkeras.report.html_report import read_html_report


def test_a_shapes_run_prints_the_results_table_and_writes_its_report(tmp_path, capsys):
    # The demo's smoke budget (tiny data and towers), without the export.
    budget = [
        a for key, value in QUICK_BUDGETS["shapes-clip-tiny"].items() for a in ("--set", f"{key}={json.dumps(value)}")
    ]
    run = tmp_path / "run"
    assert main(["train", "shapes-clip-tiny", "--output", str(run), "--quiet", "--no-export"] + budget) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert '"i2t_r1":' not in out  # the table, not the raw metrics
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["model", "metric", "value", "reference"])
    rows = [line.split() for line in lines[header + 1 : header + 7]]
    assert [row[3] for row in rows] == [f"{metrics[f'{d}_r{k}']:.3f}" for d in ("i2t", "t2i") for k in (1, 5, 10)]
    # t2i chance is K / N over the held-out images; then the bag-of-attributes baseline and the ceiling.
    references = metrics["references"]
    assert [" ".join(row[4:]) for row in rows[3:]] == [
        f"chance {k / metrics['num_test_images']:.3f}, bag of attributes "
        f"{references['bag_of_attributes'][f't2i_r{k}']:.3f}, ceiling {references['bayes_oracle'][f't2i_r{k}']:.3f}"
        for k in (1, 5, 10)]
    assert f"Report: {run / 'report.html'}" in lines
    page = read_html_report((run / "report.html").read_text())
    assert page["sections"] == ["results", "retrieval", "curves"]
    assert len(page["images"]) == 4 + 1  # four retrieval queries and the loss curves
    for row in page["rows"]:
        assert float(row["value"]) == metrics[row["metric"]], row
    assert sorted(p.name for p in (run / "plots").iterdir()) == [
        "curves_shapes-clip-tiny.png", "retrieval_shapes-clip-tiny.png"]
