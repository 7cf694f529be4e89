"""Is a hub model's checkpoint available without waiting? Offline (HF_HUB_OFFLINE) or with no route to the hub,
a model that is not in the cache fails at once with one line, instead of after transformers' retries and a
message that names neither the repository nor the cache. Torch-free: only paths, environment and a socket."""

from __future__ import annotations

import os
from pathlib import Path

from greater.net import reachable

TRUE = ("1", "on", "yes", "true")


class HubModelUnavailable(ValueError):
    """A hub model that is neither cached nor downloadable here; the message names the repo, cache and fix."""


def hub_cache() -> Path:
    """Where huggingface_hub keeps models, read from the environment now (its constants are fixed at import):
    $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's endpoint opens within `timeout` (False when offline is asked)."""
    if hub_offline():
        return False
    return reachable(os.environ.get("HF_ENDPOINT") or "https://huggingface.co", timeout, "huggingface.co")


def is_cached(repo_id: str, revision: str | None = None, cache: Path | None = None) -> bool:
    """Whether the cache holds the repository's config.json (at `revision`, default main): what
    from_pretrained reads first. Reads the cache's folders only; never the network."""
    folder = (cache or hub_cache()) / f"models--{repo_id.replace('/', '--')}"
    ref = folder / "refs" / (revision or "main")
    commit = ref.read_text().strip() if ref.is_file() else (revision or "")
    return bool(commit) and (folder / "snapshots" / commit / "config.json").exists()


def require_hub_model(repo_id: str, revision: str | None = None) -> None:
    """Raise `HubModelUnavailable` at once when `repo_id` is not cached and cannot be downloadable here."""
    cache = hub_cache()
    if Path(repo_id).expanduser().is_dir() or is_cached(repo_id, revision, cache):  # a folder loads as it is
        return
    if hub_offline():
        reason = "HF_HUB_OFFLINE is set"
    elif not hub_reachable():
        reason = "the hub cannot be reached"
    else:
        return  # not cached but online: from_pretrained downloads it
    at = f"@{revision}" if revision else ""
    raise HubModelUnavailable(
        f"model.path: hub model '{repo_id}{at}' is not in the cache {cache} and {reason}; download it on a "
        f'connected machine ("hf download {repo_id}" with HF_HOME set) and copy that HF_HOME here (or point '
        "HF_HOME at it), or set model.source=local model.path=<a folder holding its config.json and weights>"
    )
