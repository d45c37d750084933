"""Paper-style tables and figures rendered from metrics.json files."""
