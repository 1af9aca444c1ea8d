"""Sources read content into a Snapshot; each knows one format and nothing of templates."""
