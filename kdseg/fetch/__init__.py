"""Fetch machinery for the real datasets: catalog, resumable downloads, checksums, safe
extraction, layout checks (``kdseg fetch`` / ``kdseg prepare``; docs/data_real.md)."""
