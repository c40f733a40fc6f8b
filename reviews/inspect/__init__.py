"""Reading and comparing npm tarballs: pure Python on bytes, no Django, no other room."""
