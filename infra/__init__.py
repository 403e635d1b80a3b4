"""The platform under the business code: settings, the Temporal runtime and cluster connection,
logging and metrics, payload encryption."""
