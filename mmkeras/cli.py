"""The `mmkeras` command line. Each sub-command lives in `mmkeras/commands/`."""

import argparse
import sys


def _parser():
    from mmkeras.commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog="mmkeras",
        description="mmkeras: multimodal model zoo for TensorFlow and Keras 3 "
        "(captioning, image-text matching, fusion classifiers).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.NAME, help=command.HELP))
    return parser


def main(argv=None):
    """Entry point of the `mmkeras` console script.

    Args:
        argv: argument list (defaults to `sys.argv[1:]`).

    Returns:
        The exit status: 0 on success, 2 on a usage or input error.

    Example:

    >>> main(["list"])  # doctest: +ELLIPSIS
    captioner-resnet50 ...
    0
    """
    from mmkeras.commands import COMMANDS

    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    command = next(c for c in COMMANDS if c.NAME == args.command)
    try:
        return command.run(args)
    except ValueError as error:
        print(f"mmkeras {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
