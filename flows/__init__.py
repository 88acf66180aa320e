"""Prefect flows, the workspace configuration and the command line."""
