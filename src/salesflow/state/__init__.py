"""The service's own durable records (report jobs, schedules, their runs): SQLAlchemy tables, repositories
taking a session, and the Alembic migrations that create them. Redis stays the cache and the broker."""
