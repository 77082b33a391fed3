"""Alembic environment: run against the connection the app hands over."""

from __future__ import annotations

from alembic import context

from service.infra.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
