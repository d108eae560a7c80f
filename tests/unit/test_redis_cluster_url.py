"""The Redis Cluster broker URL: seeds, credentials, TLS, and the patterns switch."""

from __future__ import annotations

import pytest

pytest.importorskip("redis", reason="the Redis broker needs redis-py (eventwire[redis])")

from eventwire.brokers import create_broker
from eventwire.brokers._redis_cluster import ClusterUrl
from eventwire.brokers.redis import RedisBroker


def test_every_host_is_a_seed_and_credentials_reach_redis_py() -> None:
    url = ClusterUrl("redis+cluster://app:s3cret@10.0.0.1:7000,10.0.0.2:7001/?socket_keepalive=no")
    assert url.seeds == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert url.patterns
    options = url.options()
    assert (options["username"], options["password"]) == ("app", "s3cret")
    assert options["socket_keepalive"] is False
    assert "ssl" not in options


def test_rediss_asks_for_tls_and_ipv6_seeds_lose_their_brackets() -> None:
    url = ClusterUrl("rediss+cluster://[::1]:7000/")
    assert url.seeds == [("::1", 7000)]
    assert url.options()["ssl"] is True


@pytest.mark.parametrize(
    ("query", "patterns"), [("", True), ("?patterns=on", True), ("?patterns=OFF", False)]
)
def test_patterns_are_on_unless_switched_off(query: str, patterns: bool) -> None:
    assert ClusterUrl(f"redis+cluster://h:1/{query}").patterns is patterns


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster:///",
        "redis+cluster://h/",
        "redis+cluster://h:x/",
        "redis+cluster://h:1/?patterns=maybe",
    ],
)
def test_a_bad_cluster_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="Redis Cluster"):
        ClusterUrl(url)


def test_create_broker_picks_cluster_mode_and_hides_the_password() -> None:
    broker = create_broker("redis+cluster://:pw@h1:7000,h2:7000/?prefix=shop&patterns=off")
    assert isinstance(broker, RedisBroker)
    assert broker.cluster is not None
    assert not broker.cluster.patterns
    assert broker.keys.prefix == "shop"
    assert "pw" not in broker.shown_url
    single = create_broker("redis://h:6379/0")
    assert isinstance(single, RedisBroker)
    assert single.cluster is None
