"""Custom search attributes: what staff filter cases by in the Temporal UI. Never personal data."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

CONTRACT_NUMBER = SearchAttributeKey.for_keyword("ContractNumber")
DUNNING_STAGE = SearchAttributeKey.for_keyword("DunningStage")
CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")  # running | on_hold | disputed | attention | review | closed
OPEN_AMOUNT_CENTS = SearchAttributeKey.for_int("OpenAmountCents")
NEXT_ACTION_TIME = SearchAttributeKey.for_datetime("NextActionTime")
DUNNING_PLAN = SearchAttributeKey.for_keyword("DunningPlan")
AGENT_CODE = SearchAttributeKey.for_keyword("AgentCode")
HANDOVER_STATE = SearchAttributeKey.for_keyword("HandoverState")  # AgentHandover child: waiting | contacting | …
COURT_STATE = SearchAttributeKey.for_keyword("CourtState")  # CourtDunning child: filed | served | …
# Abandoned-quote campaigns and their follow-ups (models.campaign.CampaignStage values).
CAMPAIGN_STAGE = SearchAttributeKey.for_keyword("CampaignStage")

ALL: list[SearchAttributeKey[Any]] = [
    CONTRACT_NUMBER,
    DUNNING_STAGE,
    CASE_STATUS,
    OPEN_AMOUNT_CENTS,
    NEXT_ACTION_TIME,
    DUNNING_PLAN,
    AGENT_CODE,
    HANDOVER_STATE,
    COURT_STATE,
    CAMPAIGN_STAGE,
]


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    names = {"KEYWORD": "Keyword", "INT": "Int", "DATETIME": "Datetime"}
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={names[key.indexed_value_type.name]}"]
    return flags
