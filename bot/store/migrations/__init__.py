"""Alembic migrations, shipped inside the package and configured in code (see bot/store/migrate.py)."""
