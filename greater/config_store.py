"""Hydra's view of the schemas: the run's and every method's, stored once per process, and the config groups
`--help` lists.

A method's schema is stored as `<name>_schema` (its YAML in conf/optimizer/ extends it); a method from another
package that ships no YAML here is stored under its own name too, so `optimizer=<name>` takes its dataclass's
defaults. Schemas and bases (`_base.yaml`) are not options a user picks, so `--help` leaves them out.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from greater.config import RunConfig, conf_dir
from greater.optimizers.registry import config_classes

SCHEMA_SUFFIX = "_schema"


def register_configs() -> None:
    """Put the schemas into Hydra's ConfigStore and the resolvers into OmegaConf (idempotent)."""
    # Task names hold a "/" (bbh/navigate); run and sweep directories use this to stay one level deep.
    OmegaConf.register_new_resolver("path_safe", lambda text: str(text).replace("/", "-"), replace=True)
    OmegaConf.register_new_resolver("greater_options", lambda: config_groups(conf_dir()), replace=True)
    OmegaConf.register_new_resolver("greater_run_dir", run_dir, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    shipped = {p.stem for p in (conf_dir() / "optimizer").glob("*.yaml")}
    for name, config_class in config_classes().items():
        cs.store(group="optimizer", name=f"{name}{SCHEMA_SUFFIX}", node=config_class)
        if name not in shipped:
            cs.store(group="optimizer", name=name, node=config_class)


def run_dir() -> str:
    """`output_dir`: the job's directory (Hydra's runtime.output_dir); where `--cfg job --resolve`, which
    runs no job and so has none, prints the directory a run would get (hydra.run.dir)."""
    hydra = HydraConfig.get()
    if not OmegaConf.is_missing(hydra.runtime, "output_dir") and hydra.runtime.output_dir:
        return hydra.runtime.output_dir
    return str(Path(hydra.run.dir).absolute())


def config_groups(conf: Path) -> str:
    """Each config group with its options, one line each, as `--help` shows them."""
    groups: dict[str, set[str]] = {}
    for path in conf.rglob("*.yaml"):
        group = path.parent.relative_to(conf).as_posix()
        if group != "." and not group.startswith("hydra") and not path.stem.startswith("_"):
            groups.setdefault(group, set()).add(path.stem)
    groups.setdefault("optimizer", set()).update(config_classes())
    return "\n".join(f"{group}: {', '.join(sorted(names))}" for group, names in sorted(groups.items()))
