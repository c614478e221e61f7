"""Configuration: the schema (one frozen pydantic model per component), loading (``labkit.yaml``,
``LABKIT_*`` variables, flags) and assembly (a validated config turned into an engine)."""
