"""Zero-shot scan of the 27 BIG-Bench Hard tasks on one model, in both evaluation modes (issue 12).

    python scripts/bbh_scan.py --data-dir ../shared/data --n-test 40 --threads 1 \
        --out docs/results/bbh_zero_shot_scan

For each task: the task's initial prompt, greedy reasoning once, then the answer read both ways, as
`python -m greater.evaluate evaluation.mode=generate|loglik` reads it (one reasoning serves both modes,
which halves the cost on a CPU). Rows are appended to <out>.csv as tasks finish, so an interrupted scan
continues where it stopped; <out>.md is rewritten from the CSV each time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from greater.engine.frame import extractor_ids, generate_reasoning, prompt_slots
from greater.evaluation.evaluator import most_likely_options
from greater.evaluation.metrics import wilson_interval
from scripts.reproduce_tables import BBH_TASKS, PAPER_BBH_TASKS


def scan_task(lm, task, max_reasoning_tokens: int, max_answer_tokens: int = 16) -> dict:
    examples = task.test
    prompt_ids = lm.encode(task.initial_prompt)
    slots = prompt_slots(lm, task, examples, "after")
    reasonings = generate_reasoning(lm, slots, prompt_ids, max_reasoning_tokens)
    heads = [slot.with_prompt(prompt_ids) + r + extractor_ids(lm, task) for slot, r in zip(slots, reasonings)]
    generated = [task.parse(lm.decode(ids)) for ids in lm.generate(heads, max_answer_tokens)]
    row = {"n": len(examples), "options": len(task.options or []), "majority": _majority(examples)}
    row["chance"] = 1 / row["options"] if row["options"] else 0.0
    row.update(_scores("generate", generated, examples, task))
    if task.options:  # free-text tasks (dyck, word sorting, arithmetic) have no option to rank
        row.update(_scores("loglik", most_likely_options(lm, task, heads), examples, task))
    return row


def _majority(examples) -> float:
    """Accuracy of always answering the most frequent gold answer of this test split."""
    return Counter(ex.answer for ex in examples).most_common(1)[0][1] / len(examples)


def _scores(mode: str, answers, examples, task) -> dict:
    correct = sum(task.is_correct(a, ex) for a, ex in zip(answers, examples))
    low, high = wilson_interval(correct, len(examples))
    return {f"{mode}_acc": correct / len(examples), f"{mode}_ci_low": low, f"{mode}_ci_high": high}


def render(table: pd.DataFrame) -> str:
    shown = table.copy()
    for mode in ("generate", "loglik"):
        for part in ("acc", "ci_low", "ci_high"):  # a scan of free-text tasks only has no loglik columns
            if f"{mode}_{part}" not in shown:
                shown[f"{mode}_{part}"] = float("nan")
        shown[mode] = [
            f"{100 * a:.0f} [{100 * lo:.0f}, {100 * hi:.0f}]" if pd.notna(a) else "-"
            for a, lo, hi in zip(shown[f"{mode}_acc"], shown[f"{mode}_ci_low"], shown[f"{mode}_ci_high"])
        ]
    shown["chance"] = (100 * shown.chance).round(0)
    shown["majority"] = (100 * shown.majority).round(0)
    shown["in paper's 21"] = shown.task.isin(PAPER_BBH_TASKS).map({True: "yes", False: "no"})
    columns = ["task", "n", "options", "chance", "majority", "generate", "loglik", "in paper's 21"]
    return shown[columns].to_markdown(index=False)


def page(table: pd.DataFrame, args: argparse.Namespace) -> str:
    """The markdown page: what was run, how far it got, then the table."""
    done = len(table)
    head = [
        f"# Zero-shot BBH scan: {args.model}",
        "",
        f"{done} of {len(BBH_TASKS)} tasks scanned so far"
        + ("" if done >= len(BBH_TASKS) else " (the scan stopped for time; rerun the command to continue)")
        + f". Each task: its first {args.n_test} test examples, the task's initial prompt, greedy reasoning up to "
        f"{args.max_reasoning_tokens} tokens, then the answer read two ways: generated after the extractor and "
        "parsed (`generate`), or the answer option with the highest log-likelihood (`loglik`; free-text tasks "
        "have none). Accuracy in % with a 95% Wilson interval; chance is one over the number of options and "
        "majority is always answering this split's most frequent gold answer.",
        "",
        "```bash",
        f"python scripts/bbh_scan.py --data-dir ../shared/data --n-test {args.n_test} --threads 1",
        "```",
        "",
    ]
    return "\n".join(head) + "\n" + render(table) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n-test", type=int, default=40)
    parser.add_argument("--max-reasoning-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--batch-tokens", type=int, default=16384, help="padded tokens per generation batch (BBH questions are long)"
    )
    parser.add_argument("--tasks", nargs="*", default=BBH_TASKS)
    parser.add_argument("--out", type=Path, default=Path("docs/results/bbh_zero_shot_scan"))
    parser.add_argument("--render-only", action="store_true", help="rewrite <out>.md from <out>.csv and stop")
    args = parser.parse_args(argv)
    csv = args.out.with_suffix(".csv")
    if args.render_only:
        if not csv.exists():
            parser.error(f"--render-only: no scan results at {csv}; run the scan first (drop --render-only)")
        args.out.with_suffix(".md").write_text(page(pd.read_csv(csv), args))
        return 0

    import torch

    import greater

    torch.set_num_threads(args.threads)
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["task"])
    lm = greater.load_model(args.model)
    lm.batch_tokens = args.batch_tokens  # the model config's cap is sized for short questions
    for name in [t for t in args.tasks if t not in set(done.task)]:
        started = time.perf_counter()
        task = greater.load_task(f"bbh/{name}", data_dir=args.data_dir, n_test=args.n_test)
        row = {"task": name, "model": args.model, **scan_task(lm, task, args.max_reasoning_tokens)}
        row["seconds"] = round(time.perf_counter() - started, 1)
        done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
        done.round(4).to_csv(csv, index=False)
        args.out.with_suffix(".md").write_text(page(done, args))
        print(f"{name}: generate {row['generate_acc']:.2f} loglik {row.get('loglik_acc', float('nan')):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
