"""Program -> Program rewrites, Triton code generation and the launcher."""
