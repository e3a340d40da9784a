"""The finance link from the command line: `carehub demo` commits the demo's approved services to the ERP
simulator (SOAP) and takes invoices back; `carehub finance export` writes the feed as CSV from a cursor;
`carehub simulate finance` serves the WSDL on the port it is given."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from hub.store.finance import FinanceVersion
from tests.support.cli import CARHUB, carehub, hub_env
from tests.support.ports import free_port
from tests.support.waiting import wait_until_served


@pytest.mark.slow  # one of the suite's longest (make test runs it)
def test_demo_commits_by_soap_and_the_export_resumes_from_its_cursor(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url, tmp_path / "var", CAREHUB_DEMO__PEOPLE="300")
    out = carehub("demo", "--no-serve", env=env).stdout
    line = next(x for x in out.splitlines() if x.startswith("finance: "))
    derived = int(re.search(r"finance: (\d+) commitment versions", line).group(1))  # type: ignore[union-attr]
    committed = int(re.search(r": (\d+) committed, 0 twice", line).group(1))  # type: ignore[union-attr]
    dead = int(re.search(r"\((\d+) dead letters", line).group(1))  # type: ignore[union-attr]
    assert derived > 0 and committed > 0 and committed + dead <= derived
    assert "http_503 3" in line and "actuals back: 1 file" in line

    first = carehub("finance", "export", "--out", str(tmp_path / "all.csv"), env=env).stdout
    rows = list(csv.DictReader((tmp_path / "all.csv").open()))
    assert len(rows) == derived and f"{derived} versions written" in first
    assert all(re.fullmatch(r"-?\d+\.\d\d", r["weekly_amount"]) for r in rows)
    cursor = first.rsplit("next cursor ", 1)[1].strip()
    again = carehub("finance", "export", "--since", cursor, "--out", str(tmp_path / "none.csv"), env=env).stdout
    assert "0 versions written" in again and again.rstrip().endswith(cursor)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(FinanceVersion)) == derived
    engine.dispose()


def test_carehub_simulate_finance_serves_the_wsdl(tmp_path: Path) -> None:
    port = free_port()
    env = hub_env("sqlite:///" + str(tmp_path / "unused.db"), tmp_path / "var")
    proc = subprocess.Popen([*CARHUB, "simulate", "finance", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_served(f"http://127.0.0.1:{port}/finance/commitments?wsdl", proc, "carehub simulate finance",
                          timeout=30)
        wsdl = requests.get(f"http://127.0.0.1:{port}/finance/commitments?wsdl", timeout=10)
        assert wsdl.status_code == 200 and f"http://127.0.0.1:{port}/finance/commitments" in wsdl.text
        import zeep

        client = zeep.Client(f"http://127.0.0.1:{port}/finance/commitments?wsdl")
        assert {op for op in client.service._binding._operations} == {
            "CreateCommitment", "AmendCommitment", "CloseCommitment"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    unknown = carehub("simulate", "nope", env=env, check=False)
    assert unknown.returncode == 2 and "no simulator 'nope'" in unknown.stderr
