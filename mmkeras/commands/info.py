"""`mmkeras info PRESET`: a preset's model card and resolved config."""

import json

NAME = "info"
HELP = "print a preset's model card and resolved config"
USES_TENSORFLOW = False


def add_arguments(parser):
    parser.add_argument("preset")


def run(args):
    from mmkeras import zoo
    from mmkeras.config import resolve_config

    print(zoo.card(args.preset))
    # Shown, not built: the presets' configs are validated by the tests, so no Keras import is needed.
    print(json.dumps(resolve_config(zoo.get(args.preset), validate=False), indent=2))
    return 0
