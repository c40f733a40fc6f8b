"""Template tags: where a page of one room shows a part owned by a higher room."""
