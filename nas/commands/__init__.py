"""One module per ``nas-search`` command."""
