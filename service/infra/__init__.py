"""Infrastructure: settings, the database models and session, migrations, the engine processes."""
