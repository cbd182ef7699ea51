"""Benchmarks against peers (``xmodal bench ...``); numbers and commands in docs/benchmarks.md."""
