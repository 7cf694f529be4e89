"""The prompts a text method has made, each scored on whole splits with the shared scorer.

Node 0 is the starting prompt. Ranking is by score on one split (the search split: dev when the run has
one, else train, unless the method says otherwise); ties go to the older node, so the start wins a tie.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from greater.config import Choice
from greater.optimizers.text.validator import normalize

if TYPE_CHECKING:
    from greater.engine.rollouts import Scorer
    from greater.optimizers.loop import Stages
    from greater.tasks.base import Example


class Split(Choice):
    train = "train"
    dev = "dev"


@dataclass
class Node:
    """One prompt in the pool."""

    prompt: str
    parent: int | None = None
    step: int = 0  # the step that made it (0: the start)
    origin: str = "start"
    scores: dict[Split, float] = field(default_factory=dict)  # accuracy on the whole split
    info: dict[str, Any] = field(default_factory=dict)  # the method's own (e.g. the critique that made it)
    index: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "parent": self.parent,
            "step": self.step,
            "origin": self.origin,
            "scores": {split.value: score for split, score in self.scores.items()},
            "info": self.info,
            "index": self.index,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Node:
        return cls(**{**data, "scores": {Split(k): v for k, v in data["scores"].items()}})


class Pool:
    def __init__(self, scorer: Scorer, splits: dict[Split, list[Example]], search_split: Split, stages: Stages):
        self.scorer, self.splits, self.split, self.stages = scorer, splits, search_split, stages
        self.nodes: list[Node] = []

    @property
    def start(self) -> Node:
        return self.nodes[0]

    def add(self, prompt: str, parent: int | None, step: int, origin: str, **info: Any) -> Node:
        node = Node(prompt, parent, step, origin, info=info, index=len(self.nodes))
        self.nodes.append(node)
        return node

    def seen(self) -> set[str]:
        """The pool's prompts as duplicate keys: a proposal equal to one of them is rejected."""
        return {normalize(n.prompt) for n in self.nodes}

    def score(self, nodes: list[Node], split: Split | None = None) -> None:
        """Fill node.scores[split] for the nodes that lack it, in one batched scoring."""
        split = split or self.split
        todo = [n for n in nodes if split not in n.scores]
        if todo:
            with self.stages("scoring"):
                results = self.scorer.score_texts([n.prompt for n in todo], self.splits[split])
            for node, result in zip(todo, results):
                node.scores[split] = result.accuracy

    def ranked(self, split: Split | None = None) -> list[Node]:
        """Scored nodes, best first; ties go to the older node."""
        split = split or self.split
        return sorted((n for n in self.nodes if split in n.scores), key=lambda n: (-n.scores[split], n.index))

    def beam(self, k: int) -> list[Node]:
        return self.ranked()[:k]

    @property
    def best(self) -> Node:
        ranked = self.ranked()
        return ranked[0] if ranked else self.nodes[0]

    def to_json(self) -> list[dict[str, Any]]:
        return [n.to_json() for n in self.nodes]

    def load(self, data: list[dict[str, Any]]) -> None:
        self.nodes = [Node.from_json(n) for n in data]
