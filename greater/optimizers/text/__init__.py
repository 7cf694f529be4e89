"""The text family: methods whose candidates are prompts written by a model (APE, APO, PE2, OPRO, TextGrad),
over one shared search (pool, proposer, validator)."""
