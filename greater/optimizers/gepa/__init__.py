"""GEPA (Agrawal et al., 2025) on the `gepa` package's own engine: config.py (torch-free), adapter.py (our
shared scorer runs its rollouts; our writer is its reflection model), optimizer.py (the run and resume)."""
