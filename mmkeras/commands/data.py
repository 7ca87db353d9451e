"""`mmkeras data convert|inspect`: real datasets to TFRecord shards, and a look at shards."""

NAME = "data"
HELP = "convert datasets to TFRecord shards (convert) or show a shard folder (inspect)"


def add_arguments(parser):
    from mmkeras.data.open_source import SOURCE_KINDS

    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    convert = sub.add_parser("convert", help="write a dataset as TFRecord shards")
    convert.add_argument(
        "--source",
        required=True,
        help=f"KIND:PATH with KIND one of {', '.join(SOURCE_KINDS)}: shapes[:SPLIT], coco:JSON, "
        "flickr:TOKEN_FILE, csv:FILE, jsonl:FILE, folder:DIR, tfds:NAME",
    )
    convert.add_argument("--images", help="images folder (coco, flickr, csv, jsonl)")
    convert.add_argument("--split-json", help="Karpathy split JSON (flickr)")
    convert.add_argument("--split", help="split to read (flickr with --split-json, tfds, shapes)")
    convert.add_argument("--data-dir", help="TFDS data folder (tfds)")
    convert.add_argument("--output", required=True, help="output folder for the shards")
    convert.add_argument("--output-split", help="split name of the shard files (default: --split or train)")
    convert.add_argument("--num-shards", type=int, default=8, help="number of shard files (default 8)")
    convert.add_argument("--max-records", type=int, help="stop after this many input records")
    convert.add_argument(
        "--validate", choices=("full", "check", "none"), default="full",
        help="image validation: full (decode every image, default), check (one batched decode), none",
    )
    convert.add_argument("--image-size", type=int, default=64, help="shapes: image size (default 64)")
    convert.add_argument("--num-examples", type=int, help="shapes: number of scenes")
    inspect = sub.add_parser("inspect", help="print the counts and skip report of a shard folder")
    inspect.add_argument("directory", help="a folder written by `mmkeras data convert`")
    parser.set_defaults(_data_parser=parser)


def _convert(args):
    from mmkeras.data import open_source, write_shards

    kind = args.source.partition(":")[0]
    kwargs = {"validate_images": args.validate}
    if args.max_records is not None:
        kwargs["max_records"] = args.max_records
    if kind == "shapes":
        kwargs["image_size"] = args.image_size
        if args.num_examples is not None:
            kwargs["num_examples"] = args.num_examples
        kwargs.pop("validate_images")
        if args.validate != "full":
            kwargs["validate_images"] = args.validate
    source = open_source(
        args.source, images=args.images, split_json=args.split_json, split=args.split,
        data_dir=args.data_dir, **kwargs,
    )
    split = args.output_split or getattr(source, "split", None) or args.split or "train"
    if not isinstance(split, str) or not split.isidentifier():
        split = "train"
    info = write_shards(source, args.output, num_shards=args.num_shards, split=split)
    print(f"source: {info['source']}")
    print(
        f"wrote {info['num_records']} records ({info['num_texts']} captions) to {args.output} "
        f"as {info['num_shards']} {split} shards"
    )
    print(source.report.summary())
    return 0


def _inspect(args):
    from mmkeras.data.shard_writer import _read_info
    from mmkeras.data.skip_report import SkipReport

    info = _read_info(args.directory)
    if not info.get("splits"):
        raise ValueError(f"`directory` {args.directory!r} has no dataset_info.json with splits.")
    for split, entry in sorted(info["splits"].items()):
        print(
            f"{split}: {entry['num_records']} records, {entry['num_texts']} captions, "
            f"{entry['num_shards']} shards {entry['shard_counts']}"
        )
        print(f"  source: {entry.get('source')}")
        if entry.get("class_names"):
            print(f"  classes: {', '.join(entry['class_names'])}")
        if entry.get("skip_report"):
            print(f"  {SkipReport.from_dict(entry['skip_report']).summary()}")
    return 0


def run(args):
    if args.data_command == "convert":
        if args.num_shards < 1:
            raise ValueError(f"`--num-shards` must be >= 1, got {args.num_shards}.")
        return _convert(args)
    if args.data_command == "inspect":
        return _inspect(args)
    args._data_parser.print_help()
    return 0
