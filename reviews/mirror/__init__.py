"""The registry client and the local mirror of staged versions and their tarballs."""
