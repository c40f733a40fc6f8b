"""Approving and rejecting at the registry with a person's own npm token and 2FA."""
