"""Server tools that tests load as an operator's SLUICE_TOOL_MODULES would."""
