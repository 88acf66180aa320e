"""Kizuna's shared base: the error tree and the few types every layer agrees on.

It sits below every other package so connectors, mappings, the warehouse and flows can
all raise and catch the same errors without importing each other.
"""

__version__ = "0.1.0"
