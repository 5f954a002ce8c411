import pytest

from console.engine.logs import close_loggers
from console.engine.store import Store


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(f"chdb://{tmp_path / 'ch'}", "backfill")
    yield s
    await s.close()
    close_loggers(tmp_path / "data")


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d
