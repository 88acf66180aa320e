"""One module of plain functions per outside system.

A reader yields :class:`connectors.page.Page` objects: raw dicts plus the cursor after them.
Clients are passed in, so tests inject a fake transport. Connectors never import the
warehouse or a mapping and never touch a database.
"""
