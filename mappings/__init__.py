"""Pure functions: one source's raw dict → unified records. No I/O here."""
