"""Sources from outside Kizuna: plugin packages, Singer taps and dlt sources, synced,
crashed, discovered and searched for leaked secrets."""
