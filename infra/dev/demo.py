"""``vip demo``: a realistic year, run through the real command path.

Members register through CRM, place and refund orders, log in and attend
VIP events; those who qualify apply, are reviewed, sign the VIP service
agreement and pay their fee; partners run cooperation contracts with
milestones, monthly invoices, payments and revenue share; members complain
through every channel and agents answer, some of them late. Everything goes
through :func:`infra.service_layer.upstream.apply_input` or the engine's ``run``, in time
order, so timers (reviews, SLA breaches, due dates) fire exactly as live.
The same seed gives the same year.
"""
from __future__ import annotations

import heapq
import random
from datetime import datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

from domain.base import DomainError
from domain.terms import PLATFORM
from infra.progress import bar as progress_bar
from infra.service_layer.upstream import Input, apply_input

ZONE = ZoneInfo("Asia/Shanghai")
PARTNERS = [("P-SVC-1", 7000), ("P-SVC-2", 6000), ("P-SVC-3", 8000)]  # platform share, bp


class Year:
    """A time-ordered agenda of actions; actions may schedule follow-ups."""

    def __init__(self, system, seed: int, year: int) -> None:
        self.system, self.app, self.engine = system, system.app, system.engine
        self.rng = random.Random(seed)
        self.start = datetime(year, 1, 1, tzinfo=ZONE)
        self.end = datetime(year, 12, 31, 23, 59, tzinfo=ZONE)
        self.agenda: list = []
        self.seq = count()
        self.refused = 0

    def at(self, when: datetime, action, *args) -> None:
        if when <= self.end:
            heapq.heappush(self.agenda, (when, next(self.seq), action, args))

    def upstream(self, when: datetime, source: str, type_: str, member_id: str, **fields) -> None:
        self.at(when, self._input, Input(source, type_, f"{type_}-{next(self.seq)}", member_id, when, fields))

    def _input(self, when: datetime, item: Input) -> None:
        apply_input(self.engine, item)

    def op(self, when: datetime, actor: str, action) -> None:
        self.at(when, self._op, actor, action)

    def _op(self, when: datetime, actor: str, action) -> None:
        self.engine.run(when, action, actor=actor)

    def run(self, progress: bool) -> None:
        bar = progress_bar(len(self.agenda), "demo year", progress, unit="step")
        done = 0
        while self.agenda:
            when, _, action, args = heapq.heappop(self.agenda)
            try:
                action(when, *args)
            except DomainError:
                self.refused += 1  # e.g. a refund for more than was paid: refused, as live
            done += 1
            if done % 2000 == 0:
                self.engine.flush()
            bar.total = done + len(self.agenda)
            bar.update(1)
        bar.close()
        self.engine.advance(self.end)

    def moment(self, day: float) -> datetime:
        """A time on day ``day`` of the year, in waking hours."""
        base = self.start + timedelta(days=int(day))
        return base + timedelta(hours=self.rng.uniform(8, 23))


def plan_members(y: Year, members: int) -> None:
    rng = y.rng
    for n in range(members):
        mid = f"M{n:05d}"
        joined = rng.uniform(0, 330) if rng.random() < 0.5 else rng.uniform(0, 30)
        y.upstream(y.moment(joined), "crm", "CustomerRegistered", mid,
                   profile={"name": f"会员{n}", "phone": f"138{n:08d}", "email": f"m{n}@example.cn"})
        # Spend is heavy-tailed: most members stay below silver, a few reach diamond.
        budget = rng.lognormvariate(7.7, 1.3) * 100  # fen over the year
        orders = max(1, int(rng.lognormvariate(1.6, 0.7)))
        for k in range(orders):
            day = rng.uniform(joined, 364)
            amount = max(100, int(budget / orders * rng.uniform(0.5, 1.5)))
            when = y.moment(day)
            oid = f"{mid}-O{k}"
            y.upstream(when, "orders", "OrderPaid", mid, order_id=oid, amount_fen=amount, currency="CNY")
            if rng.random() < 0.08:
                refund = amount if rng.random() < 0.5 else amount // 3
                y.upstream(when + timedelta(days=rng.uniform(1, 20)), "orders", "OrderRefunded", mid,
                           order_id=oid, amount_fen=refund, currency="CNY")
        for _ in range(int(rng.expovariate(1 / 6))):
            kind = rng.choices(["login", "vip_event", "review"], [8, 1, 2])[0]
            y.upstream(y.moment(rng.uniform(joined, 364)), "crm", "ActivityRecorded", mid, kind=kind)


def _vip_round(y: Year):
    """Monthly: qualified members without VIP standing apply; most are approved and pay."""
    def round_(when: datetime) -> None:
        for row in list(y.system.store.view("current_tier").values()):
            if row["tier"] == "member" or row["status"] not in ("none",):
                continue
            if y.rng.random() < 0.7:
                mid = row["member_id"]
                y.op(when + timedelta(hours=y.rng.uniform(0, 48)), "customer",
                     lambda u, c, mid=mid: u.apply_for_vip(c, mid))
                _plan_review(y, mid, when + timedelta(days=y.rng.uniform(2, 4)))
    return round_


def _plan_review(y: Year, mid: str, when: datetime) -> None:
    rng = y.rng
    y.op(when, "reviewer-1", lambda u, c: u.start_vip_review(c, mid))
    decide = when + timedelta(hours=rng.uniform(2, 30))
    if rng.random() < 0.1:
        y.op(decide, "reviewer-1", lambda u, c: u.reject_vip(c, mid, "materials incomplete"))
        return
    y.op(decide, "reviewer-1", lambda u, c: u.approve_vip(c, mid))
    agreement = f"VA-{mid}"
    sign = decide + timedelta(days=rng.uniform(0.5, 3))

    def draft_and_sign(u, c):
        member = u.member(mid)
        terms = {"parties": [{"id": PLATFORM, "role": "company"}, {"id": mid, "role": "customer"}],
                 "member_id": mid, "validity_months": 12, "payment_terms_days": 7,
                 "fee_schedule": [{"tier": member.effective_tier,
                                   "annual_fee_fen": u.policy.tiers.fee_for(member.effective_tier)}],
                 "sla_targets": member.effective_tier, "notice_channels": ["phone", "email"],
                 "confidentiality_years": 3,
                 "revenue_share": {PLATFORM: 10000}}
        u.draft_contract(c, agreement, "member_agreement", terms)
        u.sign_contract(c, agreement, mid)
        u.sign_contract(c, agreement, PLATFORM)
        fee = member.fee_due_fen
        if fee:
            u.issue_invoice(c, agreement, "FEE-1", mid, fee, "CNY", "membership_fee")
    y.op(sign, "agent-onboarding", draft_and_sign)
    pay = sign + timedelta(days=rng.uniform(0.1, 10))

    def settle(u, c):
        contract = u.contract(agreement)
        if "FEE-1" not in contract.invoices:
            return
        if rng.random() < 0.1:
            u.waive_invoice(c, agreement, "FEE-1", "first-year promotion")
        else:
            u.pay_invoice(c, agreement, "FEE-1", contract.outstanding("FEE-1"), "CNY", f"PAY-{mid}")
    y.op(pay, "finance", settle)


def plan_partners(y: Year) -> None:
    rng = y.rng
    for index, (pid, platform_bp) in enumerate(PARTNERS):
        cid = f"COOP-{index + 1}"
        start = y.start + timedelta(days=3 + 20 * index, hours=10)
        terms = {"parties": [{"id": PLATFORM, "role": "A"}, {"id": pid, "role": "B"}],
                 "validity_months": 12, "payment_terms_days": 30,
                 "revenue_share": {PLATFORM: platform_bp, pid: 10000 - platform_bp},
                 "sla_targets": "default", "confidentiality_years": 3, "notice_channels": ["email"],
                 "milestones": [{"id": f"M{m}", "title": t, "due_months": m} for m, t in enumerate(
                     ["客服服务质量提升", "首场VIP用户活动", "扩大新品试用范围", "优化优惠价格政策",
                      "升级个性化推荐系统"], 1)]}
        y.op(start, "legal", lambda u, c, cid=cid, terms=terms: u.draft_contract(c, cid, "cooperation", terms))
        y.op(start + timedelta(days=1), f"{pid}-rep", lambda u, c, cid=cid, pid=pid: u.sign_contract(c, cid, pid))
        y.op(start + timedelta(days=2), "platform-rep", lambda u, c, cid=cid: u.sign_contract(c, cid, PLATFORM))
        for m in range(1, 6):
            if rng.random() < 0.85:
                done = start + timedelta(days=2 + 30 * m + rng.uniform(-12, 8))
                y.op(done, f"{pid}-pm", lambda u, c, cid=cid, m=m: u.complete_milestone(
                    c, cid, f"M{m}"))
        for month in range(1, 12):
            issued = start + timedelta(days=2 + 30 * month)
            amount = rng.randint(5_000_00, 80_000_00) + rng.randint(0, 99)
            inv = f"INV-{month:02d}"
            y.op(issued, "finance", lambda u, c, cid=cid, pid=pid, inv=inv, amount=amount: u.issue_invoice(
                c, cid, inv, pid, amount, "CNY", "service_fee"))
            r = rng.random()
            if r < 0.8:
                paid = issued + timedelta(days=rng.uniform(3, 45))
                y.op(paid, "finance", lambda u, c, cid=cid, inv=inv, amount=amount: u.pay_invoice(
                    c, cid, inv, amount, "CNY", f"P-{cid}-{inv}"))
            elif r < 0.9:
                y.op(issued + timedelta(days=5), "finance", lambda u, c, cid=cid, inv=inv: u.grant_discount(
                    c, cid, inv, 1000_00, "service credit"))
        if index == 2:
            y.op(start + timedelta(days=200), "legal", lambda u, c, cid=cid, pid=pid: u.record_breach(
                c, cid, pid, "milestone 3 missed by over a month", 2000_00, "CNY"))


def plan_complaints(y: Year, members: int) -> None:
    rng = y.rng
    total = max(10, members // 6)
    for n in range(total):
        when = y.moment(rng.uniform(20, 360))
        cid = f"C{n:05d}"
        mid = f"M{rng.randrange(members):05d}"
        channel = rng.choice(["phone", "web", "email", "app"])
        category = rng.choice(["billing", "delivery", "service", "product", "privacy"])
        severity = rng.choices(["low", "medium", "high", "critical"], [4, 4, 2, 1])[0]
        y.op(when, "customer", lambda u, c, cid=cid, mid=mid, ch=channel, cat=category, sev=severity:
             u.file_complaint(c, cid, mid, ch, cat, sev, f"{mid} 的投诉: 订单问题, 联系电话请见档案"))
        late = rng.random() < 0.15
        ack = when + timedelta(minutes=rng.uniform(3, 50) * (8 if late else 1))
        y.op(ack, f"agent-{n % 7}", lambda u, c, cid=cid: u.acknowledge_complaint(c, cid))
        y.op(ack + timedelta(minutes=5), "dispatcher",
             lambda u, c, cid=cid, a=f"agent-{n % 7}": u.assign_complaint(c, cid, a))
        t = ack
        if rng.random() < 0.2:
            t = t + timedelta(hours=rng.uniform(1, 5))
            y.op(t, f"agent-{n % 7}", lambda u, c, cid=cid: u.wait_for_customer(
                c, cid, "need order photos"))
            t = t + timedelta(hours=rng.uniform(2, 72))
            y.op(t, "customer", lambda u, c, cid=cid: u.record_customer_reply(c, cid))
        if rng.random() < 0.05:
            continue  # still open at year end
        resolved = t + timedelta(hours=rng.uniform(0.5, 6) * (12 if late else 1))
        y.op(resolved, f"agent-{n % 7}", lambda u, c, cid=cid: u.resolve_complaint(c, cid, "refund issued"))
        if rng.random() < 0.7:
            score = rng.choices([1, 2, 3, 4, 5], [1, 1, 2, 5, 6] if not late else [4, 3, 2, 1, 1])[0]
            y.op(resolved + timedelta(hours=2), "customer",
                 lambda u, c, cid=cid, s=score: u.rate_complaint(c, cid, s))
        y.op(resolved + timedelta(days=3), "agent-closer", lambda u, c, cid=cid: _close(u, c, cid))


def _close(uow, c, cid: str) -> None:
    if uow.complaint(cid).status == "resolved":
        uow.close_complaint(c, cid)


def prepare_data_dir(settings, reset: bool) -> None:
    """Refuse to mix the demo into real data; with ``reset``, drop an earlier demo's files."""
    data = settings.data_dir
    files = [data / n for n in ("events.db", "read.db", "keys.db")]
    if not any(f.exists() for f in files):
        return
    if not (data / "DEMO").exists():
        raise DomainError(f"{data} holds data that is not from a demo; set VIP_DATA_DIR to an empty "
                          "directory for the demo")
    if not reset:
        raise DomainError(f"{data} holds an earlier demo; add --reset to replace it")
    for f in data.iterdir():
        if f.name.split(".db")[0] in ("events", "read", "keys") or f.name == "DEMO":
            f.unlink()


def run_demo(system, members: int = 2000, seed: int = 7, year: int = 2025, progress: bool = True) -> datetime:
    """Simulate ``year`` with ``members`` members; returns the instant the year ends."""
    y = Year(system, seed, year)
    plan_members(y, members)
    for month in range(1, 13):
        y.at(datetime(year, month, 1, 10, tzinfo=ZONE) + timedelta(days=14), _round_step(y))
    plan_partners(y)
    plan_complaints(y, members)
    y.run(progress)
    return y.end


def _round_step(y: Year):
    round_ = _vip_round(y)

    def step(when: datetime) -> None:
        y.engine.sync()
        round_(when)
    return step
