"""The finance mapping (``config/finance.toml``): VAT treatment, subjectives, cost centres, suppliers.

Loaded once and checked as a whole: a bad file is a ConfigError naming every problem.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.errors import ConfigError
from hub.settings import Settings, config_dir

VatTreatment = Literal["exempt", "zero", "standard"]


class Supplier(BaseModel):
    """A provider as the ERP knows it: supplier number and site."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=1, max_length=16)
    site: str = Field(min_length=1, max_length=8)


class CostCentres(BaseModel):
    """Cost centres of each service area."""

    model_config = ConfigDict(extra="forbid")

    adults: dict[str, str]
    childrens: dict[str, str]

    @field_validator("adults", "childrens")
    @classmethod
    def _has_default(cls, value: dict[str, str]) -> dict[str, str]:
        if "default" not in value:
            raise ValueError("needs a default cost centre")
        return value


class FinanceMapping(BaseModel):
    """The whole mapping file."""

    model_config = ConfigDict(extra="forbid")

    vat: dict[str, str]
    subjectives: dict[str, str]
    cost_centres: CostCentres
    suppliers: dict[str, Supplier] = Field(default_factory=dict)

    @field_validator("vat")
    @classmethod
    def _vat(cls, value: dict[str, str]) -> dict[str, str]:
        problems = [f"vat.{k}: {v!r} is not exempt, zero or standard" for k, v in value.items()
                    if k != "standard_rate_percent" and v not in ("exempt", "zero", "standard")]
        try:
            Decimal(value.get("standard_rate_percent", "20"))
        except InvalidOperation:
            problems.append("vat.standard_rate_percent is not a number")
        if "default" not in value:
            problems.append("vat needs a default treatment")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("subjectives")
    @classmethod
    def _subjective_default(cls, value: dict[str, str]) -> dict[str, str]:
        if "default" not in value:
            raise ValueError("needs a default subjective")
        return value

    def vat_treatment(self, service_type: str) -> VatTreatment:
        """How VAT applies to a service type."""
        treatment = self.vat.get(service_type, self.vat["default"])
        assert treatment in ("exempt", "zero", "standard")
        return treatment  # type: ignore[return-value]

    @property
    def standard_rate(self) -> Decimal:
        """The standard VAT rate as a fraction (0.20)."""
        return Decimal(self.vat.get("standard_rate_percent", "20")) / 100

    def subjective(self, service_type: str) -> str:
        """The ledger subjective of a service type."""
        return self.subjectives.get(service_type, self.subjectives["default"])

    def cost_centre(self, service_area: str | None, service_type: str, support_reason: str | None) -> str:
        """Adults' services by primary support reason, children's by service type."""
        if service_area == "childrens":
            return self.cost_centres.childrens.get(service_type, self.cost_centres.childrens["default"])
        return self.cost_centres.adults.get(support_reason or "", self.cost_centres.adults["default"])


def load_mapping(settings: Settings) -> FinanceMapping:
    """Read the mapping named by ``settings.finance.mapping_file`` (under config/ unless absolute)."""
    path = Path(settings.finance.mapping_file)
    if not path.is_absolute():
        path = config_dir() / path
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the finance mapping: {exc}") from exc
    try:
        return FinanceMapping.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: finance mapping is invalid: {problems}") from exc
