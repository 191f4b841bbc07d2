"""A survey year's methodology, read from `schemas/<year>/` and checked before use."""

from sipas_pipeline.methodology.loader import Methodology, MethodologyError, load_methodology

__all__ = ["Methodology", "MethodologyError", "load_methodology"]
