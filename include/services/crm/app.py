"""The HTTP API, shaped like HubSpot's CRM v3 objects API.

API (bearer token, rate limited per token, subject to chaos):

- ``GET /crm/v3/objects/{contacts|companies}?limit=&after=&archived=&properties=&associations=``
  — by ascending id; ``archived=true`` lists archived (deleted or merged) records.
  ``updatedAfter`` (ms or ISO) is an addition of ours: it keeps the archived listing
  incremental (HubSpot offers webhooks for that instead).
- ``POST /crm/v3/objects/{type}/search`` — ``filterGroups`` on ``lastmodifieddate``
  (companies: ``hs_lastmodifieddate``) with GT/GTE/LT/LTE/EQ/BETWEEN, sorted ascending;
  ``limit`` ≤ 200; ``paging.next.after`` is an opaque cursor; at most 10,000 results per
  query (then a 400, as in HubSpot). Archived records are never in search results, as in HubSpot.
- ``GET /crm/v3/objects/{type}/{id}``.

Every API answer carries ``X-RateLimit-Max/-Remaining/-Interval-Milliseconds`` (and the
``X-HubSpot-RateLimit-*`` names); over the limit: 429, ``Retry-After`` and a body that
names the policy.

Admin (the admin token): ``GET|POST /_chaos``, ``POST /_simulate/advance``,
``POST /_reset``, ``POST /_tokens`` (a token of its own, i.e. a rate-limit bucket of its
own, optionally with a limit of its own, for a test or a bench), ``GET /_stats``. ``GET /health`` is open.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from crm.chaos import Chaos, ChaosSettings
from crm.limits import POLICY_NAME, RateLimiter, Verdict
from crm.settings import Settings
from crm.store import LAST_MODIFIED, BadRequest, CrmStore, Interval, iso, parse_time

DEFAULT_TOKEN_NAME = "crm_api"  # the token the devstack's crm_api connection carries
STORM_POLICY = "CHAOS_STORM"
SEARCH_MAX_LIMIT, LIST_MAX_LIMIT = 200, 100  # HubSpot's limits

ObjectType = Literal["contacts", "companies"]


@dataclass
class TokenStats:
    requests: int = 0
    rate_limited: int = 0
    storm_429: int = 0
    errors_5xx: int = 0


@dataclass
class CrmState:
    settings: Settings
    store: CrmStore
    limiter: RateLimiter
    chaos: Chaos = field(default_factory=Chaos)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> name
    stats: dict[str, TokenStats] = field(default_factory=lambda: defaultdict(TokenStats))

    def token_name(self, authorization: str | None) -> str | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        for known, name in self.tokens.items():
            if secrets.compare_digest(known, token):
                return name
        return None


def build_state(settings: Settings) -> CrmState:
    return CrmState(
        settings=settings,
        store=CrmStore(settings.seed, settings.customers, settings.epoch_ms),
        limiter=RateLimiter(settings.rate_limit_max, settings.rate_limit_interval_ms),
        tokens={settings.api_token: DEFAULT_TOKEN_NAME},
    )


def _error(status: int, category: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"status": "error", "category": category, "message": message, **extra},
                        status_code=status, headers=headers)


def build_app(settings: Settings | None = None) -> FastAPI:
    """The app; ``settings`` None reads them from the environment at start-up (uvicorn)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not hasattr(app.state, "crm"):
            app.state.crm = build_state(settings or Settings.from_env())
        yield

    app = FastAPI(title="FlowGate CRM simulator", lifespan=lifespan, docs_url=None, redoc_url=None)
    if settings is not None:
        app.state.crm = build_state(settings)

    def crm(request: Request) -> CrmState:
        return request.app.state.crm

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()][:5]
        return _error(400, "VALIDATION_ERROR", "; ".join(problems))

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return _error(400, "VALIDATION_ERROR", str(exc))

    @app.middleware("http")
    async def gatekeeper(request: Request, call_next):
        """Auth, then a storm, the rate limit, latency and 5xx, in the order a gateway applies them."""
        if not request.url.path.startswith("/crm/"):
            return await call_next(request)
        state: CrmState = request.app.state.crm
        name = state.token_name(request.headers.get("authorization"))
        if name is None:
            return _error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
        stats = state.stats[name]
        stats.requests += 1
        limits = state.limiter
        if state.chaos.in_storm():
            stats.storm_429 += 1
            state.chaos.served.storm_429 += 1
            retry_after = state.chaos.settings.storm_retry_after_s
            max_requests, interval_ms = limits.limit_of(name)
            verdict = Verdict(False, max_requests, 0, interval_ms, retry_after)
            return _error(429, "RATE_LIMITS", "429 storm (a chaos drill): retry later.", verdict.headers(),
                          errorType="RATE_LIMIT", policyName=STORM_POLICY)
        verdict = limits.check(name)
        if not verdict.allowed:
            stats.rate_limited += 1
            return _error(429, "RATE_LIMITS", f"You have reached your {POLICY_NAME.lower()} limit.",
                          verdict.headers(), errorType="RATE_LIMIT", policyName=POLICY_NAME,
                          groupName=f"publicapi:token:{name}")
        if delay := state.chaos.delay_s():
            await asyncio.sleep(delay)
        if status := state.chaos.error_status():
            stats.errors_5xx += 1
            return _error(status, "INTERNAL_ERROR", "internal error (a chaos drill)", verdict.headers())
        response = await call_next(request)
        response.headers.update(verdict.headers())
        return response

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # --- the API ---------------------------------------------------------------------------

    @app.get("/crm/v3/objects/{object_type}")
    async def list_objects(
        object_type: ObjectType,
        state: CrmState = Depends(crm),
        limit: int = Query(10, ge=1, le=LIST_MAX_LIMIT),
        after: str | None = None,
        archived: bool = False,
        properties: str | None = None,
        associations: str | None = None,
        updatedAfter: str | None = None,  # noqa: N803 - HubSpot's camelCase parameters
    ) -> dict:
        since = parse_time(updatedAfter) if updatedAfter else None
        try:
            page, next_after = state.store.listing(object_type, archived, after, limit, since)
        except ValueError as err:
            raise BadRequest(f"after: {err}") from err
        props = [p for p in (properties or "").split(",") if p]
        with_assoc = "companies" in (associations or "").split(",")
        body: dict = {"results": [r.to_api(props, with_assoc) for r in page]}
        if next_after:
            body["paging"] = {"next": {"after": next_after}}
        return body

    @app.get("/crm/v3/objects/{object_type}/{record_id}")
    async def get_object(object_type: ObjectType, record_id: int, archived: bool = False,
                         state: CrmState = Depends(crm)) -> dict:
        record = state.store.get(object_type, record_id)
        if record is None or record.archived != archived:
            return _error(404, "OBJECT_NOT_FOUND", f"{object_type} {record_id} not found")
        return record.to_api(with_associations=True)

    @app.post("/crm/v3/objects/{object_type}/search")
    async def search(object_type: ObjectType, request: SearchRequest, state: CrmState = Depends(crm)) -> dict:
        groups = [_interval(object_type, g) for g in request.filterGroups]
        for sort in request.sorts:
            if (sort.propertyName, sort.direction) != (LAST_MODIFIED[object_type], "ASCENDING"):
                raise BadRequest(f"sorts: only {LAST_MODIFIED[object_type]} ASCENDING is supported")
        try:
            page, total, next_after = state.store.search(object_type, groups, request.after or None, request.limit)
        except (ValueError, UnicodeDecodeError) as err:
            raise BadRequest("after: not a cursor this API returned") from err
        body: dict = {"total": total, "results": [r.to_api(request.properties) for r in page]}
        if next_after:
            body["paging"] = {"next": {"after": next_after}}
        return body

    # --- admin -------------------------------------------------------------------------------

    def admin(request: Request, authorization: str | None = Header(None)) -> CrmState:
        state: CrmState = request.app.state.crm
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token, state.settings.admin_token):
            raise HTTPException(401, "admin token required")
        return state

    @app.get("/_chaos")
    async def show_chaos(state: CrmState = Depends(admin)) -> dict:
        return state.chaos.show()

    @app.post("/_chaos")
    async def set_chaos(settings: ChaosSettings, state: CrmState = Depends(admin)) -> dict:
        state.chaos.configure(settings)
        return state.chaos.show()

    @app.post("/_simulate/advance")
    async def advance(changes: AdvanceRequest, state: CrmState = Depends(admin)) -> dict:
        return state.store.advance(**changes.model_dump())

    @app.post("/_reset")
    async def reset(request: ResetRequest, state: CrmState = Depends(admin)) -> dict:
        """A fresh dataset (same seed: the same records), no chaos, empty windows and counters."""
        s = state.settings
        state.store = CrmStore(request.seed if request.seed is not None else s.seed,
                               request.customers if request.customers is not None else s.customers, s.epoch_ms)
        state.chaos.configure(ChaosSettings())
        state.limiter.reset()
        state.stats.clear()
        return _stats(state)

    @app.post("/_tokens")
    async def mint_token(request: TokenRequest, state: CrmState = Depends(admin)) -> dict:
        """A token with a rate-limit bucket of its own (a name minted again gets a new token)."""
        for token, name in list(state.tokens.items()):
            if name == request.name and name != DEFAULT_TOKEN_NAME:
                del state.tokens[token]
        token = secrets.token_urlsafe(24)
        state.tokens[token] = request.name
        if request.rate_limit_max is not None:
            state.limiter.set_limit(request.name, request.rate_limit_max,
                                    request.rate_limit_interval_ms or state.settings.rate_limit_interval_ms)
        max_requests, interval_ms = state.limiter.limit_of(request.name)
        return {"name": request.name, "token": token,
                "rate_limit": {"max": max_requests, "interval_ms": interval_ms}}

    @app.get("/_stats")
    async def stats(state: CrmState = Depends(admin)) -> dict:
        return _stats(state)

    return app


def _stats(state: CrmState) -> dict:
    store = state.store
    return {"seed": store.seed, "step": store.step, "clock": iso(store.clock), "records": store.counts(),
            "tokens": {name: asdict(s) for name, s in state.stats.items()}}


# --- request bodies ---------------------------------------------------------------------------

class Filter(BaseModel):
    propertyName: str  # noqa: N815 - HubSpot's field names
    operator: str
    value: str | int | None = None
    highValue: str | int | None = None  # noqa: N815


class FilterGroup(BaseModel):
    filters: list[Filter] = Field(default_factory=list, max_length=6)


class Sort(BaseModel):
    propertyName: str  # noqa: N815
    direction: Literal["ASCENDING", "DESCENDING"] = "ASCENDING"


class SearchRequest(BaseModel):
    filterGroups: list[FilterGroup] = Field(default_factory=list, max_length=5)  # noqa: N815
    sorts: list[Sort] = Field(default_factory=list)
    properties: list[str] = Field(default_factory=list)
    limit: int = Field(10, ge=1, le=SEARCH_MAX_LIMIT)
    after: str | None = None


class AdvanceRequest(BaseModel):
    seconds: float = Field(60, gt=0)
    creates: int = Field(0, ge=0)
    updates: int = Field(0, ge=0)
    company_updates: int = Field(0, ge=0)
    merges: int = Field(0, ge=0)
    deletions: int = Field(0, ge=0)
    company_deletions: int = Field(0, ge=0)
    late_updates: int = Field(0, ge=0)
    late_by_seconds: float = Field(600, gt=0)


class ResetRequest(BaseModel):
    seed: int | None = None
    customers: int | None = Field(None, ge=0, le=1_000_000)


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w.-]+$")
    rate_limit_max: int | None = Field(None, ge=1)          # default: the API's own limit
    rate_limit_interval_ms: int | None = Field(None, ge=100)


def _interval(object_type: str, group: FilterGroup) -> Interval:
    """One filter group as updatedAt bounds (filters in a group are ANDed)."""
    prop = LAST_MODIFIED[object_type]
    bounds = Interval()
    for f in group.filters:
        if f.propertyName != prop:
            raise BadRequest(f"filters: only {prop} can be filtered on")
        if f.value is None:
            raise BadRequest(f"filters: {f.operator} needs a value")
        t = parse_time(f.value)
        if f.operator == "GTE":
            bounds.lo = max(bounds.lo, t)
        elif f.operator == "GT":
            bounds.lo = max(bounds.lo, t + 1)
        elif f.operator == "LT":
            bounds.hi = min(bounds.hi, t)
        elif f.operator == "LTE":
            bounds.hi = min(bounds.hi, t + 1)
        elif f.operator == "EQ":
            bounds.lo, bounds.hi = max(bounds.lo, t), min(bounds.hi, t + 1)
        elif f.operator == "BETWEEN" and f.highValue is not None:
            bounds.lo, bounds.hi = max(bounds.lo, t), min(bounds.hi, parse_time(f.highValue) + 1)
        else:
            raise BadRequest(f"filters: operator {f.operator} is not supported on {prop}")
    return bounds


app = build_app()
