"""The application core: settings, services, mail, CLI. Never imports strawberry."""
