"""The device a model runs on: what this torch build and machine have, named in one line when not."""

from __future__ import annotations

import torch

from greater.models.packaged import ModelSourceError

DEVICES = "cpu, cuda, cuda:N or auto"  # what model.device takes (mps, xpu, ... where the torch build has them)


def check_device(device: str) -> None:
    """model.device names a device this torch build and machine have; the runner checks it before the data
    and weights load."""
    device = str(getattr(device, "value", device))
    if device in ("cpu", "auto"):
        return
    fix = f"set model.device to {DEVICES}"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ModelSourceError(f"model.device={device}: torch knows no such device; {fix}") from None
    kind = parsed.type
    if kind == "cpu":
        return
    backend = torch.backends.mps if kind == "mps" else getattr(torch, kind, None)
    if backend is None or not backend.is_available():
        why = f"this torch build or machine has no {kind.upper()} device"
        why = "no CUDA device is visible" if kind == "cuda" else why
        raise ModelSourceError(f"model.device={device}: {why}; {fix}")
    if kind == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ModelSourceError(f"model.device={device}: torch sees {torch.cuda.device_count()} CUDA device(s); {fix}")
