"""The benchmark: figures the issues name, measured at town or city scale (``make bench``)."""
