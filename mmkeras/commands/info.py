"""`mmkeras info PRESET`: a preset's model card and resolved config."""

import json

NAME = "info"
HELP = "print a preset's model card and resolved config"


def add_arguments(parser):
    parser.add_argument("preset")


def run(args):
    from mmkeras import zoo

    print(zoo.card(args.preset))
    print(json.dumps(zoo.config(args.preset), indent=2))
    return 0
