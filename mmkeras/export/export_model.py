"""One export for every family: the serving signatures come from the model and its preprocessor."""

from mmkeras.export.captioner_export import export_captioner
from mmkeras.export.dual_encoder_export import export_dual_encoder
from mmkeras.export.fusion_export import export_fusion_classifier


def export_model(model, path, **generation):
    """Writes the serving SavedModel of a family model, built from `model.preprocessor`.

    - `DualEncoder`: `embed_image(image_bytes)`, `embed_text(text)` and
      `similarity(image_bytes, text)`;
    - `Captioner`: `caption(image_bytes) -> {captions, scores, token_ids}`,
      decoding with a `CaptionGenerator` made from `generation` (XLA-compiled
      unless `jit_compile=False` is given; beam search with 3 beams unless
      told otherwise);
    - `FusionClassifier`: `classify(image_bytes, text)` (or the one input the
      model has).

    The signatures take raw image bytes and raw strings; loading needs only
    TensorFlow and `import tensorflow_text`. A model trained with LoRA is
    exported with each update merged into its kernel (`merge_lora`): the
    same outputs, no LoRA weights or ops in the SavedModel.

    Args:
        model: a `DualEncoder`, `Captioner` or `FusionClassifier` whose
            `preprocessor` (a `MultimodalPreprocessor`) holds the tokenizer and
            image converter it was trained with, as a trained run's
            `model.keras` does.
        path: output directory (local or `gs://`).
        **generation: `CaptionGenerator` arguments for a captioner
            (`strategy`, `num_beams`, `length_penalty`, `max_length`, ...).

    Returns:
        `path`.

    Example:

    ```python
    model = keras.saving.load_model("runs/clip/model.keras")
    export_model(model, "runs/clip/export")
    tf.saved_model.load("runs/clip/export").signatures["embed_text"](text=tf.constant(["a red circle"]))
    ```
    """
    from mmkeras.models.captioner import Captioner
    from mmkeras.models.dual_encoder import DualEncoder
    from mmkeras.models.fusion_classifier import FusionClassifier
    from mmkeras.training.lora import merge_lora

    model = merge_lora(model)  # LoRA updates folded into the kernels: no extra ops served

    if isinstance(model, Captioner):
        from mmkeras.generation.caption_generator import CaptionGenerator

        options = {"strategy": "beam", "num_beams": 3, "jit_compile": True, **generation}
        return export_captioner(CaptionGenerator(model, **options), path)
    if generation:
        raise ValueError(f"Generation options {sorted(generation)} apply to captioners only, not {type(model).__name__}.")
    if isinstance(model, DualEncoder):
        return export_dual_encoder(model, path)
    if isinstance(model, FusionClassifier):
        return export_fusion_classifier(model, path)
    raise ValueError(
        f"`model` must be a DualEncoder, Captioner or FusionClassifier, got {type(model).__name__} "
        "(export a single tower with `export_encoder`)."
    )
