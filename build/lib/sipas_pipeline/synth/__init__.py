"""A synthetic survey year that behaves like a real one (the real microdata are not public)."""

from sipas_pipeline.synth.year import generate_year

__all__ = ["generate_year"]
