"""Which exec transport a release's rules and the user's pods/exec verbs lead to, and the words for each."""
import pytest

from kubectl_whose.cluster.exec_api import SPDY, WEBSOCKET
from kubectl_whose.cluster.exec_transport import ExecPlan
from kubectl_whose.cluster.server_version import ServerRules
from kubectl_whose.errors import ExitCode

# (minor, may get, may create) -> first transport, or None when refused
PLANS = [
    (29, True, False, WEBSOCKET), (29, False, True, SPDY), (29, True, True, WEBSOCKET), (29, False, False, None),
    (34, True, False, WEBSOCKET), (34, False, True, SPDY), (34, True, True, WEBSOCKET), (34, False, False, None),
    (35, True, False, None), (35, False, True, SPDY), (35, True, True, WEBSOCKET), (35, False, False, None),
    (35, None, True, WEBSOCKET), (35, None, None, WEBSOCKET), (29, None, False, WEBSOCKET), (35, True, None, WEBSOCKET),
]


@pytest.mark.parametrize("minor, get, create, first", PLANS,
                         ids=[f"1.{m}-get={g}-create={c}" for m, g, c, _ in PLANS])
def test_plan(minor, get, create, first):
    plan = ExecPlan(ServerRules(f"v1.{minor}.0", minor), get, create)
    if first is None:
        assert plan.refused
        return
    assert not plan.refused
    assert plan.transport == first
    assert set(plan.order) == {WEBSOCKET, SPDY}  # the other one stays as the fallback a refused upgrade takes


def test_refusal_names_the_rule_and_the_role():
    e = ExecPlan(ServerRules("v1.35.0", 35), True, False).refusal("shop")
    assert e.code == ExitCode.FORBIDDEN
    assert e.message == ('RBAC forbids exec in namespace "shop": 1.35 authorizes every exec as "create" on pods/exec '
                         '(a WebSocket exec also as "get"), and get allowed, create denied; nothing was added to the '
                         'pod; grant it with: kubectl create role kubectl-whose -n shop --verb=get,create '
                         '--resource=pods/exec (and bind it to your user)')


@pytest.mark.parametrize("minor, get, create, text", [
    (29, True, True, "WebSocket (v4.channel.k8s.io, 1.29 serves no v5): 1.29 authorizes it as get on pods/exec, "
                     "allowed"),
    (35, True, True, "WebSocket (v5.channel.k8s.io): 1.35 authorizes it as get and create on pods/exec, allowed"),
    (34, False, True, 'SPDY/3.1 (v4.channel.k8s.io): 1.34 authorizes a WebSocket exec as "get" and a SPDY exec as '
                      '"create" on pods/exec; get denied, create allowed'),
    (35, False, False, 'denied: 1.35 authorizes every exec as "create" on pods/exec (a WebSocket exec also as '
                       '"get"); get denied, create denied'),
])
def test_doctor_words(minor, get, create, text):
    assert ExecPlan(ServerRules(f"v1.{minor}.0", minor), get, create).describe() == text
