"""Entry points: the dlrun, dlrun-eval and dlrun-report commands (argv in, exit status out)."""
