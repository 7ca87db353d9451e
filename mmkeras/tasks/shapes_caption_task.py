import tensorflow as tf

from mmkeras.tasks.shapes_task import ShapesTask


class ShapesCaptionTask(ShapesTask):
    """Base of the tasks that train on Shapes images paired with their reference captions.

    Matching and captioning share it: each epoch pairs every training image
    with one of its captions; the order and the draws are pure functions of
    `(train.seed, epoch)`, which is what makes exact resume possible. The
    captions are tokenized once, when the stream is first built, so the input
    pipeline only gathers token ids and leaves the CPU to the training step.

    Args:
        config: a resolved run config.
        output_dir: the run directory.

    Example:

    ```python
    task = MatchingTask(zoo.config("shapes-clip-tiny"), "runs/clip")  # a subclass
    images, token_ids = next(iter(task.caption_batches(tf.constant(0, tf.int64))))
    ```
    """

    @property
    def steps_per_epoch(self):
        num_train = self.config["data"]["num_train"]
        batch = self.config["train"]["global_batch_size"]
        if num_train < batch:
            raise ValueError(
                f"`data.num_train`={num_train} is smaller than `train.global_batch_size`={batch}."
            )
        return num_train // batch

    def _make_split_tensors(self, split):
        scenes = self.shapes.scenes(split)
        token_ids = self.tokenizer(tf.constant([c for s in scenes for c in s["captions"]]))
        return (
            tf.constant(self.shapes.images(split)),
            tf.reshape(token_ids, [len(scenes), self.shapes.num_captions, -1]),
        )

    def caption_batches(self, epoch, captions_per_image=1, split="train"):
        """Batches of `(uint8 images [B, H, W, 3], caption token ids)` of `split` for one epoch.

        The token ids (`self.tokenizer`'s) are `[B, L]`, or `[B, K, L]` with
        `captions_per_image=K > 1`: K distinct reference captions of each image,
        drawn anew every epoch.
        """
        seed = tf.cast(self.config["train"]["seed"], tf.int64)
        images, token_ids = self._split_tensors(split)
        count, per_image = tf.shape(token_ids, out_type=tf.int64)[0], token_ids.shape[1]
        if not 1 <= captions_per_image <= per_image:
            raise ValueError(
                f"`data.captions_per_image` must be in [1, {per_image}] (the captions of each scene), "
                f"got {captions_per_image}."
            )
        order = tf.argsort(tf.random.stateless_uniform([count], tf.stack([seed, epoch])))
        if captions_per_image == 1:
            picks = tf.random.stateless_uniform(
                [count], tf.stack([seed, epoch + 1_000_003]), maxval=per_image, dtype=tf.int32
            )
        else:  # K distinct captions: the first K of a random permutation per image
            noise = tf.random.stateless_uniform([count, per_image], tf.stack([seed, epoch + 1_000_003]))
            picks = tf.argsort(noise, axis=1)[:, :captions_per_image]

        def pair(index):
            return images[index], tf.gather(token_ids[index], picks[index])

        return (
            tf.data.Dataset.from_tensor_slices(order)
            .map(pair, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(self.config["train"]["global_batch_size"], drop_remainder=True)  # static shapes
        )
