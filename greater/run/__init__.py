"""One run's lifecycle: launch, run directory, resume, checkpoint, results. Hydra-free: the CLI builds a
`Launch` from Hydra once and passes it in."""
