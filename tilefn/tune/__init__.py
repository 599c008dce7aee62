"""Config spaces, search and benchmarking (see DESIGN.md)."""
