"""Benchmarks of the similarity library: sine toy, digits enforcement, speed and memory."""
