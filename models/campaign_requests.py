"""What the calculator, the customer view and the mail provider send to the campaign's endpoints
(web/internal/campaign.py): strict pydantic models, unknown fields refused, limits named."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool, StrictInt, field_validator, model_validator

from core.languages import Language, default_language
from models.campaign import SuppressionReason, TouchpointKind
from models.inputs import BusinessDate, Line, PastMoment

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


# --- inputs ----------------------------------------------------------------------------------


class QuoteAbandonedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote_id: str = Field(pattern=ID_PATTERN)
    vehicle_age_years: StrictInt | None = Field(default=None, ge=0, le=100)
    yearly_mileage_km: StrictInt | None = Field(default=None, ge=0, le=300_000)
    calculator_step: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")
    email: EmailStr | None = None
    opt_in: StrictBool = False
    consent_text_version: Line = Field(default="", max_length=64)
    ip: str | None = Field(default=None, max_length=45)  # the visitor's address, as the calculator saw it
    user_agent: Line | None = Field(default=None, max_length=512)
    source_page: Line = Field(default="", max_length=500)
    abandoned_at: PastMoment | None = None  # with a UTC offset; at most 10 years ago, not in the future
    # The language the campaign writes to this person in (issue #17): de, en or da; without one, the
    # visitor's country (ISO 3166-1 alpha-2, as the calculator knows it) decides, else German.
    language: Language | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")

    def mail_language(self) -> Language:
        """The quote's language: as sent, else by country (core/languages.py), else German."""
        return self.language or default_language(self.country, "de")

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)  # raises "… does not appear to be an IPv4 or IPv6 address"
        return value

    @model_validator(mode="after")
    def _consent(self) -> QuoteAbandonedIn:
        if self.opt_in:
            missing = [
                name
                for name, value in (
                    ("email", self.email),
                    ("consent_text_version", self.consent_text_version.strip()),
                    ("source_page", self.source_page.strip()),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"opt_in=true needs {', '.join(missing)} (the consent proof, DOMAIN.md §9)")
        return self


class TouchpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Line = Field(min_length=1, max_length=128)
    email: EmailStr | None = None
    person_key: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    kind: TouchpointKind
    channel: str = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")  # phone, branch, agent, web, …
    occurred_at: PastMoment
    contract_number: str | None = Field(default=None, pattern=ID_PATTERN)
    inspection_due: BusinessDate | None = None

    @model_validator(mode="after")
    def _who(self) -> TouchpointIn:
        if (self.email is None) == (self.person_key is None):
            raise ValueError("give exactly one of email or person_key")
        if self.kind == TouchpointKind.CONTRACT_SIGNED and not self.contract_number:
            raise ValueError("a contract_signed touchpoint needs contract_number")
        if self.inspection_due is not None and self.kind != TouchpointKind.CONTRACT_SIGNED:
            raise ValueError("inspection_due belongs to a contract_signed touchpoint")
        return self


EMAIL_EVENTS = {
    "processed",
    "delivered",
    "deferred",
    "open",
    "click",
    "bounce",
    "dropped",
    "spam_report",
    "unsubscribe",
}
SUPPRESSING_EVENTS = {
    "bounce": SuppressionReason.BOUNCE,
    "spam_report": SuppressionReason.SPAM_REPORT,
    "unsubscribe": SuppressionReason.UNSUBSCRIBE,
}


class EmailEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Line = Field(min_length=1, max_length=128)
    email_key: Line = Field(min_length=1, max_length=200)
    event: str
    occurred_at: PastMoment

    @field_validator("event")
    @classmethod
    def _event(cls, value: str) -> str:
        if value not in EMAIL_EVENTS:
            raise ValueError(f"event must be one of {', '.join(sorted(EMAIL_EVENTS))}, got {value!r}")
        return value
