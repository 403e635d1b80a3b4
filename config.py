"""All runtime configuration, from the environment (or a `.env` file): one place, typed.

The embedded default needs none of it; production sets DATABASE_URL, TEMPORAL_ADDRESS and
the secrets.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = ROOT / "data"
    database_url: str = ""  # empty: SQLite file under data_dir
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "dunning"
    public_base_url: str = "http://127.0.0.1:8000"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    # Signs pay links and the built-in test provider's webhooks. Override in production.
    link_secret: str = Field(default="dev-only-link-secret-change-me", min_length=16)
    testpay_webhook_secret: str = Field(default="dev-only-testpay-secret", min_length=16)
    pay_link_days: int = 30
    # The insurer, as it appears on letters and GiroCodes.
    creditor_name: str = "Beispiel Versicherung AG"
    creditor_iban: str = "DE02120300000000202051"
    creditor_bic: str = "BYLADEM1001"
    creditor_address: str = "Musterstraße 1, 10115 Berlin"
    default_plan: str = "de-follow-up"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ledger.sqlite3'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
