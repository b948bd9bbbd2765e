"""dlrun on a system without fcntl (Windows): it imports, runs, and locks its run folders
with msvcrt. A process of its own blocks fcntl and puts in a stand-in for msvcrt that
keeps Windows' rule: a byte one handle has locked, no other handle may lock. (The standard
library's subprocess is imported first: it takes msvcrt's presence for Windows.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import os
import subprocess  # before the stand-in: it tells Windows by msvcrt
import sys
import types

sys.modules["fcntl"] = None  # `import fcntl` raises ImportError, as on Windows

held = {}


def locking(fd, mode, nbytes):
    key = (os.fstat(fd).st_ino, os.lseek(fd, 0, os.SEEK_CUR))
    if mode == msvcrt.LK_UNLCK:
        del held[key]
    elif held.setdefault(key, fd) != fd:
        raise PermissionError(13, "Permission denied")


msvcrt = types.ModuleType("msvcrt")
msvcrt.LK_UNLCK, msvcrt.LK_NBLCK, msvcrt.locking = 0, 2, locking
sys.modules["msvcrt"] = msvcrt

import dlrun
from dlrun.errors import FolderInUse
from dlrun.outputs.lock import FolderLock, held as folder_held

run = dlrun.train(["dataset=digits", "trainer=smoke", "model=mlp", "hydra.run.dir=run"])
with FolderLock("run"):
    try:
        FolderLock("run").acquire()
        second = "taken"
    except FolderInUse:
        second = "refused"
    during = folder_held("run")
print(json.dumps({"second": second, "during": during,
                  "after": folder_held("run"), "status": run.status}))
"""


def test_dlrun_runs_and_locks_its_folders_without_fcntl(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "DLRUN_DATA"}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {
        "second": "refused",
        "during": True,
        "after": False,
        "status": "completed",
    }
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"
