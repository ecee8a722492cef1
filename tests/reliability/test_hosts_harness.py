"""switchyard_dev/hosts.py without namespaces: how it reads docker-compose.yml."""

import pytest

from switchyard_dev.hosts import interpolate, load_compose, service_environment

pytestmark = pytest.mark.once


def test_interpolation_follows_composes_rules():
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate("${SET} $SET ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} $$SET", env) == (
        "value value d d  $SET"
    )
    assert interpolate(["${SET}", {"k": "${UNSET}"}], env) == ["value", {"k": ""}]


def test_a_required_variable_that_is_unset_is_refused_by_name():
    with pytest.raises(ValueError, match="NEEDED is required: set it"):
        interpolate("${NEEDED:?set it}", {})


def test_the_env_file_comes_from_the_given_env_and_environment_overrides_it():
    service = {"env_file": ".env", "environment": ["A=from-service", "B"]}
    assert service_environment(service, {"A": "env", "B": "b", "C": "c"}) == {
        "A": "from-service", "B": "b", "C": "c",
    }  # fmt: skip
    assert service_environment({"environment": {"X": 1}}, {"A": "env"}) == {"X": "1"}


def test_the_sentinel_profile_adds_a_replica_and_three_sentinels_that_watch_redis():
    services = load_compose()
    profiled = {name for name, spec in services.items() if spec.get("profiles")}
    assert profiled == {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
    assert "--replicaof" in services["redis-replica"]["command"]
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        script = services[name]["command"][-1]
        assert "sentinel monitor switchyard redis 6379 2" in script
        assert script.endswith("exec redis-server sentinel.conf --sentinel")
