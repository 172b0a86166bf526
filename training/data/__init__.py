"""Data generators: pure, seeded, no I/O."""
