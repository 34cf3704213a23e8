"""The differential harness's verdict: for every request the filter forwards, whatever a real SDK
server executed must be what the filter decided on (same kind, method, name / URI / target and
arguments), one message at most.

`divergences(views, runs)` takes the filter's views (`warden classify`) and one SDK's run
(`sdk_*.py|mjs`), both keyed by case id, and returns one line per disagreement.
"""
from __future__ import annotations

NAMED = {"tools/call", "prompts/get"}
SUBSCRIPTIONS = {"resources/subscribe", "resources/unsubscribe"}
REF_METHOD = {"ref/prompt": "prompts/get", "ref/resource": "resources/read"}


def disagreement(view: dict, done: dict) -> str | None:
    """Why one executed handler call is not what the filter saw (None when it is)."""
    if view["kind"] != "request":
        return f"the filter saw a {view['kind']}, the SDK ran a request"
    method = done.get("method")
    if method != view["method"]:
        return f"method: filter {view['method']!r}, SDK {method!r}"
    if method in NAMED:
        if done.get("name") != view["name"]:
            return f"name: filter {view['name']!r}, SDK {done.get('name')!r}"
        if done.get("args") != view["args"]:
            return f"arguments: filter {view['args']}, SDK {done.get('args')}"
    elif method == "resources/read":
        if done.get("uri") != view["name"]:
            return f"uri: filter {view['name']!r}, SDK {done.get('uri')!r}"
    elif method in SUBSCRIPTIONS:
        target = (view.get("target") or {}).get("name")
        if done.get("uri") != target:
            return f"uri: filter {target!r}, SDK {done.get('uri')!r}"
    elif method == "completion/complete":
        target = view.get("target") or {}
        want = target.get("name")
        got = done.get("name") if done.get("ref_type") == "ref/prompt" else done.get("uri")
        if REF_METHOD.get(done.get("ref_type")) != target.get("method") or got != want:
            return f"completion ref: filter {target}, SDK {done}"
    return None


def divergences(views: dict[str, dict], runs: dict[str, dict]) -> list[str]:
    out = []
    for case_id, run in runs.items():
        view = views.get(case_id)
        if view is None or view.get("refused"):
            out.append(f"{case_id}: sent to the SDK but not forwarded by the filter")
            continue
        executed = run.get("executed") or []
        if len(executed) > 1:
            out.append(f"{case_id}: the SDK executed {len(executed)} messages, the filter decided on one")
            continue
        for done in executed:
            why = disagreement(view, done)
            if why:
                out.append(f"{case_id}: {why}")
    return out
