"""The unified customer store: records in, tables, upserts, cursors, lineage and quarantine.

Never imports a connector, a mapping or Prefect: everything above it depends on it, not
the other way round.
"""
