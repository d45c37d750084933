"""(package; see its modules)."""
