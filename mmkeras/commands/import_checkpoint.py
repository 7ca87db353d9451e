"""`mmkeras import SOURCE --output DIR`: a pretrained checkpoint on disk as an mmkeras run directory."""

NAME = "import"
HELP = "import a pretrained checkpoint (hf:DIR, open_clip:DIR, keras_hub:DIR) as a run directory"


def add_arguments(parser):
    parser.add_argument(
        "source",
        help="hf:DIR (Hugging Face CLIPModel or SiglipModel folder, safetensors), open_clip:DIR (model config "
        "JSON + safetensors state dict) or keras_hub:DIR (a CLIP or SigLIP preset folder); nothing is downloaded",
    )
    parser.add_argument("--text", metavar="SOURCE",
                        help="with an image-tower source (a ViT), the text tower to pair it with (hf:DIR of a "
                        "BertModel, keras_hub:DIR of a BERT preset); their projections are new, for fine-tuning")
    parser.add_argument("--embed-dim", type=int, default=512, help="embedding width of a paired dual encoder")
    parser.add_argument("--output", required=True, help="run directory to write (config.json, model.keras, export/)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --output")
    parser.add_argument("--no-export", action="store_true", help="no SavedModel export")


def import_config(model, source):
    """The run config of an imported dual encoder: the matching family, its sizes, where it came from.

    `mmkeras eval` evaluates it (on Shapes unless `--set data.*` says otherwise) and
    `mmkeras train PRESET --init DIR` starts from it.

    Args:
        model: the imported `DualEncoder` (with its preprocessor).
        source: the source string it was imported from.
    """
    from mmkeras.config import resolve_config

    preprocessor = model.preprocessor
    data = {"sequence_length": preprocessor.sequence_length, "image_size": preprocessor.image_size[0]}
    return resolve_config({
        "task": "matching",
        "name": f"imported {source}",
        "description": f"{type(model).__name__} imported from {source} (`mmkeras import`)",
        "data": data,
        "model": {"embed_dim": model.embed_dim, "loss": model.loss_name},
    })


def run(args):
    import tensorflow as tf

    from mmkeras.export.export_model import export_model
    from mmkeras.pretrained.load_checkpoint import load_checkpoint
    from mmkeras.tasks.run_directory import RunDirectory

    run_dir = RunDirectory(args.output)
    with run_dir.lock():
        if tf.io.gfile.exists(run_dir.file("config.json")) and not args.overwrite:
            raise ValueError(
                f"{args.output!r} already holds a run: choose another --output, or pass --overwrite to replace it."
            )
        model = load_checkpoint(args.source, text=args.text, embed_dim=args.embed_dim)
        source = args.source if args.text is None else f"{args.source} + {args.text}"
        config = import_config(model, source)
        run_dir.write_json("config.json", config)
        run_dir.save_model(model)
        written = ["config.json", "model.keras"]
        if not args.no_export:
            export_model(model, run_dir.export)
            written.append("export/")
    towers = f"{type(model.image_encoder).__name__} + {type(model.text_encoder).__name__}"
    print(f"Imported {source} ({towers}, {model.count_params():,} parameters, {model.loss_name} loss, "
          f"images {config['data']['image_size']} px, texts {config['data']['sequence_length']} tokens).")
    print(f"Run directory: {args.output} ({', '.join(written)}). Next: `mmkeras zero-shot {args.output} --images "
          f"DIR --labels ...`, `mmkeras eval {args.output}`, or `mmkeras train PRESET --init {args.output}`.")
    return 0
