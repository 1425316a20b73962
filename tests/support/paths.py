"""Where the tests find the repository and their data, wherever the test module itself sits."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_DATA = REPO_ROOT / "tests" / "data"
GOLDEN = REPO_ROOT / "tests" / "golden"
