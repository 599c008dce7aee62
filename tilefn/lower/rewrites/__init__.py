"""Pure Program -> Program rewrites, one per module."""
