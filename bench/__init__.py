"""Benchmarks: each ``bench_<name>.py`` measures one part, writes its figures as JSON and prints a summary."""
