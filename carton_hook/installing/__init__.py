"""Put locked wheels into the cache: the worker, downloads, checks, unpacking, bytecode,
progress."""
