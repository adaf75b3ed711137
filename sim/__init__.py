"""Elasticity by simulation: the real scale-up policy driven by upload traces, and a cost model."""
