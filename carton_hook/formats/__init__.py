"""The files both halves read and check the same way: the lock, wheels, the archive, URLs."""
