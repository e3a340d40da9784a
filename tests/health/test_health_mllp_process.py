"""`carehub mllp` as a process: SIGTERM stops it cleanly, and its reader processes stop with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.processes import alive, descendants
from tests.support.waiting import wait_for


def test_sigterm_stops_the_listener_and_its_reader_processes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    env.update({"CAREHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}", "CAREHUB_DATA_DIR": str(tmp_path)})
    proc = subprocess.Popen([sys.executable, "-m", "hub", "mllp", "--port", "0", "--readers", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the reader processes are up and the port is bound
        assert "listening for MLLP" in line, line + (proc.stderr.read() if proc.stderr else "")
        readers = descendants(proc.pid)
        assert len([c for c in readers.values() if "multiprocessing" in c and "resource_tracker" not in c]) == 2
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped after 0 messages" in out
    wait_for(lambda: not any(alive(pid) for pid in readers), "the reader processes to exit", timeout=10, every=0.05)
