"""Identity benchmarks: FEBRL and the generated Japanese data, the linker alone and the CLI path."""
