"""The GReaTer ablation: the reference configuration against each of our variants and two controls.

`run_arm` runs one arm for one seed through the real entry point (one job at a time, one thread each);
`table` writes the rows of docs/results/ablation.md from the runs' result.json and per-example predictions:
test accuracy per arm pooled over seeds with a 95% Wilson interval, per-seed accuracies, and the paired
change against the reference on the same test examples. scripts/ablation.py is the recipe over these.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from greater.compare.collect import outcomes
from greater.evaluation.metrics import wilson_interval
from greater.lifecycle.results import RunResult

# arm -> (what it is, overrides on top of the common profile)
ARMS: dict[str, tuple[str, list[str]]] = {
    "zero_shot": ("the initial prompt, not optimized (optimizer=zs_cot)", ["optimizer=zs_cot"]),
    "reference": ("the reference's configuration (optimizer=greater defaults)", []),
    "keep_current": (
        "ours: the current token always competes; accuracy, then CE + 0.2 NLL",
        ["optimizer.selection=keep_current"],
    ),
    "temperature_1": ("ours: no answer temperature (plain CE in the gradient)", ["optimizer.answer_temperature=1.0"]),
    "ascii_filter": ("ours: any printable ASCII token, previous token allowed", ["optimizer.token_filter=ascii"]),
    "final_pool_3": ("ours: only the best 3 by train score go to the dev pick", ["optimizer.final_pool=3"]),
    "selection_halving": (
        "approximate (speed): candidates re-scored on half the batch first, the better half finished",
        ["optimizer.selection_halving=true"],
    ),
    "random_ranking": ("control: the same proposals ranked at random", ["optimizer.ranking=random"]),
    "exact_ranking": (
        "control: the same proposals ranked by their exact loss, reasoning held",
        ["optimizer.ranking=exact"],
    ),
    "no_reasoning_gradient": (
        "control: gradient with the answer right after the question",
        ["optimizer.gradient_over_reasoning=false"],
    ),
}
# Small enough for a shared 2-core CPU (a run takes minutes at one thread): 3 steps on 6 training examples,
# no dev split (the final prompt is the best by train score), 30 test examples, 48 reasoning tokens.
PROFILE = [
    "optimizer=greater_cpu",
    "optimizer.n_steps=3",
    "task.n_train=6",
    "task.n_dev=0",
    "task.n_test=30",
    "max_reasoning_tokens=48",
    "evaluation.evaluate_initial=false",
    "threads=1",
    "logger.plots=false",
]
# The order the arms run in, most informative first, so a stopped ablation still has the comparisons that matter.
DEFAULT_ARMS = ["zero_shot", "reference", "random_ranking", "keep_current", "no_reasoning_gradient", "temperature_1"]


def run_dir(out: Path, task: str, arm: str, seed: int) -> Path:
    return out / task.replace("/", "-") / f"{arm}_seed{seed}"


def run_arm(out: Path, task: str, arm: str, seed: int, entry: Path) -> None:
    """One arm and seed through `entry` (the checkout's run.py), skipped when its result.json exists."""
    target = run_dir(out, task, arm, seed)
    if (target / "result.json").exists():
        return  # already done: the script can be rerun after a stop
    profile = PROFILE
    if any(o.startswith("optimizer=") for o in ARMS[arm][1]):  # another method: drop GReaTer's settings
        profile = [o for o in PROFILE if not o.startswith("optimizer")]
    args = [f"task={task}", f"seed={seed}", *profile, *ARMS[arm][1], f"hydra.run.dir={target}"]
    started = time.time()
    proc = subprocess.run([sys.executable, str(entry), *args], cwd=entry.parent, capture_output=True, text=True)
    print(f"{task} {arm} seed {seed}: rc {proc.returncode}, {time.time() - started:.0f} s", flush=True)
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)


def correct_by_example(target: Path) -> dict[str, bool]:
    """Example id -> right or wrong, for the final prompt of the run in `target`."""
    row = RunResult.read(target).row(prompt_kind="final")
    return outcomes(target / row.predictions_file)


def _optimization_rollouts(target: Path) -> float:
    """Rollouts spent optimizing (scoring prompts), not evaluating on the test set."""
    return float(RunResult.read(target).compute.get("task.rollouts", 0))


def table(out: Path, task: str, seeds: list[int]) -> list[str]:
    rows = [
        f"### {task}",
        "",
        "| arm | what | test acc (pooled) | 95% Wilson | per seed | paired vs reference (+/-) | task rollouts / run "
        "| final prompts |",
        "|---|---|---|---|---|---|---|---|",
    ]
    reference = {s: correct_by_example(run_dir(out, task, "reference", s)) for s in seeds}
    for arm, (what, _) in ARMS.items():
        dirs = [run_dir(out, task, arm, s) for s in seeds]
        if not all((d / "result.json").exists() for d in dirs):
            rows.append(f"| {arm} | {what} | not run | | | | | |")
            continue
        per_seed = [correct_by_example(d) for d in dirs]
        k, n = sum(sum(c.values()) for c in per_seed), sum(len(c) for c in per_seed)
        low, high = wilson_interval(k, n)
        seed_accs = ", ".join(f"{sum(c.values()) / len(c):.3f}" for c in per_seed)
        wins = sum(c[i] and not reference[s][i] for s, c in zip(seeds, per_seed) for i in c)
        losses = sum(reference[s][i] and not c[i] for s, c in zip(seeds, per_seed) for i in c)
        prompts = " / ".join(f"`{RunResult.read(d).final_prompt}`" for d in dirs)
        paired = "-" if arm == "reference" else f"+{wins} / -{losses}"
        rollouts = sum(_optimization_rollouts(d) for d in dirs) / len(dirs)  # the compute an arm spends
        rows.append(
            f"| {arm} | {what} | {k / n:.3f} ({k}/{n}) | [{low:.3f}, {high:.3f}] | {seed_accs} | {paired} "
            f"| {rollouts:.0f} | {prompts} |"
        )
    return rows
