"""Writing files so that nothing is ever half-written: for both halves."""
