"""Benchmarks that run the real service against a real PostgreSQL (not part of the tests)."""
