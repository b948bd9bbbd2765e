"""Entry points: the dlrun, dlrun-eval, dlrun-report and dlrun-lr-find commands (argv in,
exit status out)."""
