"""The command line: `greater` (also `python run.py`) and `greater-evaluate` (also `python -m greater.evaluate`).

A mistake the user can fix (a typo in a key, a value outside a closed set, a missing file) ends the program
with one line, `error: <what is wrong and how to fix it>`, and exit status 1. GREATER_DEBUG=1 or
HYDRA_FULL_ERROR=1 shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException

import greater
from greater.config import conf_dir
from greater.config_store import register_configs
from greater.lifecycle.launch import Launch
from greater.lifecycle.stop import RunStopped

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
        try:  # greater.run loads torch and the model's modules on first use: --help and --cfg answer at once
            return greater.run(cfg, launch_from_hydra())
        except RunStopped as stop:  # SIGTERM (SLURM's pre-emption): 143, SIGINT 130; the resume line is logged
            raise SystemExit(stop.exit_code) from None


def launch_from_hydra():
    """The one place that reads Hydra's job state: this command's overrides and whether it is a multirun
    job (and of which sweep, and whether its sweeper is a search that reads the jobs' return values)."""
    hc = HydraConfig.get()
    mode = hc.mode.name if hc.mode is not None else None
    multirun = mode == "MULTIRUN"
    return Launch(
        overrides=tuple(hc.overrides.task),
        multirun=multirun,
        # the directory that holds this job's: where the sweep's jobs share their test predictions
        sweep_dir=Path(hc.runtime.output_dir).parent if multirun else None,
        search=multirun and "BasicSweeper" not in str(hc.sweeper.get("_target_", "")),
        mode=mode,
    )


def _launch(config_name: str) -> None:
    if _debug():
        os.environ["GREATER_DEBUG"] = "1"  # HYDRA_FULL_ERROR=1 is taken over below: remember the user's wish
    typed = sys.argv[1:]
    with configure_errors(command=typed):
        args = file_overrides(typed)
    register_configs()
    sys.argv = [sys.argv[0], *resume_overrides(args)]
    task = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=config_name)(_job)
    # Hydra prints a composition error over several lines; with HYDRA_FULL_ERROR it raises instead, and the
    # error is printed here as one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    with configure_errors(everything=True, command=typed):
        task()


# Settings that take prose: `<key>_file=PATH` reads the value from a UTF-8 file (a paragraph, a prompt found
# by another tool, text with quotes, colons, brackets or newlines), so the shell and Hydra never see it.
PROSE_KEYS = ("prompt", "task.initial_prompt", "task.extractor", "task.question_template", "model.system_prompt")


def file_overrides(args: list[str]) -> list[str]:
    """`prompt_file=PATH` (and `task.extractor_file=PATH`, ... for every key in PROSE_KEYS) becomes
    `prompt=<the file's text, quoted for Hydra>`; the trailing newline of the file is dropped."""
    out = []
    for arg in args:
        key, sep, path = arg.partition("=")
        name = key.removesuffix("_file")
        if not sep or name == key or name not in PROSE_KEYS:
            out.append(arg)
            continue
        if any(a.startswith(f"{name}=") for a in args):
            raise ValueError(f"{arg} and {name}=... both set {name}; keep one of them")
        out.append(f"{name}={hydra_quote(read_prose(key, path))}")
    return out


def read_prose(key: str, path: str) -> str:
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{key}={path}: no such file; give the path of a UTF-8 text file holding the text")
    try:
        text = file.read_text(encoding="utf-8-sig")  # with or without a byte-order mark; CRLF and CR read as LF
    except UnicodeDecodeError as err:
        raise ValueError(f"{key}={path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.strip():
        raise ValueError(f"{key}={path}: the file is empty; write the text in it")
    return text


def hydra_quote(text: str) -> str:
    """`text` as one quoted value of Hydra's override grammar, read back exactly: quotes and the
    backslashes before them escaped, and `${` escaped so it is not taken for an interpolation."""
    escaped = re.sub(r'(\\*)("|\Z)', lambda m: m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else ""), text)
    return '"' + escaped.replace("${", "\\${") + '"'


def shell_word(word: str) -> str:
    """`word` quoted for a POSIX shell, readably: "..." when it holds an apostrophe (and no `!`, which an
    interactive bash expands even inside double quotes), '...' otherwise."""
    if "'" in word and "!" not in word:
        return '"' + re.sub(r'(["\\$`])', r"\\\1", word) + '"'
    return shlex.quote(word)


def _override_line(override: str, command: list[str] | None) -> str:
    """One line for an override Hydra's parser cannot read: the key, and a spelling that works (for a prose
    key typed on this command line, the whole command to copy)."""
    key, sep, value = override.partition("=")
    if not sep:
        return f"cannot read `{override}`: an override is key=value; check the spelling"
    name = key.lstrip("+~")
    problem = f"{key}: Hydra cannot read this value (an apostrophe, quote, bracket or parenthesis needs it quoted)"
    use_file = f"put the text in a file and pass {name}_file=PATH"
    if "\n" in value:  # a newline: a file is the one spelling that stays on one line
        return f"{problem}; {use_file}"
    fixed = shell_word(f"{key}={hydra_quote(value)}")
    if name not in PROSE_KEYS:
        return f"{problem}; write it as {fixed}"
    if command is not None and override in command:
        words = [fixed if arg == override else shlex.quote(arg) for arg in command]
        return f"{problem}; run: {' '.join([_program(), *words])} (or {use_file})"
    return f"{problem}; write it as {fixed} (or {use_file})"


def _program() -> str:
    """How the user started this program, for a command to copy."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "evaluate.py" and argv0.parent.name == "greater":
        return "python -m greater.evaluate"
    if argv0.name == "run.py":
        return f"python {sys.argv[0]}"
    return argv0.name


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
def configure_errors(everything: bool = False, command: list[str] | None = None) -> Iterator[None]:
    """Print user errors (all errors when `everything`) as `error: <one line>` and exit 1; `command` is the
    arguments as typed, for a corrected command to copy."""
    caught = Exception if everything else USER_ERRORS
    try:
        yield
    except caught as err:
        if os.environ.get("GREATER_DEBUG"):
            raise
        line = error_line(err, command)
        if not _is_user_error(err):  # a bug, not a setting: say what kind, and how to see where
            line = f"{type(err).__name__}: {line} (GREATER_DEBUG=1 shows the traceback)"
        print(f"error: {line}", file=sys.stderr)
        raise SystemExit(1) from None


def _is_user_error(err: BaseException) -> bool:
    return isinstance(err, (*USER_ERRORS, HydraException, OSError)) or _is_config_error(err)


def error_line(err: BaseException, command: list[str] | None = None) -> str:
    """One line for an error: Hydra's composition errors joined with their cause, which names the key and,
    for a closed set, the allowed values; an override Hydra cannot parse, with a spelling that works."""
    if isinstance(err, OverrideParseException):
        return _override_line(err.override, command)
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        return _missing_config_line(err.missing_cfg_file)
    line = _first_line(err)
    cause = err.__cause__
    if cause is not None and _is_config_error(cause) and _first_line(cause) not in line:
        return f"{line.rstrip('.')}: {_first_line(cause)}"
    return line


def _missing_config_line(missing: str) -> str:
    """`model=gpt-5`: the options of the group, or the few that look like what was typed."""
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
    return isinstance(err, OmegaConfBaseException)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
