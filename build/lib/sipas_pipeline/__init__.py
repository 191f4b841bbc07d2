"""SIPAS and PAR INDEX pipeline."""
