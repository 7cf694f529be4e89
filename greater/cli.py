"""The command line: `greater` (also `python run.py`) and `greater-evaluate` (also `python -m greater.evaluate`).

A mistake the user can fix (a typo in a key, a value outside a closed set, a missing file) ends the program
with one line, `error: <what is wrong and how to fix it>`, and exit status 1. GREATER_DEBUG=1 or
HYDRA_FULL_ERROR=1 shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
from collections.abc import Iterator

# Errors a user can fix from the config or the data: printed as one line rather than a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, ImportError)


def main() -> None:
    """`greater <overrides>`: optimize a prompt and evaluate it (conf/config.yaml)."""
    _launch("config")


def evaluate_main() -> None:
    """`greater-evaluate <overrides>`: evaluate a prompt as it is (conf/evaluate.yaml: optimizer=zs_cot)."""
    _launch("evaluate")


def _job(cfg) -> float | None:
    with configure_errors():
        from greater.run.runner import run  # the run's own modules load only when a job runs, not for --cfg/--help

        return run(cfg)


def _launch(config_name: str) -> None:
    import hydra

    from greater.config import conf_dir, register_configs

    if _debug():
        os.environ["GREATER_DEBUG"] = "1"  # HYDRA_FULL_ERROR=1 is taken over below: remember the user's wish
    register_configs()
    sys.argv = [sys.argv[0], *resume_overrides(sys.argv[1:])]
    task = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=config_name)(_job)
    # Hydra prints a composition error over several lines; with HYDRA_FULL_ERROR it raises instead, and the
    # error is printed here as one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    with configure_errors(everything=True):
        task()


def resume_overrides(args: list[str]) -> list[str]:
    """`resume=<dir>` continues the run in <dir>: Hydra's own files and log go there too, beside the run's.
    The resumed command's Hydra record goes to <dir>/.hydra-resumed, keeping the original's in .hydra."""
    values = [a.split("=", 1)[1] for a in args if a.startswith("resume=")]
    multirun = any(a in ("-m", "--multirun") for a in args)
    if not values or values[-1] in ("", "null", "auto") or multirun:
        return args
    extra = []
    if not any(a.startswith("hydra.run.dir=") for a in args):
        extra.append(f"hydra.run.dir={values[-1]}")
    if not any(a.startswith("hydra.output_subdir=") for a in args):
        extra.append("hydra.output_subdir=.hydra-resumed")
    return [*args, *extra]


def _debug() -> bool:
    return bool(os.environ.get("GREATER_DEBUG")) or os.environ.get("HYDRA_FULL_ERROR") == "1"


@contextlib.contextmanager
def configure_errors(everything: bool = False) -> Iterator[None]:
    """Print user errors (all errors when `everything`) as `error: <one line>` and exit 1."""
    caught = Exception if everything else USER_ERRORS
    try:
        yield
    except caught as err:
        if os.environ.get("GREATER_DEBUG"):
            raise
        line = error_line(err)
        if not _is_user_error(err):  # a bug, not a setting: say what kind, and how to see where
            line = f"{type(err).__name__}: {line} (GREATER_DEBUG=1 shows the traceback)"
        print(f"error: {line}", file=sys.stderr)
        raise SystemExit(1) from None


def _is_user_error(err: BaseException) -> bool:
    from hydra.errors import HydraException

    return isinstance(err, (*USER_ERRORS, HydraException, OSError)) or _is_config_error(err)


def error_line(err: BaseException) -> str:
    """One line for an error: Hydra's composition errors joined with their cause, which names the key and,
    for a closed set, the allowed values."""
    from hydra.errors import MissingConfigException

    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        return _missing_config_line(err.missing_cfg_file)
    line = _first_line(err)
    cause = err.__cause__
    if cause is not None and _is_config_error(cause) and _first_line(cause) not in line:
        return f"{line.rstrip('.')}: {_first_line(cause)}"
    return line


def _missing_config_line(missing: str) -> str:
    """`model=gpt-5`: the options of the group, or the few that look like what was typed."""
    from greater.config import conf_dir

    group, _, name = missing.partition("/")
    root = conf_dir() / group
    options = sorted(
        p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml") if not p.name.startswith("_")
    )
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.6)
    if close:
        return f"{group}={name}: no such config in conf/{group}/; did you mean {' or '.join(close)}?"
    return f"{group}={name}: no such config in conf/{group}/; choose from: {', '.join(options)}"


def _is_config_error(err: BaseException) -> bool:
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(err, OmegaConfBaseException)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
