"""A real GReaTer run on the tiny model, as a child process for tests/test_faults.py to signal.

    python tests/fault_child.py <run_dir> <n_steps> [--resume] [--stall-after N]

It holds the run directory's lock, turns SIGINT/SIGTERM into a stop at the next step boundary, prints
"step N" to stdout as each step ends, and prints the final prompt as "final: <prompt>". `--stall-after N`
makes every step after the N-th sleep for a minute, so that a step is surely in flight when signalled.
Exit status: 0 done, 1 a one-line error, 128+signal after a stop."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this worktree's greater, run as a script

from greater.lifecycle.checkpoint import load_checkpoint
from greater.lifecycle.context import context_for
from greater.lifecycle.lock import RunLock
from greater.lifecycle.loop import optimize
from greater.lifecycle.stop import RunStopped, stop_on_signals
from greater.optimizers.greater.config import GreaterConfig
from greater.optimizers.greater.optimizer import GreaterOptimizer
from greater.tasks.base import Example, Task
from tests.tiny import tiny_language_model


def parity_task() -> Task:
    examples = [Example(f"Is {n} even?", "Yes" if n % 2 == 0 else "No", id=str(n)) for n in range(10)]
    return Task(
        "parity", train=examples[:4], test=examples[6:], initial_prompt="Think step by step.", answer_type="yes_no"
    )


def optimizer(n_steps: int) -> GreaterOptimizer:
    return GreaterOptimizer(GreaterConfig(n_steps=n_steps, topk=4, n_groups=2, group_size=2, min_candidates=2))


def run(run_dir: Path, n_steps: int, resume: bool = False, stall_after: int | None = None) -> str:
    """The final prompt of a GReaTer run in `run_dir` (resumed from its checkpoint with `resume`)."""
    lm, task, opt = tiny_language_model(seed=0), parity_task(), optimizer(n_steps)

    class Progress:
        def on_step_end(self, record):
            print(f"step {record.step}", flush=True)

    if stall_after is not None:
        step, done = opt.step, []

        def stalling(state):
            if len(done) >= stall_after:
                time.sleep(60)
            done.append(1)
            return step(state)

        opt.step = stalling
    saved = load_checkpoint(run_dir, opt.name) if resume else None
    ctx = context_for(
        lm, task, max_reasoning_tokens=6, seed=0, run_dir=run_dir, callbacks=[Progress()], resume_state=saved
    )
    return optimize(opt, lm, task, ctx).final_prompt


def main(argv: list[str]) -> int:
    run_dir, n_steps = Path(argv[0]), int(argv[1])
    stall = int(argv[argv.index("--stall-after") + 1]) if "--stall-after" in argv else None
    try:
        with RunLock(run_dir), stop_on_signals():
            print(f"final: {run(run_dir, n_steps, '--resume' in argv, stall)}", flush=True)
    except RunStopped as stop:
        print(stop.line(run_dir), file=sys.stderr, flush=True)
        return stop.exit_code
    except ValueError as err:  # RunLocked, CheckpointError: the one line the command line prints
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
