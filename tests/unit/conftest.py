"""Fixtures shared by the unit tests."""

import pytest


@pytest.fixture
def retention(settings):
    """Keep entries 30 days, the service audit a year and chatty 3 days."""
    settings.LOG_RETENTION_DAYS = 30
    settings.LOG_RETENTION_OVERRIDES = {"audit": 365, "chatty": 3}
    return settings
