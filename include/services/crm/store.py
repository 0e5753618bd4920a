"""The CRM's records: contacts and companies on a simulated clock, seeded and changed
deterministically.

Time in the CRM is a simulated clock (ms since the epoch) that starts at ``epoch_ms``
and moves only when ``advance`` is called: a seed plus the same sequence of advances
gives the same records, timestamps included, on every machine.

``advance`` applies what a real CRM sees between two extracts: new contacts, updates,
merges (HubSpot keeps the winner and lists the loser's id in ``hs_merged_object_ids``;
the loser is archived with ``mergedInto``, an addition of ours: HubSpot just stops
returning it), deletions (archived, listed by ``?archived=true``) and *late* updates —
changes whose ``updatedAt`` is already behind the newest record when they first become
visible, as HubSpot's search index lags its writes. Only an extract with a lookback
window catches those.

Live records are kept sorted by (updatedAt, id), so a search page is a bisect, and its
``after`` cursor is that key: a record updated while a client pages moves *behind* the
cursor, to be read again, and nothing the client has not read yet moves in front of it
(HubSpot's own ``after`` is an opaque offset, where that can skip a record). As in
HubSpot, one search query pages through at most 10,000 results.
"""

from __future__ import annotations

import base64
import bisect
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from flowgate.customer360.customers import company, company_count, customer

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
CONTACTS, COMPANIES = "contacts", "companies"
OBJECT_TYPES = (CONTACTS, COMPANIES)
# HubSpot's property holding the last-modified time differs by object type.
LAST_MODIFIED = {CONTACTS: "lastmodifieddate", COMPANIES: "hs_lastmodifieddate"}
FIRST_ID = {CONTACTS: 1001, COMPANIES: 5_000_001}
SEARCH_RESULT_CAP = 10_000  # HubSpot's search returns at most 10,000 results per query
SEEDED_HISTORY_MS = 365 * 86_400_000  # seeded records were created in the year before the epoch
JOB_TITLES = ("Analyst", "Engineer", "Manager", "Director", "Founder", "Consultant")


class BadRequest(ValueError):
    """A request the CRM refuses with 400 (HubSpot's VALIDATION_ERROR)."""


def iso(ms: int) -> str:
    """HubSpot's timestamp format: ISO 8601, UTC, milliseconds, ``Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_time(value: str | int) -> int:
    """A filter value or a query parameter: ms since the epoch, or an ISO 8601 time."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise BadRequest(f"{text!r} is neither ms since the epoch nor an ISO 8601 time") from err
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return (parsed - EPOCH) // timedelta(milliseconds=1)  # integers: no float rounding


def encode_cursor(updated_at: int, record_id: int, returned: int) -> str:
    """The last key a page returned, and how many results the query has returned so far."""
    return base64.urlsafe_b64encode(f"{updated_at}:{record_id}:{returned}".encode()).decode().rstrip("=")


def decode_cursor(after: str) -> tuple[tuple[int, int], int]:
    text = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()
    updated_at, record_id, returned = text.split(":")
    return (int(updated_at), int(record_id)), int(returned)


@dataclass
class Record:
    object_type: str
    id: int
    properties: dict[str, str]
    created_at: int
    updated_at: int
    company_ids: list[int] = field(default_factory=list)  # contacts: their associated companies
    archived_at: int | None = None
    merged_into: int | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def touch(self, at: int) -> None:
        self.updated_at = at
        self.properties[LAST_MODIFIED[self.object_type]] = iso(at)

    def to_api(self, properties: list[str] | None = None, with_associations: bool = False) -> dict:
        props = self.properties
        if properties:
            keep = {*properties, "hs_object_id", "createdate", LAST_MODIFIED[self.object_type]}
            props = {k: v for k, v in props.items() if k in keep}
        body = {
            "id": str(self.id), "properties": dict(props),
            "createdAt": iso(self.created_at), "updatedAt": iso(self.updated_at), "archived": self.archived,
        }
        if self.archived:
            body["archivedAt"] = iso(self.archived_at)
        if self.merged_into is not None:
            body["mergedInto"] = str(self.merged_into)
        if with_associations and self.object_type == CONTACTS:
            body["associations"] = {"companies": {"results": [
                {"id": str(cid), "type": "contact_to_company"} for cid in self.company_ids]}}
        return body


@dataclass
class Interval:
    """updatedAt bounds of one filter group: lo <= t < hi."""
    lo: int = -(2**62)
    hi: int = 2**62


class CrmStore:
    def __init__(self, seed: int, customers: int, epoch_ms: int) -> None:
        self.seed = seed
        self.clock = epoch_ms
        self.step = 0
        self.records: dict[str, dict[int, Record]] = {t: {} for t in OBJECT_TYPES}
        self._by_updated: dict[str, list[tuple[int, int]]] = {t: [] for t in OBJECT_TYPES}
        self._live_ids: dict[str, list[int]] = {t: [] for t in OBJECT_TYPES}
        self._archived_ids: dict[str, list[int]] = {t: [] for t in OBJECT_TYPES}
        self._companies = company_count(customers)
        self._next_customer = customers
        self._seed_records(customers)

    # --- seeding ---------------------------------------------------------------------

    def _seed_records(self, customers: int) -> None:
        rng = random.Random(f"{self.seed}:seed-times")
        for index in range(self._companies):
            created = self.clock - rng.randrange(1, SEEDED_HISTORY_MS)
            self._add(self._company_record(index, created, rng.randrange(created, self.clock)))
        for index in range(customers):
            created = self.clock - rng.randrange(1, SEEDED_HISTORY_MS)
            self._add(self._contact_record(index, created, rng.randrange(created, self.clock)))

    def _company_record(self, index: int, created: int, updated: int) -> Record:
        c = company(self.seed, index)
        record_id = FIRST_ID[COMPANIES] + index
        props = {"name": c.name, "domain": c.domain, "industry": c.industry, "country": c.country,
                 "hs_object_id": str(record_id), "createdate": iso(created)}
        record = Record(COMPANIES, record_id, props, created, updated)
        record.touch(updated)
        return record

    def _contact_record(self, index: int, created: int, updated: int) -> Record:
        c = customer(self.seed, index, self._companies)
        record_id = FIRST_ID[CONTACTS] + index
        company_id = FIRST_ID[COMPANIES] + c.company_index
        props = {
            "email": c.email, "firstname": c.first_name, "lastname": c.last_name, "phone": c.phone,
            "company": self.records[COMPANIES][company_id].properties["name"],
            "lifecyclestage": c.lifecycle_stage, "hs_object_id": str(record_id), "createdate": iso(created),
        }
        record = Record(CONTACTS, record_id, props, created, updated, company_ids=[company_id])
        record.touch(updated)
        return record

    def _add(self, record: Record) -> None:
        self.records[record.object_type][record.id] = record
        bisect.insort(self._by_updated[record.object_type], (record.updated_at, record.id))
        bisect.insort(self._live_ids[record.object_type], record.id)

    # --- reading -----------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        return {t: {"live": len(self._live_ids[t]), "archived": len(self._archived_ids[t])} for t in OBJECT_TYPES}

    def search(self, object_type: str, groups: list[Interval], after: str | None, limit: int,
               cap: int = SEARCH_RESULT_CAP) -> tuple[list[Record], int, str | None]:
        """Live records whose updatedAt is in any group, ascending by (updatedAt, id).

        Returns (page, total matching, cursor of the next page or None). As in HubSpot, one
        query pages through at most ``cap`` results: a client with more narrows its filter
        (GTE the last updatedAt it saw) and starts a new query."""
        keys = self._by_updated[object_type]
        groups = groups or [Interval()]
        last_key, returned = decode_cursor(after) if after else ((-1, -1), 0)
        if returned >= cap:
            raise BadRequest(f"search pages through at most {cap:,} results; narrow the filter")
        limit = min(limit, cap - returned)
        start = bisect.bisect_right(keys, last_key) if after else 0
        page: list[Record] = []
        next_after = None
        for i in range(max(start, min(bisect.bisect_left(keys, (g.lo, -1)) for g in groups)), len(keys)):
            updated_at, record_id = keys[i]
            if updated_at >= max(g.hi for g in groups):
                break
            if any(g.lo <= updated_at < g.hi for g in groups):
                if len(page) == limit:
                    last = page[-1]
                    next_after = encode_cursor(last.updated_at, last.id, returned + len(page))
                    break
                page.append(self.records[object_type][record_id])
        total = sum(bisect.bisect_left(keys, (g.hi, -1)) - bisect.bisect_left(keys, (g.lo, -1)) for g in groups)
        return page, total, next_after

    def listing(self, object_type: str, archived: bool, after: str | None, limit: int,
                updated_after: int | None = None) -> tuple[list[Record], str | None]:
        """Records by ascending id (HubSpot's list endpoint); ``after`` is the next id."""
        ids = (self._archived_ids if archived else self._live_ids)[object_type]
        start = bisect.bisect_left(ids, int(after)) if after else 0
        page: list[Record] = []
        for i in range(start, len(ids)):
            record = self.records[object_type][ids[i]]
            if updated_after is not None and record.updated_at <= updated_after:
                continue
            if len(page) == limit:
                return page, str(record.id)
            page.append(record)
        return page, None

    def get(self, object_type: str, record_id: int) -> Record | None:
        return self.records[object_type].get(record_id)

    # --- changing ------------------------------------------------------------------------

    def _update_key(self, record: Record, at: int) -> None:
        keys = self._by_updated[record.object_type]
        keys.pop(bisect.bisect_left(keys, (record.updated_at, record.id)))
        record.touch(at)
        bisect.insort(keys, (record.updated_at, record.id))

    def _archive(self, record: Record, at: int, merged_into: int | None = None) -> None:
        keys = self._by_updated[record.object_type]
        keys.pop(bisect.bisect_left(keys, (record.updated_at, record.id)))
        live = self._live_ids[record.object_type]
        live.pop(bisect.bisect_left(live, record.id))
        bisect.insort(self._archived_ids[record.object_type], record.id)
        record.touch(at)
        record.archived_at = at
        record.merged_into = merged_into

    def _pick_live(self, candidates: list[int], object_type: str, exclude: set[int]) -> Record | None:
        """The next live record of a shuffled draw not yet changed in this advance (None: none left)."""
        while candidates:
            record = self.records[object_type][candidates.pop()]
            if record.id not in exclude and not record.archived:
                return record
        return None

    def advance(self, seconds: float = 60, creates: int = 0, updates: int = 0, company_updates: int = 0,
                merges: int = 0, deletions: int = 0, company_deletions: int = 0, late_updates: int = 0,
                late_by_seconds: float = 600) -> dict:
        """Move the clock ``seconds`` ahead and apply the given changes within that span.

        The k-th advance of a seed with the same arguments makes the same changes. A record
        changes at most once per advance (updates, merges and deletions pick distinct ones)."""
        if seconds <= 0 or late_by_seconds <= 0:
            raise BadRequest("seconds and late_by_seconds must be positive")
        self.step += 1
        rng = random.Random(f"{self.seed}:advance:{self.step}")
        start, span = self.clock, int(seconds * 1000)
        total = creates + updates + company_updates + merges + deletions + company_deletions
        moments = iter(start + (span * (i + 1)) // (total + 1) for i in range(total))
        touched: set[int] = set()
        # One shuffled draw per object type: as many changes as there are records, each
        # record at most once, in an order the seed and step fix.
        draw = {t: self._live_ids[t][:] for t in OBJECT_TYPES}
        for ids in draw.values():
            rng.shuffle(ids)
        done: dict[str, list] = {"created": [], "updated": [], "company_updated": [], "merged": [],
                                 "deleted": [], "company_deleted": [], "late_updated": []}

        for _ in range(creates):
            at = next(moments)
            record = self._contact_record(self._next_customer, at, at)
            live_companies = self._live_ids[COMPANIES]
            if self.records[COMPANIES][record.company_ids[0]].archived and live_companies:
                # The generator's pick was deleted meanwhile: a new contact joins a live company.
                record.company_ids = [live_companies[rng.randrange(len(live_companies))]]
                record.properties["company"] = self.records[COMPANIES][record.company_ids[0]].properties["name"]
            self._next_customer += 1
            self._add(record)
            touched.add(record.id)
            done["created"].append(str(record.id))
        for _ in range(updates):
            at = next(moments)
            if (record := self._pick_live(draw[CONTACTS], CONTACTS, touched)) is None:
                break
            self._change_contact(rng, record)
            self._update_key(record, at)
            touched.add(record.id)
            done["updated"].append(str(record.id))
        for _ in range(company_updates):
            at = next(moments)
            if (record := self._pick_live(draw[COMPANIES], COMPANIES, touched)) is None:
                break
            record.properties["industry"] = rng.choice(("BANKING", "RETAIL", "SOFTWARE", "INSURANCE"))
            self._update_key(record, at)
            touched.add(record.id)
            done["company_updated"].append(str(record.id))
        for _ in range(merges):
            at = next(moments)
            winner = self._pick_live(draw[CONTACTS], CONTACTS, touched)
            loser = self._pick_live(draw[CONTACTS], CONTACTS, touched | ({winner.id} if winner else set()))
            if winner is None or loser is None:
                break
            merged = [m for m in winner.properties.get("hs_merged_object_ids", "").split(";") if m]
            winner.properties["hs_merged_object_ids"] = ";".join([*merged, str(loser.id)])
            if not winner.properties.get("phone"):
                winner.properties["phone"] = loser.properties.get("phone", "")
            self._update_key(winner, at)
            self._archive(loser, at, merged_into=winner.id)
            touched |= {winner.id, loser.id}
            done["merged"].append({"winner": str(winner.id), "loser": str(loser.id)})
        for kind, object_type, count in (("deleted", CONTACTS, deletions), ("company_deleted", COMPANIES, company_deletions)):
            for _ in range(count):
                at = next(moments)
                if (record := self._pick_live(draw[object_type], object_type, touched)) is None:
                    break
                self._archive(record, at)
                touched.add(record.id)
                done[kind].append(str(record.id))

        self.clock = start + span
        # Late updates last: they carry a time behind the clock, as if the index showed them late.
        late_at = self.clock - int(late_by_seconds * 1000)
        for i in range(late_updates):
            if (record := self._pick_live(draw[CONTACTS], CONTACTS, touched)) is None:
                break
            self._change_contact(rng, record)
            self._update_key(record, late_at + i)
            touched.add(record.id)
            done["late_updated"].append(str(record.id))
        return {"step": self.step, "clock": iso(self.clock), **done}

    def _change_contact(self, rng: random.Random, record: Record) -> None:
        """One field edited, as people do in a CRM."""
        field_name = rng.choice(("lifecyclestage", "jobtitle", "phone", "lastname"))
        props = record.properties
        if field_name == "lifecyclestage":
            props["lifecyclestage"] = rng.choice(("lead", "marketingqualifiedlead", "opportunity", "customer"))
        elif field_name == "jobtitle":
            props["jobtitle"] = rng.choice(JOB_TITLES)
        elif field_name == "phone":
            props["phone"] = f"+1-202-555-01{rng.randrange(100):02d}"
        else:
            props["lastname"] = props["lastname"] + "-" + rng.choice(("Smith", "Meyer", "Okafor"))

    def iter_all(self, object_type: str) -> Iterator[Record]:
        yield from self.records[object_type].values()
