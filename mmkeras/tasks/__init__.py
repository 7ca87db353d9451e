"""What `mmkeras train` runs: one trainer per model family, over any data (`mmkeras.data.TaskData`)."""

from mmkeras.registry import lookup

TASK_CLASSES = {
    "matching": "mmkeras.tasks.matching_task:MatchingTask",
    "captioning": "mmkeras.tasks.captioning_task:CaptioningTask",
    "fusion": "mmkeras.tasks.fusion_task:FusionTask",
}


def task_for_config(config, output_dir):
    """Instantiates the family trainer for `config["task"]`; `data.dataset` chooses its records."""
    return lookup(TASK_CLASSES, config["task"], "task")(config, output_dir)
