"""Calendar sources (.ics files, CalDAV) through the real engine: containment, limits,
recurrence and time-zone fidelity, the CLI over whole test corpora."""
