"""Simulators of the systems a council already runs, for the demo, the tests and the benchmarks.

Each simulator stands in for a real system at its real interface: the legacy
ESCR simulator writes a legacy-shaped SQL database that the hub then reads
through its ordinary SQL adapter.
"""
