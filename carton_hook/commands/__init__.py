"""The commands beside running a model: `info`, `verify`, `fetch`, `cache`, `lock`, ..."""
