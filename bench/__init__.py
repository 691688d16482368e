"""Benchmarks of Sync Console at scale: `make bench` (see bench/README.md)."""
