"""The server tools every Sluice has: one module per tool, each one decorated function.
Every module here is loaded at startup (services/tools/registry.py, `load_tools`)."""
