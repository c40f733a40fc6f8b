"""A local npm registry with staged publishing and OTP 2FA, for demos and tests.

Standard library only. See devregistry/README.md.
"""
