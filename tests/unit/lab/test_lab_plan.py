"""The lab's plan: nodes, addresses and reserved names, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mecsa.lab.plan import (
    CLIENT_IP,
    FIRST_MX,
    NET,
    RECEIVER_DOMAIN,
    RECEIVER_IP,
    SENDER_IP,
    SENDER_NODE,
    PlanError,
    plan_lab,
)
from mecsa.lab.scenario import Scenario, parse_scenario


def _scenario(domain: str, mx: int = 1) -> Scenario:
    data = {"description": "t", "domain": domain, "mx": [{"name": f"mx{i + 1}"} for i in range(mx)]}
    return parse_scenario(data, source=f"{domain}.toml")


def test_plan_gives_fixed_nodes_then_one_node_per_mx_host(tmp_path: Path) -> None:
    plan = plan_lab([_scenario("a.test", mx=2), _scenario("b.test")], tmp_path)
    nodes = dict(plan.nodes)
    assert nodes["br"] is None
    assert nodes["cli"] == CLIENT_IP
    assert nodes[SENDER_NODE] == SENDER_IP == f"{NET}.5"
    assert [(h.hostname, h.address, h.node) for h in plan.hosts] == [
        ("mx1.a.test", f"{NET}.{FIRST_MX}", f"mx{FIRST_MX}"),
        ("mx2.a.test", f"{NET}.{FIRST_MX + 1}", f"mx{FIRST_MX + 1}"),
        ("mx1.b.test", f"{NET}.{FIRST_MX + 2}", f"mx{FIRST_MX + 2}"),
    ]
    assert "rcv" not in nodes
    assert [s.role for s in plan.senders] == ["hardened"]


def test_mail_mode_adds_the_receiver_and_two_senders_before_the_mx_hosts(tmp_path: Path) -> None:
    plan = plan_lab([_scenario("a.test")], tmp_path, mailmode=True)
    names = [node for node, _ in plan.nodes]
    assert names == ["br", "dns", "res", "cli", "snd", "web", "rcv", "snm", "sns", f"mx{FIRST_MX}"]
    assert dict(plan.nodes)["rcv"] == RECEIVER_IP
    assert [s.role for s in plan.senders] == ["hardened", "may", "not-in-spf"]


@pytest.mark.parametrize("domain", ["sender.test", RECEIVER_DOMAIN, "may.test", "nospf.test"])
def test_a_scenario_may_not_take_a_domain_of_the_lab(tmp_path: Path, domain: str) -> None:
    with pytest.raises(PlanError, match="reserved by the lab"):
        plan_lab([_scenario(domain)], tmp_path)


def test_two_scenarios_may_not_share_a_domain(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="also in"):
        plan_lab([_scenario("a.test"), _scenario("a.test")], tmp_path)
