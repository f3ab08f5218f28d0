"""The model folder: model.json read and validated, models found by name, graphs inspected, the engine."""
