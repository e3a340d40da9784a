"""Simulators of the systems a council already runs, for the demo, the tests and the benchmarks.

Each simulator stands in for a real system at its real interface (SQL, HTTP on
loopback), so the hub's own client code runs unchanged against it: the legacy
ESCR simulator writes a legacy-shaped SQL database that the hub then reads
through its ordinary SQL adapter.
"""
