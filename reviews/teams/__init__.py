"""Teams, roles and package patterns: who sees and may do what."""
