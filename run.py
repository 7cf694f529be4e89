"""Optimize a prompt with GReaTer and evaluate it: `python run.py task=bbh/causal_judgement model=gemma2-9b`.

The same as the installed `greater` command (greater/cli.py)."""

from greater.cli import main

if __name__ == "__main__":
    main()
