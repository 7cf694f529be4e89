"""GReaTer: the objective (answer loss over the model's own reasoning), token candidates, gradient ranking,
selection and the per-step state."""
