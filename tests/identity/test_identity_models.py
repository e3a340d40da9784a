"""The learned model survives a restart: stored with the batch that learned it, read back exactly
by a new resolver, and ignored once the identity configuration changes (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, select, text

from hub.identity import Matcher, MatchRecord, load_identity_config
from hub.identity.comparisons import COMPARISONS, FIELDS
from hub.identity.config import IdentityConfig, LevelWeights
from hub.identity.model import MatchModel, TermFrequencies, model_fingerprint
from hub.identity.resolver import PersonResolver
from hub.identity.synthetic import linkage_task
from hub.pipeline import Pipeline
from hub.store.db import Store
from hub.store.identity import IdentityModel, MatchLink, learned_models, save_model, stored_model
from hub.store.migrate import current, upgrade
from hub.sync import sync_source
from tests.support.postgres import BACKENDS, fresh_database
from tests.support.two_sources import legacy

# Every head before identity_models (0015 merges them; 0004 stays a head, see the migration).
_BEFORE = ("0002_addressing", "0004_delivery", "0005_audit", "0006_data_quality", "0007_health",
           "0009_delivery_lanes", "0011_edrms", "0012_finance_items", "0012_review_partner",
           "0014_transition_cohort")


def _people(rows: list[dict[str, str]], first_id: int) -> list[tuple[Any, ...]]:
    """Synthetic rows as the small legacy schema's clients (id, given, family, dob, sex, house, street, postcode)."""
    out = []
    for k, row in enumerate(rows):
        born = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)", row["birth_date"])
        house, _, street = row["address_line"].partition(" ")
        dob = f"{born[3]}/{born[2]}/{born[1]}" if born else ""
        out.append((first_id + k, row["given_name"], row["family_name"], dob, row["sex"] or "F", house, street,
                    row["postcode"]))
    return out


def _add_client(adapter_db: Path, person: tuple[Any, ...], updated: str) -> None:
    """One more client in a small legacy database, updated after everything already synced."""
    engine = create_engine(f"sqlite:///{adapter_db}")
    pid, given, family, born, sex, house, street, postcode = person
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO CLIENT VALUES (:id, :fn, :sn, :dob, :g, NULL, NULL, :lu, NULL)"),
                     {"id": pid, "fn": given, "sn": family, "dob": born, "g": sex, "lu": updated})
        conn.execute(text("INSERT INTO CLIENT_ADDRESS VALUES (:id, :c, :h, :s, :p, '01/01/2010', :lu)"),
                     {"id": pid, "c": pid, "h": house, "s": street, "p": postcode, "lu": updated})
    engine.dispose()


def _evidence_weights(store: Store, ref: str) -> dict[tuple[str, str], float]:
    with store.session() as s:
        link = s.scalar(select(MatchLink).where(MatchLink.person_b == ref))
    assert link is not None and link.decision == "link", ref
    return {(item["field"], item["level"]): item["weight"] for item in link.evidence["fields"]}


def _weights_of(model: MatchModel, used: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    weights = model.level_weights()
    return {(name, lv): round(float(weights[FIELDS.index(name), COMPARISONS[name].index(lv)]), 3)
            for name, lv in used}


def _small_config() -> IdentityConfig:
    """The shipped configuration, learning from a sync's batch of 200 records or more."""
    config = load_identity_config()
    return config.model_copy(update={"estimation": config.estimation.model_copy(update={"min_source_records": 200})})


def test_a_round_tripped_model_scores_every_pair_identically() -> None:
    task = linkage_task(400, 400, seed=13)
    config = load_identity_config()
    matcher = Matcher(config)
    left = matcher.encoder.encode(MatchRecord.from_row(r) for r in task.left)
    right = matcher.encoder.encode(MatchRecord.from_row(r) for r in task.right)
    learned = matcher.learn_source(right, left)
    assert learned is not None and not np.allclose(learned.m, MatchModel.from_config(config).m)
    frequencies = TermFrequencies.of([left, right], len(matcher.encoder.names))
    pairs = matcher.comparer.compare(left, right, *[np.concatenate(x) for x in zip(
        *[(a, b) for a, b, _ in matcher.blocker(left, right).chunks()], strict=True)])
    assert len(pairs) > 100
    for model in (learned, MatchModel(learned.m, learned.u, learned.prior, frequencies)):
        # through JSON text, as the store keeps it
        back = MatchModel.from_json(json.loads(json.dumps(model.to_json())), model.prior)
        assert np.array_equal(back.m, model.m) and np.array_equal(back.u, model.u)
        assert np.array_equal(back.field_weights(pairs, left, right), model.field_weights(pairs, left, right))
        total = model.field_weights(pairs, left, right).sum(axis=1)
        assert np.array_equal(back.probability(total), model.probability(total))
    changed = dict(learned.to_json(), levels={**learned.to_json()["levels"], "sex": ["missing", "same"]})
    try:
        MatchModel.from_json(changed, 0.1)
    except ValueError:
        pass
    else:
        raise AssertionError("a model of other comparison levels was read")


def test_a_restarted_resolver_scores_with_the_stored_model_until_the_config_changes(
        store: Store, tmp_path: Path) -> None:
    config = _small_config()
    task = linkage_task(300, 300, seed=4)
    escr = legacy(tmp_path, "escr", _people(task.left, 1))
    adults = legacy(tmp_path, "adults", _people(task.right, 1001))
    first = PersonResolver(config)
    sync_source(store, escr, Pipeline(resolver=first), batch_size=1000)
    sync_source(store, adults, Pipeline(resolver=first), batch_size=1000)
    assert "adults" in first.models
    with store.session() as s:
        row = s.get(IdentityModel, "adults")
        kept = stored_model(s, "adults", model_fingerprint(config))
        listed = learned_models(s)
    assert row is not None and row.fingerprint == model_fingerprint(config) and 200 <= row.records <= 300
    assert {m["source"] for m in listed} >= {"adults"}
    assert kept is not None
    # the stored model is exactly the one the sync learned and scored with
    learned = MatchModel.from_json(kept, first.models["adults"].prior)
    assert np.array_equal(learned.m, first.models["adults"].m) and np.array_equal(learned.u, first.models["adults"].u)

    # A restarted process: a new resolver, one more record of the same source (a batch far under 200).
    again = _people(task.left[:2], 5001)
    _add_client(tmp_path / "adults.db", again[0], "2024-06-01 09:00:00")
    sync_source(store, adults, Pipeline(resolver=PersonResolver(config)), batch_size=50)
    used = _evidence_weights(store, "adults/clients/5001")
    configured = MatchModel.from_config(config)
    assert used == _weights_of(learned, used)
    assert used != _weights_of(configured, used)

    # The identity configuration changes: the stored model is stale, the configured weights score.
    weights = dict(config.weights)
    given = weights["given_name"]
    weights["given_name"] = LevelWeights(m={**given.m, "exact": 0.9}, u=given.u)
    changed = config.model_copy(update={"weights": weights})
    assert model_fingerprint(changed) != model_fingerprint(config)
    # (the thresholds decide from a score, they do not make a model: a new one keeps the stored model)
    assert model_fingerprint(config.model_copy(update={"thresholds": config.thresholds.model_copy(
        update={"link": 0.97})})) == model_fingerprint(config)
    _add_client(tmp_path / "adults.db", again[1], "2024-06-02 09:00:00")
    sync_source(store, adults, Pipeline(resolver=PersonResolver(changed)), batch_size=50)
    used = _evidence_weights(store, "adults/clients/5002")
    assert used == _weights_of(MatchModel.from_config(changed), used)
    assert used != _weights_of(learned, used)
    escr.close()
    adults.close()


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, never migrated: a SQLite file, or a new database on the PostgreSQL server."""
    with fresh_database(request.param, tmp_path, "carehub_models") as url:
        yield url


def test_the_migration_adds_identity_models_to_a_store_at_the_earlier_heads(fresh_url: str) -> None:
    store = Store(fresh_url)
    for head in _BEFORE:
        upgrade(store.engine, head)
    assert current(store.engine) == set(_BEFORE) - {"0004_delivery"}  # 0009 took 0004's row
    assert "identity_models" not in inspect(store.engine).get_table_names()
    upgrade(store.engine)
    assert current(store.engine) == {"0015_identity_models"}
    config = load_identity_config()
    model = MatchModel.from_config(config)
    with store.session() as s:
        save_model(s, "adults", model.to_json(), model_fingerprint(config), 1000)
    with store.session() as s:
        kept = stored_model(s, "adults", model_fingerprint(config))
        learned_at = s.scalar(select(IdentityModel.learned_at))
    store.dispose()
    assert kept is not None and learned_at is not None and learned_at.tzinfo is not None
    back = MatchModel.from_json(kept, model.prior)
    assert np.array_equal(back.m, model.m) and np.array_equal(back.u, model.u)
