"""The tamper-evident audit trail: recording entries, verifying the chain, the audit page."""
