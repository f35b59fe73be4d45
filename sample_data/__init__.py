"""Deterministic demo data for the Liaison and Diversion hub (see `sample_data.generator`)."""
