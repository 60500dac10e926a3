"""Helpers shared by the test suites: random graph strategies, finite-difference gradient checks.

Importing cnnc.testing.graphgen needs hypothesis (a dev dependency); nothing in cnnc imports it.
"""
