"""Python function -> Program: tracing with proxies, the IR and its printer."""
