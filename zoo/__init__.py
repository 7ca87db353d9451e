"""mmkeras presets: `<name>.json` configs and `<name>.md` model cards (installed as `mmkeras.presets`)."""
