"""The named multirun grids of conf/sweep/, written from the paper's task lists (recipes.paper).

`python scripts/sweeps.py` rewrites the files; `--check` says which differ (a test runs the check), so a
task list changed in one place cannot leave a sweep behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recipes.paper import BBH_TASKS, PAPER_BBH_TASKS, PAPER_TASKS

_RESUME = (
    "Each job continues from a checkpoint in its own directory when it finds one (resume=auto, the multirun\n"
    "default), so a re-queued job, or a rerun with the same hydra.sweep.dir, picks up where it stopped."
)


@dataclass(frozen=True)
class Sweep:
    name: str  # the file conf/sweep/<name>.yaml, chosen with sweep=<name>
    comment: str  # what the grid is and a command that runs it
    tasks: tuple[str, ...]  # task config names

    def yaml(self) -> str:
        head = "\n".join(f"# {line}".rstrip() for line in self.comment.splitlines())
        return f"# @package _global_\n{head}\nhydra:\n  sweeper:\n    params:\n      task: {','.join(self.tasks)}\n"


SWEEPS: tuple[Sweep, ...] = (
    Sweep(
        "bbh",
        "All 27 BIG-Bench Hard tasks as one multirun (Hydra's glob() does not reach into task/bbh/):\n"
        "  python run.py -m sweep=bbh optimizer=zs_cot evaluation.n_test=5 data_dir=../shared/data\n" + _RESUME,
        tuple(f"bbh/{t}" for t in BBH_TASKS),
    ),
    Sweep(
        "paper_bbh21",
        "The 21 BIG-Bench Hard tasks of the paper's Table 1 (the tasks of psunlpgroup/GreaTer\n"
        "experiments/run_llama3_all.sh; recipes.paper.PAPER_BBH_TASKS), as one multirun:\n"
        "  python run.py -m experiment=paper_bbh sweep=paper_bbh21 model=gemma2-9b data_dir=/path/to/data",
        tuple(f"bbh/{t}" for t in PAPER_BBH_TASKS),
    ),
    Sweep(
        "paper_tasks",
        "Every task of the paper's Table 1: the 27 BBH tasks, GSM8K and FOLIO, as one multirun.\n"
        "  python run.py -m sweep=paper_tasks model=gemma2-9b data_dir=/path/to/data hydra/launcher=slurm\n" + _RESUME,
        PAPER_TASKS,
    ),
)


def stale(conf: Path) -> list[Path]:
    """The sweep files under conf/sweep/ whose text differs from what the task lists give."""
    paths = [conf / "sweep" / f"{s.name}.yaml" for s in SWEEPS]
    return [p for p, s in zip(paths, SWEEPS) if not p.exists() or p.read_text() != s.yaml()]


def write(conf: Path) -> list[Path]:
    """Rewrite every sweep file that differs; returns those rewritten."""
    changed = stale(conf)
    for sweep in SWEEPS:
        path = conf / "sweep" / f"{sweep.name}.yaml"
        if path in changed:
            path.write_text(sweep.yaml())
    return changed
