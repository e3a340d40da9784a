"""The canonical model refuses what a social worker would call impossible."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from hub.model import Commitment, Episode, Person
from hub.model.validators import is_valid_nhs_number, normalise_postcode


def test_nhs_number_check_digit_worked_example() -> None:
    assert is_valid_nhs_number("9434765919")
    assert not is_valid_nhs_number("9434765918")
    assert not is_valid_nhs_number("7000000001")


def test_person_rejects_bad_nhs_number_and_future_birth() -> None:
    with pytest.raises(ValidationError, match="modulus-11"):
        Person(names=[{"family": "Hale"}], nhs_number="9434765918")
    with pytest.raises(ValidationError, match="in the future"):
        Person(names=[{"family": "Hale"}], birth_date=date.today() + timedelta(days=2))


def test_postcode_is_normalised_or_refused() -> None:
    assert normalise_postcode("ls14ap") == "LS1 4AP"
    assert normalise_postcode("EC1A 1BB") == "EC1A 1BB"
    with pytest.raises(ValueError):
        normalise_postcode("NOT A PC")


def test_episode_end_not_before_start() -> None:
    with pytest.raises(ValidationError, match="end is before start"):
        Episode(service_area="adults", kind="long_term_support", start="2024-05-01", end="2024-04-01")


def test_commitment_weekly_cost_is_exact() -> None:
    c = Commitment(service_type="home_care", unit_cost="19.37", units_per_week="7.5", start="2024-01-01")
    assert c.weekly_cost == Decimal("145.28")
