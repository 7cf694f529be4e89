"""Load a script of scripts/ as a module, to call its `main(argv)` in-process: scripts/ is not a package,
so nothing imports `scripts.*`; the reusable parts live in scripts/recipes and are tested there."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
