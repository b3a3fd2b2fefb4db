"""Deterministic synthetic demo data (tiny/town/city scales), its anomaly manifest and fast bulk loading."""
