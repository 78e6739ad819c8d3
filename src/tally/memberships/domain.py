"""Pure rules of this domain (no I/O)."""
