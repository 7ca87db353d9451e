"""What `mmkeras train` runs for each family: data, fit, evaluation, export."""

import importlib

TASK_CLASSES = {
    "matching": "mmkeras.tasks.matching_task:MatchingTask",
    "captioning": "mmkeras.tasks.captioning_task:CaptioningTask",
    "fusion": "mmkeras.tasks.fusion_task:FusionTask",
}


def task_for_config(config, output_dir):
    """Instantiates the `Task` subclass for `config["task"]`."""
    if config["task"] not in TASK_CLASSES:
        raise ValueError(f"Unknown task {config['task']!r}; valid tasks: {sorted(TASK_CLASSES)}.")
    module, name = TASK_CLASSES[config["task"]].split(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as error:
        raise ValueError(f"The {config['task']!r} task is not available in this release.") from error
    return cls(config, output_dir)
