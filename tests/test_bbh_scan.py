"""scripts/bbh_scan.py without a model: the page is rendered from the CSV the scan appends to, and a render
with no CSV yet stops with a one-line message."""

import pandas as pd
import pytest

from scripts.bbh_scan import main

ROWS = [
    # a multiple-choice task has both modes, a free-text one only `generate`
    {"task": "navigate", "model": "m", "n": 40, "options": 2, "majority": 0.525, "chance": 0.5,
     "generate_acc": 0.2, "generate_ci_low": 0.105, "generate_ci_high": 0.3476,
     "loglik_acc": 0.425, "loglik_ci_low": 0.2851, "loglik_ci_high": 0.578, "seconds": 74.1},
    {"task": "dyck_languages", "model": "m", "n": 40, "options": 0, "majority": 0.1, "chance": 0.0,
     "generate_acc": 0.0, "generate_ci_low": 0.0, "generate_ci_high": 0.0876, "seconds": 187.6},
]  # fmt: skip


def test_render_only_writes_the_page_from_the_csv(tmp_path):
    out = tmp_path / "scan"
    pd.DataFrame(ROWS).to_csv(out.with_suffix(".csv"), index=False)
    assert main(["--render-only", "--out", str(out), "--model", "m"]) == 0
    page = out.with_suffix(".md").read_text()
    assert "2 of 27 tasks scanned so far" in page
    lines = {line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| ")}
    assert "20 [10, 35]" in lines["navigate"] and "42 [29, 58]" in lines["navigate"]  # percent, Wilson bounds
    assert lines["navigate"].rstrip("| ").endswith("yes")  # navigate is in the paper's 21 tasks
    assert "| -" in lines["dyck_languages"]  # no loglik for a free-text task


def test_render_only_without_a_scan_says_so_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--render-only", "--out", str(tmp_path / "scan")])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no scan results at" in error and "run the scan first" in error
    assert not (tmp_path / "scan.md").exists()
