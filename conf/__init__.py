# Makes conf/ the package `dlrun.conf` (see pyproject.toml), so Hydra finds these files as
# pkg://dlrun.conf both from an editable install and from an installed wheel.
