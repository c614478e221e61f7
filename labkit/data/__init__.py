"""Market data: validated bars, the Parquet cache, one module per source, and the source registry."""
