"""HTTP endpoints, one module per area; each view parses input, calls a service, returns."""
