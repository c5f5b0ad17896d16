import pytest


@pytest.fixture(autouse=True)
def _own_reference_cache(tmp_path, monkeypatch):
    """Each test has its own reference cache: no test reads another's reference runs."""
    monkeypatch.setenv("PYRO_SIMPLEHMC_CACHE", str(tmp_path / "reference-cache"))
