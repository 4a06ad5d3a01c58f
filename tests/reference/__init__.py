"""rpcgen reference harness for differential tests and benchmarks (not a test module)."""
