"""One run's lifecycle: launch, run directory, the step loop, stop and budget, checkpoints, resume, the final
pick's place in it and result.json. Launcher-free: the CLI builds a `Launch` once and passes it in; the public
function is `greater.run(cfg)` (greater/api.py)."""
