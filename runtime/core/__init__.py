"""The bottom layer: named constants, argument checks, exit codes, out-of-memory handling, optional extras."""
