"""Import, export and zero-shot speed of a ViT-B/16-sized CLIP checkpoint (random weights).

Writes a Hugging Face `CLIPModel` folder of the `openai/clip-vit-base-patch16`
shapes (ViT-B/16 image tower, 12-layer 512-wide text tower, 49,408-token BPE,
about 150 M parameters) with random weights, using NumPy and safetensors only
(no torch), then times, in one process:

- `mmkeras.pretrained.load_checkpoint("hf:DIR")` (reading the safetensors,
  building the towers, the tokenizer and the image converter);
- `mmkeras.export.export_model` of the imported model (the SavedModel that takes
  raw image bytes and raw strings);
- zero-shot classification (`mmkeras.models.zero_shot.zero_shot_predict`) of
  N JPEG images (256x256, decoded, resized and centre-cropped to 224 in the
  graph) among 10 labels, after one untimed warm-up batch: images per second.

    python benchmarks/pretrained_import.py               # 1,000 images
    python benchmarks/pretrained_import.py --images 64   # quicker
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np

VISION = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
          "image_size": 224, "patch_size": 16, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
TEXT = {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8,
        "max_position_embeddings": 77, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
PROJECTION = 512


def _byte_alphabet():
    """GPT-2 / CLIP's printable stand-ins for the 256 byte values."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def _tokenizer_files(directory, vocabulary_size=49408):
    """A valid BPE of CLIP's size: merges of pairs of byte characters, the CLIP special tokens."""
    alphabet = _byte_alphabet()
    vocab = alphabet + [c + "</w>" for c in alphabet]
    count = vocabulary_size - len(vocab) - 2
    merges = [f"{a} {b}" for a in alphabet for b in alphabet][:count]
    vocab += [m.replace(" ", "") for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({token: i for i, token in enumerate(vocab)}, f)
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return len(vocab)


def _layer_shapes(prefix, width, inner):
    shapes = {}
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        shapes[f"{prefix}.self_attn.{name}.weight"] = (width, width)
        shapes[f"{prefix}.self_attn.{name}.bias"] = (width,)
    for name in ("layer_norm1", "layer_norm2"):
        shapes[f"{prefix}.{name}.weight"] = shapes[f"{prefix}.{name}.bias"] = (width,)
    shapes.update({f"{prefix}.mlp.fc1.weight": (inner, width), f"{prefix}.mlp.fc1.bias": (inner,),
                   f"{prefix}.mlp.fc2.weight": (width, inner), f"{prefix}.mlp.fc2.bias": (width,)})
    return shapes


def clip_tensor_shapes(vision, text, projection, vocabulary_size):
    """Every tensor name and shape of a Hugging Face `CLIPModel` checkpoint."""
    d, t = vision["hidden_size"], text["hidden_size"]
    patches = (vision["image_size"] // vision["patch_size"]) ** 2 + 1
    shapes = {
        "vision_model.embeddings.class_embedding": (d,),
        "vision_model.embeddings.patch_embedding.weight": (d, 3, vision["patch_size"], vision["patch_size"]),
        "vision_model.embeddings.position_embedding.weight": (patches, d),
        "text_model.embeddings.token_embedding.weight": (vocabulary_size, t),
        "text_model.embeddings.position_embedding.weight": (text["max_position_embeddings"], t),
        "visual_projection.weight": (projection, d),
        "text_projection.weight": (projection, t),
        "logit_scale": (),
    }
    for name in ("vision_model.pre_layrnorm", "vision_model.post_layernorm"):
        shapes[f"{name}.weight"] = shapes[f"{name}.bias"] = (d,)
    shapes["text_model.final_layer_norm.weight"] = shapes["text_model.final_layer_norm.bias"] = (t,)
    for i in range(vision["num_hidden_layers"]):
        shapes.update(_layer_shapes(f"vision_model.encoder.layers.{i}", d, vision["intermediate_size"]))
    for i in range(text["num_hidden_layers"]):
        shapes.update(_layer_shapes(f"text_model.encoder.layers.{i}", t, text["intermediate_size"]))
    return shapes


def write_checkpoint(directory, seed=0):
    """Writes the random ViT-B/16 CLIP folder; returns its parameter count."""
    from safetensors.numpy import save_file

    vocabulary_size = _tokenizer_files(directory)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in clip_tensor_shapes(VISION, TEXT, PROJECTION, vocabulary_size).items():
        scale = 1.0 if name.endswith("norm1.weight") or name.endswith("norm2.weight") else 0.02
        tensors[name] = (rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float32)
    tensors["logit_scale"] = np.array(np.log(100.0), np.float32)
    save_file(tensors, os.path.join(directory, "model.safetensors"))
    config = {
        "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": PROJECTION,
        "logit_scale_init_value": 2.6592,
        "text_config": {**TEXT, "vocab_size": vocabulary_size, "bos_token_id": vocabulary_size - 2,
                        "eos_token_id": vocabulary_size - 1, "pad_token_id": vocabulary_size - 1},
        "vision_config": VISION,
    }
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    return sum(t.size for t in tensors.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images classified zero-shot")
    args = parser.parse_args()

    import tensorflow as tf

    from mmkeras.export.export_model import export_model
    from mmkeras.models.zero_shot import zero_shot_predict
    from mmkeras.pretrained.load_checkpoint import load_checkpoint

    with tempfile.TemporaryDirectory() as directory:
        checkpoint = os.path.join(directory, "clip")
        os.makedirs(checkpoint)
        parameters = write_checkpoint(checkpoint)
        started = time.perf_counter()
        model = load_checkpoint(f"hf:{checkpoint}")
        imported = time.perf_counter() - started
        print(f"checkpoint: {parameters / 1e6:.1f} M parameters; model: {model.count_params() / 1e6:.1f} M")
        print(f"import: {imported:.1f} s")
        started = time.perf_counter()
        export_model(model, os.path.join(directory, "export"))
        print(f"export: {time.perf_counter() - started:.1f} s")

        rng = np.random.default_rng(1)
        jpeg = [tf.io.encode_jpeg(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).numpy() for _ in range(16)]
        images = [jpeg[i % len(jpeg)] for i in range(args.images)]
        labels = [f"a photo of a {name}" for name in
                  ("dog", "cat", "car", "tree", "house", "bird", "boat", "plane", "horse", "flower")]
        batch = 64
        zero_shot_predict(model, images[:batch], labels, batch_size=batch)  # warm-up: traces the graphs
        started = time.perf_counter()
        zero_shot_predict(model, images, labels, batch_size=batch)
        seconds = time.perf_counter() - started
        print(f"zero-shot: {len(images)} images at 224 px, 10 labels: {seconds:.1f} s, "
              f"{len(images) / seconds:.1f} images/s")


if __name__ == "__main__":
    main()
