"""What `mmkeras train` runs for each family: data, fit, evaluation, export."""

import importlib

TASK_CLASSES = {
    "matching": "mmkeras.tasks.matching_task:MatchingTask",
    "captioning": "mmkeras.tasks.captioning_task:CaptioningTask",
    "fusion": "mmkeras.tasks.fusion_task:FusionTask",
}
# The same families on real data (`data.dataset` other than "shapes"; see `RecordTask`).
RECORD_TASK_CLASSES = {
    "matching": "mmkeras.tasks.record_matching_task:RecordMatchingTask",
    "captioning": "mmkeras.tasks.record_captioning_task:RecordCaptioningTask",
    "fusion": "mmkeras.tasks.record_fusion_task:RecordFusionTask",
}


def task_for_config(config, output_dir):
    """Instantiates the `Task` subclass for `config["task"]` (and `data.dataset`: Shapes or real data)."""
    if config["task"] not in TASK_CLASSES:
        raise ValueError(f"Unknown task {config['task']!r}; valid tasks: {sorted(TASK_CLASSES)}.")
    on_shapes = config.get("data", {}).get("dataset", "shapes") == "shapes"
    module, name = (TASK_CLASSES if on_shapes else RECORD_TASK_CLASSES)[config["task"]].split(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as error:
        raise ValueError(f"The {config['task']!r} task is not available in this release.") from error
    return cls(config, output_dir)
