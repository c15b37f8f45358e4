"""The throughput benchmark of the whole pipeline, run by `make bench`."""
