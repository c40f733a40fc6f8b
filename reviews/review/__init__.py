"""Analysing a staged version against its baseline, and the pages that show it."""
