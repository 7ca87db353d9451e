"""Image captioning on real data."""

from mmkeras.tasks.captioning_task import NUM_SAMPLES, CaptioningTask, caption_scores, full_batch_captions
from mmkeras.tasks.record_task import RecordTask


class RecordCaptioningTask(RecordTask, CaptioningTask):
    """Trains and evaluates an image captioner on real image–caption data.

    The data side is `RecordTask` (a source converted to shards in the run
    directory, a held-out split, skip reports); the model, the loss and
    metrics, the beam-search decoder and the export
    (`caption(image_bytes) -> {captions, scores}`) are `CaptioningTask`'s.
    Each epoch pairs every training image with one of its captions, drawn
    with the seed (one optimizer step never repeats an image); with
    `data.augment` the images get `RandomResizedCrop`.

    Evaluation: beam search (`eval.num_beams`, `eval.length_penalty`) on the
    held-out images, corpus BLEU-1..4 and CIDEr-D against all their reference
    captions, sample captions in `samples.json`.

    Args:
        config: a resolved run config with `task="captioning"` and a real
            `data.dataset`.
        output_dir: the run directory.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks.record_captioning_task import RecordCaptioningTask

    config = zoo.config("shapes-captioner-tiny", **{
        "data.dataset": "flickr", "data.path": "Flickr8k.token.txt", "data.images": "Flicker8k_Dataset",
        "data.split_json": "dataset_flickr8k.json"})
    metrics = RecordCaptioningTask(config, "runs/flickr-cap").run()
    print(metrics["bleu_4"], metrics["cider_d"])
    ```
    """

    family = "captioning"
    per_image_fields = ()  # the shard reader pairs each image with one caption per epoch

    def evaluate(self, model):
        generator, batch = self.generator(model), self.config["eval"]["batch_size"]
        generated, references = [], []
        for images, captions, _ in self.held_out_batches():
            keep = [i for i, c in enumerate(captions) if c]
            if not keep:
                continue
            generated += full_batch_captions(generator, images[keep], batch)
            references += [captions[i] for i in keep]
        if not generated:
            raise ValueError(
                f"The held-out split of `data.path` {self.config['data']['path']!r} has no usable "
                "image with a caption: raise `data.val_fraction`."
            )
        metrics = caption_scores(generated, references)
        metrics["num_test_images"] = len(generated)
        metrics.update(self.data_metrics())
        samples = [
            {"image_id": i, "generated": generated[i], "references": references[i]}
            for i in range(min(NUM_SAMPLES, len(generated)))
        ]
        self.write_evaluation_file("samples", samples)
        return metrics
