"""The `mmkeras` command line. Each sub-command lives in `mmkeras/commands/`.

`--help` and `list` answer without loading TensorFlow. The other commands load it quietly
unless `--verbose` is given: see `quiet_tensorflow`.
"""

import argparse
import logging
import os
import sys
import tempfile

# The command line owns its process, so it may tune how TensorFlow uses the CPU.
# TensorFlow's default CPU allocator hands freed buffers back to the system, so
# every training step of a small model page-faults its memory in again: on the
# Shapes captioner that was a third of the CPU time, in the kernel. The BFC
# allocator keeps and reuses them (a step 90 -> 68 ms on 2 cores, same numbers).
# It is read when TensorFlow first allocates, so setting it here, before any
# command runs, is in time; a value the user set is kept.
PROCESS_ENVIRONMENT = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}

# Without `--verbose`, TensorFlow's C++ runtime logs only FATAL lines. Its ERROR lines on a
# plain run are advice ("failed call to cuInit" on a machine without a GPU; "oneDNN supports
# DT_INT64 only on platforms with AVX-512"), and a failure reaches Python as an exception,
# which prints. Read when TensorFlow loads; a value the user set is kept.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def quiet_tensorflow(load=True):
    """Keeps TensorFlow's log lines off stderr; errors still raise and print.

    Sets `QUIET_ENVIRONMENT` (keeping values the user set) and raises TensorFlow's Python
    logger to ERROR ("triggered tf.function retracing" is a warning). The lines its libraries
    write while they load ("oneDNN custom operations are on", "All log messages before
    absl::InitializeLog() ...") ignore `TF_CPP_MIN_LOG_LEVEL`, so with `load` TensorFlow is
    imported here with stderr sent to a temporary file, which is shown only if the import fails.

    Args:
        load: import TensorFlow now (when it is not imported yet).

    Example:

    ```python
    quiet_tensorflow()
    import tensorflow as tf  # already loaded, silently
    ```
    """
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if not load or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _parser():
    from mmkeras.commands import COMMANDS

    verbose_help = "show TensorFlow's log lines (hidden by default)"
    parser = argparse.ArgumentParser(
        prog="mmkeras",
        description="mmkeras: multimodal model zoo for TensorFlow and Keras 3 "
        "(captioning, image-text matching, fusion classifiers).",
    )
    parser.add_argument("--verbose", action="store_true", help=verbose_help)
    # Also accepted after the command; there it must not reset a `--verbose` given before it.
    after_command = argparse.ArgumentParser(add_help=False)
    after_command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.NAME, help=command.HELP, parents=[after_command]))
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
    uses_tensorflow = getattr(command, "USES_TENSORFLOW", True)
    if not args.verbose:
        quiet_tensorflow(load=uses_tensorflow)
    if uses_tensorflow:  # every layer, loss and model registered, so any `.keras` file loads
        import mmkeras

        mmkeras._import_subpackages()
    try:
        return command.run(args)
    # Bad input, an unusable file or folder (a full disk, no permission), a diverged training:
    # one line, the problem and the field or file it concerns.
    except (ValueError, OSError, FloatingPointError) as error:
        print(f"mmkeras {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
