"""Python function -> Program: tracing with proxies, the IR and its printer.

Importing the package loads every module that registers into the proxies' tables (the device-op
families, indexing, the scatter spellings, host calls, calls on captured tensors) and the printer, so tracing and printing
work whatever is imported.
"""
from . import captured_calls, host, indexing, ops, printer, scatter, value_reads  # noqa: F401
