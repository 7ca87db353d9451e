"""`mmkeras list`: the zoo presets, one per line."""

NAME = "list"
HELP = "list the zoo presets"
USES_TENSORFLOW = False


def add_arguments(parser):
    del parser  # no arguments


def run(args):
    from mmkeras import zoo

    for name in zoo.list():
        preset = zoo.get(name)
        print(f"{name:34s} {preset['task']:11s} {preset.get('description', '')}")
    return 0
