"""`carehub simulate health_fhir`: the FHIR R4 simulator started alone, as every simulator of the estate starts,
read by a third-party FHIR client (fhirpy)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fhirpy import SyncFHIRClient

from tests.support.cli import CARHUB, hub_env
from tests.support.ports import free_port
from tests.support.waiting import wait_until_served


def test_carehub_simulate_health_fhir_serves_uk_core_patients(tmp_path: Path) -> None:
    port = free_port()
    env = hub_env("sqlite:///" + str(tmp_path / "unused.db"), tmp_path / "var")
    proc = subprocess.Popen([*CARHUB, "simulate", "health_fhir", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        wait_until_served(f"{base}/Patient?_count=1", proc, "carehub simulate health_fhir", timeout=30)
        client = SyncFHIRClient(base)
        patients = client.resources("Patient").limit(50).fetch()
        assert len(patients) == 50
        assert all(p["identifier"][0]["system"] == "https://fhir.nhs.uk/Id/nhs-number" for p in patients)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert f"FHIR R4 simulator on {base}" in (proc.stdout.read() if proc.stdout else "")
