"""Locate the third-party log samples that some tests read.

The samples' licences do not allow copying them into this repository, so
the tests read them from the folder in LOGPLATFORM_TEST_DATA.
"""

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def configured_folder() -> Path:
    """Return the folder that LOGPLATFORM_TEST_DATA names, from the project root.

    The environment wins; otherwise the setting's default is read, which
    imports Django's settings only when they are needed.
    """
    raw = os.environ.get("LOGPLATFORM_TEST_DATA")
    if not raw:
        from django.conf import settings

        raw = settings.LOGPLATFORM_TEST_DATA
    folder = Path(raw)
    return folder if folder.is_absolute() else (PROJECT_ROOT / folder).resolve()


def data_dir() -> Path:
    """Return the sample folder, or end the calling test when it is missing.

    LOGPLATFORM_TEST_DATA names the folder, and a relative path is taken
    from the project root. Without the folder the test fails when CI=true,
    so a CI run cannot pass without the samples, and is skipped otherwise.
    """
    folder = configured_folder()
    if folder.is_dir():
        return folder
    message = (
        f"Test data folder {folder} not found; set LOGPLATFORM_TEST_DATA to "
        "the folder with the loghub, syslog and jsonlines samples."
    )
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
