"""What `mmkeras train` runs for each family: data, fit, evaluation, export."""

from mmkeras.registry import lookup

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
    on_shapes = config.get("data", {}).get("dataset", "shapes") == "shapes"
    return lookup(TASK_CLASSES if on_shapes else RECORD_TASK_CLASSES, config["task"], "task")(config, output_dir)
