"""Tables and figures over many runs: sweep reports, folder reports, tutorial references."""
