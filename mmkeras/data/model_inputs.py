"""`model_inputs`: what each model family takes from a batch of records."""

import tensorflow as tf

FAMILIES = ("matching", "captioning", "fusion")


def model_inputs(family, label_head=None):
    """The function mapping a batch of records to a family's `fit` inputs.

    Records are `ShardReader.dataset`'s (or `mmkeras.data.TaskData`'s caption batches):
    `{"images", "token_ids", ...}`, with `text_present` and `label` for fusion.

    - "matching": `{"images", "token_ids"}`, as a `DualEncoder` takes them;
    - "captioning": `({"images", "token_ids": ids[:, :-1]}, ids[:, 1:])` for teacher forcing
      (give the tokenizer one token more than the model's length); `[B, K, L]` ids (K captions of
      each image) become `B * K` rows, image i's captions side by side;
    - "fusion": `({"images", "token_ids", "image_present", "text_present"}, label)`, or
      `{label_head: label}` with `label_head`.

    Args:
        family: "matching", "captioning" or "fusion".
        label_head: fusion only: the name of the head the label trains.

    Returns:
        A function for `tf.data.Dataset.map`.

    Example:

    >>> import numpy as np
    >>> batch = {"images": np.zeros((2, 4, 4, 3), "float32"), "token_ids": np.array([[2, 5, 3], [2, 6, 3]]),
    ...          "text_present": np.ones(2, "float32"), "label": np.array([0, 1])}
    >>> x, y = model_inputs("captioning")(batch)
    >>> x["token_ids"].numpy().tolist(), y.numpy().tolist()
    ([[2, 5], [2, 6]], [[5, 3], [6, 3]])
    >>> x, y = model_inputs("fusion", label_head="label")(batch)
    >>> sorted(x), y["label"].tolist()
    (['image_present', 'images', 'text_present', 'token_ids'], [0, 1])
    """
    if family not in FAMILIES:
        raise ValueError(f"`family` must be one of {FAMILIES}, got {family!r}.")
    if label_head is not None and family != "fusion":
        raise ValueError("`label_head` applies to the 'fusion' family only.")

    def matching(batch):
        return {"images": batch["images"], "token_ids": batch["token_ids"]}

    def captioning(batch):
        ids = tf.convert_to_tensor(batch["token_ids"])
        ids = tf.reshape(ids, [-1, ids.shape[-1]]) if ids.shape.rank == 3 else ids
        return {"images": batch["images"], "token_ids": ids[..., :-1]}, ids[..., 1:]

    def fusion(batch):
        present = tf.convert_to_tensor(batch["text_present"])
        features = {"images": batch["images"], "token_ids": batch["token_ids"],
                    "image_present": tf.ones_like(present), "text_present": present}
        label = batch["label"]
        return features, (label if label_head is None else {label_head: label})

    return {"matching": matching, "captioning": captioning, "fusion": fusion}[family]
