"""Hydra's own conformance suite for launcher plugins, run on `hydra/launcher=fused`.

dlrun installs the launcher into the `hydra_plugins` namespace, so any Hydra app in the
environment may pick it: jobs that are not dlrun runs must run as the basic launcher runs them.
"""

from __future__ import annotations

import pytest
from hydra.core.plugins import Plugins
from hydra.test_utils.launcher_common_tests import LauncherTestSuite
from hydra.version import _UNSPECIFIED_, VersionBase

from hydra_plugins.dlrun_fused_launcher.fused_launcher import FusedLauncher

Plugins.instance().register(FusedLauncher)

# Hydra's own advice to apps that set no version_base, which the suite's apps are.
pytestmark = pytest.mark.filterwarnings("ignore:Future Hydra versions:UserWarning")


@pytest.fixture(autouse=True)
def unspecified_version_base(monkeypatch):
    """The suite expects an app that sets no version_base (jobs change directory, say);
    importing dlrun's command sets 1.3 for the whole process."""
    monkeypatch.setattr(VersionBase.instance(), "version_base", _UNSPECIFIED_)


@pytest.mark.parametrize(("launcher_name", "overrides"), [("fused", [])])
class TestFusedLauncher(LauncherTestSuite):
    pass
