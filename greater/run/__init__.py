"""One run's lifecycle: launch, run directory, resume, checkpoint, results. Launcher-free: the CLI builds a
`Launch` once and passes it in.

`greater.run(cfg)` is the public function (greater/api.py), and `greater.run` is also this package: once
any module imports the package, Python sets the attribute `greater.run` to it, over the function. So the
package is callable, and calling it is calling the function.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _RunPackage(types.ModuleType):
    def __call__(self, cfg: Any) -> float | None:
        from greater.api import run

        return run(cfg)


sys.modules[__name__].__class__ = _RunPackage
