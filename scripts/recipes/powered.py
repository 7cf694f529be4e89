"""The powered experiment of issue 20: its arms, its jobs, and the compact records that outlive a machine.

A job is one (model, task, arm, seed) run through the real entry point (run.py) into a scratch directory under
`multirun/powered/`; when it ends, `compact` keeps what every table needs (result.json, history.jsonl, the config
and each evaluated prompt's per-example correctness, gzipped) under `docs/results/powered/records/<key>/`, which
is committed. `pending` lists the jobs without a record, so a rerun on any machine continues where the committed
records stop; an interrupted job resumes from its scratch checkpoint when that is still there.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from greater.lifecycle.results import RunResult

RECORDS = Path("docs/results/powered/records")
SCRATCH = Path("multirun/powered")
# Issue 35: the primary arms run on 11 seeds (3 tasks x 11 = 33 cells a model: what GReaTer vs random ranking, the
# widest spread measured, needs for 6 points at 200 questions; docs/results/powered/design.md), the secondary
# arms on the first 5.
PRIMARY_SEEDS = tuple(range(11))
SECONDARY_SEEDS = tuple(range(5))
# Issue 35: a job scores the first 200 of its seed's 342 test questions. Question noise (sd about 3 points at 342)
# is the smaller part of the between-cell spread (7-11), so 200 questions cost little power per cell (the same 33
# cells reach 6 points) and save a third of a ZS-CoT job; 100 would need a 12th seed (design page). Records from
# before (the first 44) hold all 342; a cell pairs two arms on the questions both scored.
TEST_QUESTIONS = 200

# The protocol in miniature: 8 training examples for the search, 50 dev for every method's final pick (parsed, as
# test is scored), the rest of 400 generated questions (342) as the test split, of which the first TEST_QUESTIONS
# are scored; 64 reasoning tokens; one thread a job. The generation cache on disk: every arm of a cell reads the
# greedy reasonings another arm already generated (the initial prompt on dev and test, the same prompts in the dev
# pools); the same tokens, counted as the same work (greater.engine.generation_cache).
PROTOCOL = [
    "generation_cache=true",
    "task.synthetic_size=400",
    "task.n_train=8",
    "task.n_dev=50",
    "task.n_test=0",
    f"evaluation.n_test={TEST_QUESTIONS}",
    "max_reasoning_tokens=64",
    "threads=1",
    "evaluation.evaluate_initial=false",
    "logger.plots=false",
    "logger.progress_bar=false",
]
# Every method stops at the same number of (prompt, example) reasonings on the training split.
BUDGET = ["optimizer.budget.max_rollouts=352"]
# GReaTer visits each of the 7 positions of "Let's think step by step." twice.
GREATER = ["optimizer=greater_cpu", "optimizer.n_steps=14"]


@dataclass(frozen=True)
class Arm:
    name: str
    label: str  # its row in the tables
    what: str
    overrides: tuple[str, ...]


ARMS: dict[str, Arm] = {
    arm.name: arm
    for arm in [
        Arm("zs_cot", "ZS-CoT", "the initial prompt, not optimized", ("optimizer=zs_cot",)),
        Arm("greater", "GReaTer", "GReaTer, the reference configuration", tuple(GREATER)),
        Arm(
            "random_ranking",
            "GReaTer, random ranking",
            "control: the same proposals ranked at random",
            (*GREATER, "optimizer.ranking=random"),
        ),
        Arm(
            "exact_ranking",
            "GReaTer, exact ranking",
            "control: the same proposals ranked by their exact loss with the reasoning held fixed",
            (*GREATER, "optimizer.ranking=exact"),
        ),
        Arm(
            "no_reasoning",
            "GReaTer, no reasoning",
            "control: the gradient with the answer right after the question",
            (*GREATER, "optimizer.gradient_over_reasoning=false"),
        ),
        Arm(
            "keep_current",
            "GReaTer, keep current",
            "ours: the current token always competes",
            (*GREATER, "optimizer.selection=keep_current"),
        ),
        Arm(
            "pe2",
            "PE2",
            "PE2, the strongest text baseline of the mini tables",
            ("optimizer=pe2_cpu", "optimizer.n_steps=6"),
        ),
        Arm(
            "gepa",
            "GEPA",
            "GEPA, the model reflecting on itself",
            ("optimizer=gepa_cpu", "optimizer.max_metric_calls=352"),
        ),
        Arm(
            "apo_writer",
            "APO, other model writing",
            "APO with the other embedded model as its writer",
            ("optimizer=apo_cpu", "optimizer.writer={other}"),
        ),
    ]
}
# The order arms are listed and tabled in.
ARM_ORDER = [
    "zs_cot",
    "greater",
    "random_ranking",
    "exact_ranking",
    "pe2",
    "no_reasoning",
    "keep_current",
    "gepa",
    "apo_writer",
]
EMBEDDED = ("smollm2-135m", "gemma3-270m")  # each writes for the other in the writer arm
TEXT_ARMS = ("pe2", "gepa", "apo_writer")
# The best text method is a primary comparison; until the records show one best (recipes/powered_design.py
# best_text_arm), PE2, the strongest text baseline of the earlier mini tables.
PROVISIONAL_TEXT_ARM = "pe2"
CONTROL_PRIMARIES = ("zs_cot", "greater", "random_ranking", "exact_ranking")


def primary_arms(best_text: str = PROVISIONAL_TEXT_ARM) -> list[str]:
    """The arms of the primary comparisons (GReaTer and what it is compared with first), in ARM_ORDER."""
    return [a for a in ARM_ORDER if a in CONTROL_PRIMARIES or a == best_text]


def seeds_of(arm: str, best_text: str = PROVISIONAL_TEXT_ARM) -> tuple[int, ...]:
    return PRIMARY_SEEDS if arm in primary_arms(best_text) else SECONDARY_SEEDS


@dataclass(frozen=True)
class Job:
    model: str
    task: str
    arm: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.model}/{self.task.split('/')[-1]}/{self.arm}/seed{self.seed}"

    @property
    def other_model(self) -> str:
        return next((m for m in EMBEDDED if m != self.model), self.model)

    def overrides(self) -> list[str]:
        return [
            f"model={self.model}",
            f"task={self.task}",
            f"seed={self.seed}",
            *PROTOCOL,
            *BUDGET,
            *(o.format(other=self.other_model) for o in ARMS[self.arm].overrides),
            f"hydra.run.dir={SCRATCH / self.key}",
        ]


def jobs(
    tasks_by_model: dict[str, list[str]],
    arms: Iterable[str],
    seeds: Sequence[int] | None = None,
    best_text: str = PROVISIONAL_TEXT_ARM,
) -> list[Job]:
    """Every job, in the order they run: the primary arms first, then the secondary ones; within each group seed
    by seed, every arm, model and task of a seed before the next seed, so a stopped experiment leaves whole
    cells of every comparison in its group rather than many seeds of one arm and none of another. `seeds`
    replaces each group's own (PRIMARY_SEEDS, SECONDARY_SEEDS)."""
    primary = primary_arms(best_text)
    groups = [(primary, PRIMARY_SEEDS), ([a for a in ARM_ORDER if a not in primary], SECONDARY_SEEDS)]
    chosen = set(arms)
    return [
        Job(model, task, arm, seed)
        for group, own_seeds in groups
        for seed in (own_seeds if seeds is None else seeds)
        for arm in group
        if arm in chosen
        for model, tasks in tasks_by_model.items()
        for task in tasks
    ]


def pending(all_jobs: list[Job], records: Path = RECORDS) -> list[Job]:
    return [job for job in all_jobs if not (records / job.key / "result.json").exists()]


def compact(run_dir: Path, record: Path) -> Path:
    """Copy what the tables read from a finished run into its record: the small files as they are, and each
    predictions file reduced to (id, parsed answer, correct), gzipped (the reasonings stay in the scratch run)."""
    result = RunResult.read(run_dir)
    tmp = record.with_name(record.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("result.json", "history.jsonl", "config.yaml"):
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, tmp / name)
    for row in result.test:
        if row.predictions_file:
            rows = [json.loads(line) for line in (run_dir / row.predictions_file).read_text().splitlines() if line]
            kept = [{"id": r["id"], "parsed_answer": r["parsed_answer"], "correct": r["correct"]} for r in rows]
            with gzip.open(tmp / (row.predictions_file + ".gz"), "wt", encoding="utf-8") as handle:
                handle.writelines(json.dumps(r) + "\n" for r in kept)
    shutil.rmtree(record, ignore_errors=True)
    tmp.rename(record)  # a record exists whole or not at all: an interrupted compaction is redone
    return record


def run_job(job: Job, entry: Path, records: Path = RECORDS) -> tuple[Job, int, float]:
    """One job through `entry` (the checkout's run.py), resuming its scratch run, then compacted."""
    started = time.time()
    args = [sys.executable, str(entry), *job.overrides(), "resume=auto"]
    proc = subprocess.run(args, cwd=entry.parent, capture_output=True, text=True)
    if proc.returncode == 0:
        compact(entry.parent / SCRATCH / job.key, entry.parent / records / job.key)
    else:
        print(f"{job.key}: rc {proc.returncode}\n{proc.stderr[-1500:]}", file=sys.stderr, flush=True)
    return job, proc.returncode, time.time() - started


def run_all(todo: list[Job], entry: Path, parallel: int, deadline: float | None = None) -> int:
    """Run the jobs `parallel` at a time in order; no new job starts after `deadline` (epoch seconds). Returns the
    number that failed."""
    failed = 0

    def one(job: Job):
        if deadline is not None and time.time() > deadline:
            return job, None, 0.0
        return run_job(job, entry)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for job, rc, seconds in pool.map(one, todo):
            if rc is not None:
                failed += rc != 0
                print(f"{job.key}: {'done' if rc == 0 else 'FAILED'} in {seconds:.0f} s", flush=True)
    return failed


def collect_records(records: Path = RECORDS):
    """Every record as collect's table, with the arm in the `optimizer` column: several arms run the same
    optimizer, and the tables compare arms."""
    from greater.compare.collect import collect

    table = collect(records)
    table["optimizer"] = [Path(d).parent.name for d in table.run_dir]  # records/<model>/<task>/<arm>/seed<S>
    return table
