"""Requirements into pinned distributions: the requirements file, pip's resolution, and the
environments and platforms a lock section is resolved for."""
