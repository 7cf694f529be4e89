"""The unit of a method comparison: the (task, seed) cell.

One run of a method is one search ending in one prompt, scored on its seed's test split. Two methods run on the
same (task, seed) answer the same test questions, so each cell gives one paired difference in accuracy; most of
the noise of a comparison is between cells (another seed, another search), not between questions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from greater.compare.collect import outcomes


@dataclass(frozen=True)
class Cell:
    """Two methods' final prompts on one (task, seed)'s test questions: A is the method under test."""

    task: str
    seed: int
    pairs: int  # test questions both answered
    only_a: int  # questions A got right and B wrong
    only_b: int  # the reverse

    @property
    def difference(self) -> float:
        """A's accuracy minus B's on the shared questions, in points."""
        return 100 * (self.only_a - self.only_b) / self.pairs


def paired_cell(task: str, seed: int, a: Mapping[str, bool], b: Mapping[str, bool]) -> Cell | None:
    """The cell of two outcome maps (question id -> right); None when they share no question."""
    shared = sorted(a.keys() & b.keys())
    if not shared:
        return None
    only_a = sum(a[i] and not b[i] for i in shared)
    only_b = sum(b[i] and not a[i] for i in shared)
    return Cell(task, seed, len(shared), only_a, only_b)


def cells_of(a_rows: pd.DataFrame, b_rows: pd.DataFrame) -> list[Cell]:
    """The cells two methods share, from collected final-prompt rows (columns task, seed, predictions: one row
    per (task, seed) each), sorted by task then seed."""
    b_by_cell = {(t, s): p for t, s, p in zip(b_rows.task, b_rows.seed, b_rows.predictions)}
    cells = []
    for task, seed, predictions in sorted(zip(a_rows.task, a_rows.seed, a_rows.predictions)):
        if (task, seed) in b_by_cell:
            cell = paired_cell(task, int(seed), outcomes(predictions), outcomes(b_by_cell[(task, seed)]))
            if cell is not None:
                cells.append(cell)
    return cells


def by_task(cells: Iterable[Cell]) -> dict[str, list[float]]:
    """Each task's cell differences (points), tasks in sorted order."""
    out: dict[str, list[float]] = {}
    for cell in sorted(cells, key=lambda c: (c.task, c.seed)):
        out.setdefault(cell.task, []).append(cell.difference)
    return out
