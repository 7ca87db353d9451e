"""`mmkeras caption EXPORT_DIR IMAGE...`: captions from an exported captioner."""

from mmkeras.commands.serving import load_export, read_files, unreadable_image

NAME = "caption"
HELP = "caption images with an exported captioner SavedModel"


def add_arguments(parser):
    parser.add_argument("export_dir", help="a captioner export (RUN_DIR/export)")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, GIF, BMP)")


def run(args):
    import tensorflow as tf

    images = read_files(args.images)  # bad paths fail before the export loads
    caption = load_export(args.export_dir, "caption")
    for path, data in zip(args.images, images):
        try:
            out = caption(image_bytes=tf.constant([data]))
        except tf.errors.InvalidArgumentError as error:
            raise unreadable_image(path, error) from None
        text = out["captions"].numpy()[0].decode("utf-8")
        print(f"{path}\t{text}\t(score {float(out['scores'].numpy()[0]):.3f})")
    return 0
