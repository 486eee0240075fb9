"""The FSDD recordings from ../shared/datasets, when this checkout has them."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture
def fsdd_root():
    """The folder holding fsdd/recordings (a data dir for --data-dir)."""
    if not (DATASETS / "fsdd" / "recordings").is_dir():
        pytest.skip(f"needs the FSDD dataset in {DATASETS / 'fsdd'}, which is missing")
    return DATASETS
