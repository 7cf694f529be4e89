"""A whole run (GReaTer, then the test evaluation) on tiny models, as a child process for tests/test_faults.py
to signal during the test split.

    python tests/eval_stop_child.py <run_dir> [--resume] [--pause]

The runner runs as the command line runs it, with the tiny model (tests/tiny.py, batches of 2) standing in for
SmolLM2. After each test-evaluation batch it prints "test batch <n examples>" to stdout; `--pause` then waits
a second, so a signal sent on that line surely arrives while the evaluation runs. `--resume` continues the
run in <run_dir> (resume=<run_dir>). Exit status: 0 done, 1 a one-line error, 128+signal after a stop."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this worktree's greater, run as a script

from greater.lifecycle import plan, runner
from greater.lifecycle.stop import RunStopped
from greater.models.language_model import LanguageModel
from tests.test_runner import composed
from tests.tiny import tiny_language_model

OVERRIDES = ("optimizer.n_steps=1", "task.n_test=6", "evaluation.evaluate_initial=true")


def tiny_from_config(cfg, cache_dir=None, usage=None) -> LanguageModel:
    """What LanguageModel.from_config returns here: the same tiny model every time, in batches of 2."""
    lm = tiny_language_model(seed=1, usage=usage, batch_size=2)
    lm.name = cfg.name
    return lm


def run(run_dir: Path, resume: bool = False, pause: bool = False) -> None:
    LanguageModel.from_config = staticmethod(tiny_from_config)
    batches = plan.evaluate_in_batches

    def reported(*args, **kwargs):
        for result in batches(*args, **kwargs):
            print(f"test batch {result.n}", flush=True)
            if pause:
                time.sleep(1.0)
            yield result

    plan.evaluate_in_batches = reported
    cfg = composed(run_dir, *OVERRIDES, *([f"resume={run_dir}"] if resume else []))
    runner.run(cfg)


def main(argv: list[str]) -> int:
    try:
        run(Path(argv[0]), "--resume" in argv, "--pause" in argv)
    except RunStopped as stop:  # the runner has logged its line
        return stop.exit_code
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
