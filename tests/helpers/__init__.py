"""Helpers shared by the tests: tiny networks and runs, real-data paths, hostile inputs, emulators."""
