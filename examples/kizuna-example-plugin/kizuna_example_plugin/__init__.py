"""An example Kizuna plugin: a JSON-lines source type and a drop-folder channel type."""
