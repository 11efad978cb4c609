"""Where the repository and its example manifest are, for tests at any depth of the tree."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_MANIFEST = REPO / "examples" / "fleet.yaml"
