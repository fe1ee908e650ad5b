"""The sync engine: plans, the state store, apply, resume and undo."""
