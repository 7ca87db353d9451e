"""The `mmkeras` command line. Each sub-command lives in `mmkeras/commands/`."""

import argparse
import os
import sys

# The command line owns its process, so it may tune how TensorFlow uses the CPU.
# TensorFlow's default CPU allocator hands freed buffers back to the system, so
# every training step of a small model page-faults its memory in again: on the
# Shapes captioner that was a third of the CPU time, in the kernel. The BFC
# allocator keeps and reuses them (a step 90 -> 68 ms on 2 cores, same numbers).
# It is read when TensorFlow first allocates, so setting it here, before any
# command runs, is in time; a value the user set is kept.
PROCESS_ENVIRONMENT = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}


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
        The exit status: 0 on success, 2 on a usage or input error, an unusable
        file or folder, or a training that diverged.

    Example:

    >>> main(["list"])  # doctest: +ELLIPSIS
    captioner-resnet50 ...
    0
    """
    for name, value in PROCESS_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    from mmkeras.commands import COMMANDS

    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    command = next(c for c in COMMANDS if c.NAME == args.command)
    try:
        return command.run(args)
    # Bad input, an unusable file or folder (a full disk, no permission), a diverged training:
    # one line, the problem and the field or file it concerns.
    except (ValueError, OSError, FloatingPointError) as error:
        print(f"mmkeras {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
