"""Rating400: rating and routing engine for China's 400 service numbers.

The thin Python API over the compiled core. See README.md for the rules.
"""
__version__ = "0.1.0"

# Money: every amount in the engine is an integer count of this minor unit.
MINOR_UNITS_PER_YUAN = 10_000
