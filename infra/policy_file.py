"""Load the versioned policy bundle from JSON (the operator may replace the file)."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from domain.calendar import Calendar
from domain.complaint import SEVERITIES
from domain.limits import id_problem, whole_problem
from domain.policy import (
    TIERS, VIP_TIERS, Agent, BenefitsPolicy, Policy, SlaPolicy, SlaTarget, Team, TierBenefits,
    TierPolicy, TierRule,
)


class PolicyFileError(ValueError):
    """The policy file cannot be used; the message says which field to fix."""


def default_policy_text() -> str:
    return resources.files("infra").joinpath("default_policy.json").read_text()


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy in ``path``, or the packaged default (DOMAIN.md) when None."""
    text = Path(path).read_text() if path else default_policy_text()
    try:
        return policy_from_dict(json.loads(text))
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyFileError(f"policy {path or 'default'}: {exc}") from exc


def _conversions(data: dict) -> dict[str, int]:
    if not isinstance(data, dict):
        raise ValueError("tiers.conversions must map a currency code to an integer rate")
    for code, rate in data.items():
        if not (isinstance(code, str) and len(code) == 3 and code.isupper()):
            raise ValueError(f"tiers.conversions: {code!r} is not an ISO 4217 code")
        if not isinstance(rate, int) or isinstance(rate, bool) or rate < 0:
            raise ValueError(f"tiers.conversions.{code} must be a whole number of tier-currency fen "
                             f"per 1,000,000 minor units, got {rate!r}")
    return dict(data)


def _severity_factors(data: dict) -> dict[str, float]:
    if not isinstance(data, dict):
        raise ValueError("sla.severity_factors must map a severity to a factor")
    for severity, factor in data.items():
        if severity not in SEVERITIES:
            raise ValueError(f"sla.severity_factors: {severity!r} is not one of {', '.join(SEVERITIES)}")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor <= 10:
            raise ValueError(f"sla.severity_factors.{severity} must be a number above 0 and at most 10, "
                             f"got {factor!r}")
    return {k: float(v) for k, v in data.items()}


def _entries(data: dict, name: str, keys: dict[str, bool]) -> list[dict]:
    """``benefits.<name>``: a list of objects with ``keys`` (name -> required) and no others."""
    items = data.get(name, [])
    if not isinstance(items, list):
        raise ValueError(f"benefits.{name} must be a list of objects")
    for n, item in enumerate(items):
        where = f"benefits.{name}[{n}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be an object with {', '.join(keys)}")
        unknown = sorted(set(item) - set(keys))
        missing = [k for k, required in keys.items() if required and k not in item]
        if unknown or missing:
            raise ValueError(f"{where}: " + "; ".join(
                ([f"unknown field(s) {', '.join(unknown)}"] if unknown else [])
                + ([f"missing {', '.join(missing)}"] if missing else [])) + f" (fields: {', '.join(keys)})")
        for key in ("id", "queue", "team"):
            if key in item and (problem := id_problem(item[key], f"{where}.{key}")):
                raise ValueError(problem)
    ids = [item.get("id", item.get("tier")) for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"benefits.{name} lists {sorted({i for i in ids if ids.count(i) > 1})} twice")
    return items


def _benefits(data: dict) -> BenefitsPolicy:
    """Benefits per tier and the agent roster (seed 002 §3.2, §4.1); absent means none."""
    if not isinstance(data, dict):
        raise ValueError("benefits must be an object with tiers, teams and agents")
    teams = tuple(Team(**t) for t in _entries(data, "teams", {"id": True, "queue": True}))
    known = {t.id for t in teams}
    agents = []
    for n, a in enumerate(_entries(data, "agents", {"id": True, "team": True, "available": False})):
        if a["team"] not in known:
            raise ValueError(f"benefits.agents[{n}] ({a['id']}) names team {a['team']!r}, which "
                             f"benefits.teams does not list (teams: {', '.join(sorted(known)) or 'none'})")
        if not isinstance(a.get("available", True), bool):
            raise ValueError(f"benefits.agents[{n}].available must be true or false")
        agents.append(Agent(**a))
    tiers = []
    for n, b in enumerate(_entries(data, "tiers", {"tier": True, "dedicated_agent": True,
                                                   "priority": True, "team": True})):
        where = f"benefits.tiers[{n}]"
        if b["tier"] not in VIP_TIERS:
            raise ValueError(f"{where}.tier {b['tier']!r} is not a VIP tier ({', '.join(VIP_TIERS)}): "
                             "benefits need a VIP standing")
        if not isinstance(b["dedicated_agent"], bool):
            raise ValueError(f"{where}.dedicated_agent must be true or false")
        if problem := whole_problem(b["priority"], f"{where}.priority", 1, 100):
            raise ValueError(problem)
        if b["team"] not in known:
            raise ValueError(f"{where}.team {b['team']!r} is not in benefits.teams")
        if b["dedicated_agent"] and not any(a.team == b["team"] for a in agents):
            raise ValueError(f"{where}: {b['tier']} gets a dedicated agent from team {b['team']}, "
                             "but benefits.agents lists nobody in that team")
        tiers.append(TierBenefits(**b))
    return BenefitsPolicy(tuple(tiers), teams, tuple(agents))


def policy_from_dict(data: dict) -> Policy:
    tiers = data["tiers"]
    rules = tuple(TierRule(**r) for r in tiers["rules"])
    if [r.tier for r in rules] != list(TIERS[1:]):
        raise ValueError(f"tiers.rules must list {TIERS[1:]} in order")
    tier_policy = TierPolicy(
        rules=rules, window_days=tiers.get("window_days", 365),
        activity_months_window=tiers.get("activity_months_window", 12),
        points_per_cny=tiers.get("points_per_cny", 1),
        activity_points=dict(tiers.get("activity_points", {})),
        max_downgrade_steps=tiers.get("max_downgrade_steps", 1),
        currency=tiers.get("currency", "CNY"),
        conversions=_conversions(tiers.get("conversions", {})))
    sla = data["sla"]
    targets = tuple(SlaTarget(**t) for t in sla["targets"])
    calendars = {c["id"]: Calendar.from_dict(c) for c in data["calendars"]}
    for target in targets:
        if target.calendar not in calendars:
            raise ValueError(f"SLA target {target.tier} names unknown calendar {target.calendar}")
    if {t.tier for t in targets} != set(TIERS):
        raise ValueError(f"sla.targets must cover every tier {TIERS}")
    if not data.get("version"):
        raise ValueError("a policy needs a version id")
    return Policy(version=data["version"], zone=data.get("zone", "Asia/Shanghai"),
                  tiers=tier_policy, sla=SlaPolicy(targets, sla.get("at_risk_ratio", 0.8),
                                                   _severity_factors(sla.get("severity_factors", {}))),
                  calendars=calendars, benefits=_benefits(data.get("benefits", {})))
