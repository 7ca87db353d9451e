"""`mmkeras classify EXPORT_DIR --image x.jpg --text "..."`: labels from an exported fusion classifier."""

from mmkeras.commands.serving import load_export, read_files, unreadable_image

NAME = "classify"
HELP = "classify an image + text pair with an exported fusion classifier"


def add_arguments(parser):
    parser.add_argument("export_dir", help="a fusion-classifier export (RUN_DIR/export)")
    parser.add_argument("--image", help="image file; leave out for a text-only example")
    parser.add_argument("--text", default="", help="text; leave out for an image-only example")


def run(args):
    import tensorflow as tf

    if args.image is None and not args.text.strip():
        raise ValueError("give --image, --text or both.")
    image = read_files([args.image])[0] if args.image else b""  # empty bytes: no image
    classify = load_export(args.export_dir, "classify")
    try:
        out = classify(image_bytes=tf.constant([image]), text=tf.constant([args.text]))
    except tf.errors.InvalidArgumentError as error:
        raise unreadable_image(args.image, error) from None
    heads = sorted(k[: -len("_label")] for k in out if k.endswith("_label"))
    for head in heads:
        label = out[f"{head}_label"].numpy()[0].decode("utf-8")
        probs = out[f"{head}_probs"].numpy()[0]
        print(f"{head}\t{label}\t(p={float(probs.max()):.3f})")
    for key in sorted(k for k in out if k.endswith("_value")):
        print(f"{key[: -len('_value')]}\t{out[key].numpy()[0].tolist()}")
    return 0
