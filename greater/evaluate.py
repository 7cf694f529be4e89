"""Evaluate a prompt without optimizing it, for baselines and prompts from elsewhere:

    greater-evaluate task=bbh/causal_judgement data_dir=../shared/data prompt="Think it through."
    python -m greater.evaluate ...    (the same)

Every `greater` option works here; the optimizer is fixed to `zs_cot` (no search).
"""

from greater.cli import evaluate_main

if __name__ == "__main__":
    evaluate_main()
