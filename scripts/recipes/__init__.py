"""The reusable parts of the scripts in scripts/: each script is a thin recipe (arguments, then calls) over
these modules, which tests check directly.

- paper: the paper's task lists and published numbers (the one place of both);
- methods: the display name of each method in tables;
- sweeps: conf/sweep/*.yaml written from the task lists;
- statistics: pooled accuracy with Wilson intervals, question-level McNemar tests (method-level comparisons
  are greater.compare's);
- tables: the paper-style Tables 1 and 2; mini_tables: the miniature profile (markdown, CSV, figures);
- ablation: the GReaTer ablation's arms and its table;
- scan: a zero-shot scan that reads one reasoning in both evaluation modes, as `evaluate_prompt` does;
- patterns, benchmark: one GReaTer step timed the engine's way, the reference's way and as bare calls.

Importing the package loads nothing; each module imports only what it needs (paper, methods and sweeps
need no torch, pandas or Hydra).
"""
