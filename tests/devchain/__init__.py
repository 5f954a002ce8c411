"""Tests of the simulated chain (console/devchain)."""
