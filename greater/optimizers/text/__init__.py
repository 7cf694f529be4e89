"""The text family: methods whose candidates are prompts written by a model (APE, APO, PE2, OPRO, TextGrad).

pool.py (the prompts and their scores), proposer.py (the optimizer model, the validator, seeds), search.py
(the family's side of the shared step loop), beam.py (the beam-rewrite search APO and PE2 share), and one
module per method with its own meta-prompts and rule."""
