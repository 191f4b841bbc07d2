"""A synthetic survey year that behaves like a real one (the real microdata are not public)."""

from sipas_pipeline.synth.design import DesignParams
from sipas_pipeline.synth.simulate import SimulatedYear, simulate_citizens
from sipas_pipeline.synth.year import generate_year

__all__ = ["DesignParams", "SimulatedYear", "generate_year", "simulate_citizens"]
