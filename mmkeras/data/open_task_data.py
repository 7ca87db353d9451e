"""`open_task_data`: the `TaskData` a run config's `data.dataset` names."""

from mmkeras.data.open_source import DATASET_KINDS


def open_task_data(config, run_dir, family):
    """The records a run trains on: `ShapesData` for "shapes", `ConvertedData` for every other kind.

    Args:
        config: a resolved run config.
        run_dir: the run's `RunDirectory` (converted data is written there).
        family: "matching", "captioning" or "fusion".

    Returns:
        A `mmkeras.data.TaskData`.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks.run_directory import RunDirectory
    data = open_task_data(zoo.config("shapes-clip-tiny"), RunDirectory("runs/clip"), "matching")
    ```
    """
    kind = config["data"]["dataset"]
    if kind not in DATASET_KINDS:
        raise ValueError(f"`data.dataset` must be one of {DATASET_KINDS}, got {kind!r}.")
    if kind == "shapes":
        from mmkeras.data.shapes_data import ShapesData

        return ShapesData(config, family)
    from mmkeras.data.converted_data import ConvertedData

    return ConvertedData(config, family, run_dir)
