"""The `mmkeras` sub-commands, one module each.

Every module defines `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`;
`mmkeras.cli` assembles them into one parser. A `ValueError` raised by `run` is
printed as `mmkeras NAME: error: ...` with exit status 2. A module that never imports
TensorFlow sets `USES_TENSORFLOW = False`; for the others the command line imports it
first, quietly unless `--verbose` (`mmkeras.cli.quiet_tensorflow`).
"""

from mmkeras.commands import (
    caption, classify, data, demo, evaluate, import_checkpoint, index, info, list_presets, search, train, zero_shot,
)

COMMANDS = [list_presets, info, train, evaluate, import_checkpoint, zero_shot, caption, index, search, classify, data,
            demo]
