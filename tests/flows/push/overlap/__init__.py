"""Campaign runs that collide: two at once, the CLI beside a Prefect flow run, SIGKILLs."""
