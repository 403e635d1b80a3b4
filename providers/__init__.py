"""Provider adapters behind one small interface per job (issue #5): `providers.registry` picks
them by configuration. No workflow lives here: the channel fallback is workflows/fallback.py."""
