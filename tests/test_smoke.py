from click.testing import CliRunner

from compiler.cli import main
from tests.conftest import BOOKINFO


def test_example_mesh_checks_clean() -> None:
    result = CliRunner().invoke(main, ["check", str(BOOKINFO)])
    assert result.exit_code == 0, result.output
    assert result.output == ""
