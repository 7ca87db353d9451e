"""Pretraining an image tower on what each grid cell holds, before its family trains on it."""

import time

import keras
import numpy as np
from keras import ops

from mmkeras.config import CHOICES


def cell_tokens(sequence, grid=3):
    """The mean token of each cell of a `grid` x `grid` layout of a tower's patch tokens.

    Args:
        sequence: `[B, T, D]` tokens of a square `g` x `g` patch grid, row-major, with `T = g * g`,
            or `g * g + 1` with a class token first (left out); `g` a multiple of `grid`.
        grid: cells per side.

    Returns:
        `[B, grid * grid, D]`, row-major cells, each the mean of its `(g / grid)^2` patches.

    Example:

    >>> import numpy as np
    >>> tokens = np.arange(36, dtype="float32").reshape(1, 36, 1)  # a 6 x 6 grid
    >>> cell_tokens(tokens)[0, :, 0].numpy().tolist()
    [3.5, 5.5, 7.5, 15.5, 17.5, 19.5, 27.5, 29.5, 31.5]
    """
    given = count = sequence.shape[1]
    width = sequence.shape[2]
    side = int(round((count or 0) ** 0.5))
    if count and side * side != count:  # a class token first
        sequence, count = sequence[:, 1:], count - 1
        side = int(round(count**0.5))
    if not count or side * side != count or side % grid:
        raise ValueError(
            f"Tower pretraining reads one token per cell of a {grid}x{grid} grid: the tower must give a square "
            f"grid of patch tokens whose side is a multiple of {grid} (with at most a class token first), "
            f"got {given} tokens. Choose `image_size` / `patch_size` so the side is 3, 6, 9, ..."
        )
    pool = side // grid
    cells = ops.reshape(sequence, (-1, grid, pool, grid, pool, width))
    return ops.reshape(ops.mean(cells, axis=(2, 4)), (-1, grid * grid, width))


SCHEDULES = CHOICES["train.tower_pretraining_schedule"]  # one list for the config check and this module


def pretrain_image_tower(tower, batches, steps, classes, learning_rate=1e-3, schedule="constant", jit_compile=True,
                         steps_per_execution=1, validation=None):
    """Trains an image tower in place to say what each cell of a 3x3 grid holds.

    A small head reads each cell's tokens (`cell_tokens`) and predicts each attribute of the cell's object, an
    empty cell being class 0 (cross-entropy per attribute, summed; AdamW at `learning_rate`, constant or
    warmed up and decayed, see `pretraining_learning_rate`). The head is thrown away: only the tower's weights
    change. This gives the tower a direct, local signal (in the Shapes presets, per-cell shape accuracy passes
    0.9 within about a thousand steps of 64 images), where a caption or a matching label teaches it only
    through a decoder or a fusion, much more slowly; detector-pretrained "bottom-up" features play this part
    for captioners of real photos. Call it in the distribution strategy's scope.

    Args:
        tower: an mmkeras image encoder giving `{"sequence"}` (e.g. `ViTEncoder`; not built `pooled_only`).
        batches: `tf.data.Dataset` of `(images, {attribute: int [B, 9]})`, endless (e.g.
            `TaskData.cell_attribute_batches`).
        steps: int, training steps.
        classes: `{attribute: number of classes}` (empty cell included).
        learning_rate: float, the (peak) learning rate.
        schedule: "constant" or "cosine" (warmed up, then decayed to 0; see `pretraining_learning_rate`).
            On Shapes the cosine reads shapes better in the same steps: per-cell shape accuracy 0.84 / 0.92
            / 0.92 after 1,000 steps at a constant 1e-3 / cosine 2e-3 / cosine 3e-3 (one seed).
        jit_compile: bool, XLA-compile the step.
        steps_per_execution: int, steps per compiled call.
        validation: optional `(images, {attribute: int [N, 9]})` scored after training.

    Returns:
        `{"steps", "seconds", "loss"}` and, with `validation`, `"validation"`: each attribute's accuracy
        on the occupied cells, and `"empty"`, how often the head tells an empty cell from an occupied one.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> from mmkeras.encoders import ViTEncoder
    >>> tower = ViTEncoder(image_size=48, patch_size=16, hidden_dim=16, num_layers=1, num_heads=2, mlp_dim=32)
    >>> images = np.zeros((8, 48, 48, 3), "float32"); cells = {"shape": np.zeros((8, 9), "int64")}
    >>> batches = tf.data.Dataset.from_tensors((images, cells)).repeat()
    >>> pretrain_image_tower(tower, batches, steps=2, classes={"shape": 6})["steps"]
    2
    """
    if not classes:
        raise ValueError("`classes` names no attribute to predict.")
    rate = pretraining_learning_rate(learning_rate, schedule, steps)
    images = keras.Input(tower.input_shape[1:], name="images")
    outputs = tower(images)
    if not isinstance(outputs, dict) or "sequence" not in outputs:
        raise ValueError(
            f"Tower pretraining reads the tower's token sequence, but {type(tower).__name__} gives only "
            f"{sorted(outputs) if isinstance(outputs, dict) else 'a vector'} (built with `pooled_only`?)."
        )
    cells = cell_tokens(outputs["sequence"])
    hidden = keras.layers.Dense(cells.shape[-1], activation="gelu", name="cell_hidden")(cells)
    logits = {name: keras.layers.Dense(count, dtype="float32", name=name)(hidden) for name, count in classes.items()}
    model = keras.Model(images, logits, name="cell_attributes")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.AdamW(rate), loss={name: loss for name in classes},
                  jit_compile=jit_compile, steps_per_execution=max(1, min(int(steps_per_execution), int(steps))))
    start = time.perf_counter()
    history = model.fit(batches, steps_per_epoch=int(steps), epochs=1, verbose=0, shuffle=False)
    result = {"steps": int(steps), "seconds": round(time.perf_counter() - start, 1),
              "loss": float(history.history["loss"][-1])}
    if validation is not None:
        result["validation"] = cell_accuracies(model.predict(validation[0], batch_size=256, verbose=0),
                                               validation[1])
    return result


def pretraining_learning_rate(learning_rate, schedule, steps):
    """The learning rate of `steps` pretraining steps: `learning_rate` itself for the "constant" schedule; for
    "cosine", a schedule rising linearly from 0 over the first 5% of the steps to `learning_rate`, then
    decaying along a half cosine to 0 at the last step.

    Args:
        learning_rate: float, the constant or peak learning rate.
        schedule: "constant" or "cosine".
        steps: int, the number of pretraining steps.

    Returns:
        A float, or a `keras.optimizers.schedules.LearningRateSchedule`.

    Example:

    >>> rate = pretraining_learning_rate(3e-3, "cosine", 1000)
    >>> [round(float(rate(step)), 5) for step in (0, 25, 50, 525, 1000)]
    [0.0, 0.0015, 0.003, 0.0015, 0.0]
    >>> pretraining_learning_rate(3e-3, "constant", 1000)
    0.003
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"`schedule` must be one of {SCHEDULES}, got {schedule!r}.")
    if schedule == "constant":
        return learning_rate
    warmup = int(steps) // 20
    return keras.optimizers.schedules.CosineDecay(0.0, max(1, int(steps) - warmup), warmup_target=learning_rate,
                                                  warmup_steps=warmup)


def cell_accuracies(logits, cells):
    """Each attribute's accuracy on the occupied cells, and `"empty"`: empty told from occupied (by the first
    attribute's class 0); rounded to 4 decimals.

    Example:

    >>> import numpy as np
    >>> logits = {"shape": np.eye(3)[[[0, 1, 2], [2, 0, 1]]]}  # predicted classes [[0, 1, 2], [2, 0, 1]]
    >>> cell_accuracies(logits, {"shape": np.array([[0, 1, 2], [2, 2, 0]])})
    {'shape': 0.75, 'empty': 0.6667}
    """
    occupied = next(iter(cells.values())) > 0
    result = {name: np.mean(np.argmax(logits[name], -1)[occupied] == cells[name][occupied]) for name in cells}
    result["empty"] = np.mean((np.argmax(logits[next(iter(cells))], -1) > 0) == occupied)
    return {name: round(float(value), 4) for name, value in result.items()}
