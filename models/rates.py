"""The base interest rate table (§247 BGB) as data: staff extend `models/base_rates.json` (or a
file named by BASE_RATES_FILE) when the Bundesbank publishes a new rate; the table is validated
on load, so a typo stops the engine instead of mis-stating interest."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

DEFAULT_FILE = Path(__file__).with_name("base_rates.json")


class BaseRate(BaseModel):
    valid_from: date
    rate_percent: Decimal = Field(ge=Decimal("-10"), le=Decimal("20"), decimal_places=2)

    @model_validator(mode="after")
    def _half_year(self) -> BaseRate:
        if (self.valid_from.month, self.valid_from.day) not in ((1, 1), (7, 1)):
            raise ValueError(f"valid_from must be 1 January or 1 July (§247 BGB), got {self.valid_from}")
        return self


class BaseRateTable(BaseModel):
    source: str = ""
    rates: list[BaseRate] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> BaseRateTable:
        days = [r.valid_from for r in self.rates]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError(f"rates must be in ascending valid_from order without repeats, got {days}")
        return self

    def rate_on(self, day: date) -> Decimal:
        """The base rate in force on `day`."""
        current = None
        for rate in self.rates:
            if rate.valid_from <= day:
                current = rate.rate_percent
        if current is None:
            raise ValueError(f"no base rate known for {day}; the table starts {self.rates[0].valid_from}")
        return current

    def changes_between(self, start: date, end: date) -> list[date]:
        """Dates in (start, end) on which the base rate changes."""
        return [r.valid_from for r in self.rates if start < r.valid_from < end]


@lru_cache
def load_base_rates(path: Path = DEFAULT_FILE) -> BaseRateTable:
    return BaseRateTable.model_validate(json.loads(path.read_text(encoding="utf-8")))
