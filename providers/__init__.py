"""Provider adapters behind one small interface per job (issue #5): `providers.registry` picks
them by configuration. Kept empty so the workflow sandbox can import `providers.fallback` cheaply."""
