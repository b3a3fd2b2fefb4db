"""The demo generator (no store): deterministic, plausible, consistent trails, anomalies where the manifest says."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher

from demo.area import distance_m
from demo.columns import to_secs
from demo.events import ALWAYS, ESC_SLOTS, SLOTS
from demo.generator import EVENT_TABLES, STATIC_TABLES, generate, month_chunks
from demo.org import DEMO_PASSWORD
from demo.seed import load_geography
from domain.deadlines import DEFAULT_HOURS, Stage
from domain.event_flow import TRANSITIONS, Action, replay
from domain.safety_code import CADENCE_DAYS
from domain.vocabulary import OPEN_STATUSES, EventStatus, SafetyCode, Urgency, VenueCategory
from geo.generate import DEMO_TOWNSHIP_CODE
from geo.lookup import GridIndex

END = datetime(2026, 11, 21, 18, 30)
PHONE = r"^1[3-9]\d{9}$"


@pytest.fixture(scope="module")
def units():
    return load_geography(1)


@pytest.fixture(scope="module")
def tiny(units):
    data = generate(units, "tiny", 1, END, demo_township=DEMO_TOWNSHIP_CODE)
    return data, data.all_events()


def digest(data, events) -> str:
    h = hashlib.sha256()
    for name in STATIC_TABLES:
        h.update(pd.util.hash_pandas_object(data.tables[name], index=False).to_numpy().tobytes())
    for name in EVENT_TABLES:
        h.update(pd.util.hash_pandas_object(events[name], index=False).to_numpy().tobytes())
    return h.hexdigest()


def test_the_same_seed_and_end_give_identical_frames(units, tiny):
    data, events = tiny
    again = generate(units, "tiny", 1, END, demo_township=DEMO_TOWNSHIP_CODE)
    for name in STATIC_TABLES:
        pd.testing.assert_frame_equal(data.tables[name], again.tables[name])
    for name, frame in again.all_events().items():
        pd.testing.assert_frame_equal(events[name], frame)
    assert again.manifest == data.manifest


def test_the_frames_do_not_depend_on_python_hash_randomisation(tiny):
    data, events = tiny
    code = (
        "import sys; sys.path.insert(0, '.');"
        "from tests.unit.test_demo_generator import digest, END;"
        "from demo.generator import generate; from demo.seed import load_geography;"
        "from geo.generate import DEMO_TOWNSHIP_CODE as D;"
        "d = generate(load_geography(1), 'tiny', 1, END, demo_township=D); print(digest(d, d.all_events()))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == digest(data, events)


def test_another_seed_gives_other_data(units, tiny):
    data, _ = tiny
    other = generate(units, "tiny", 2, END, demo_township=DEMO_TOWNSHIP_CODE)
    assert not data.tables["venues"]["lon"].equals(other.tables["venues"]["lon"])


def test_tiny_holds_the_demo_town_only_with_about_a_thousand_venues_and_a_few_thousand_events(tiny):
    data, events = tiny
    grid_ids = set(data.area.grids["id"])
    assert set(data.area.grids["township_code"]) == {DEMO_TOWNSHIP_CODE}
    assert len(grid_ids) == 125
    assert 950 <= len(data.tables["venues"]) <= 1050
    assert 2_000 <= len(events["events"]) <= 4_000
    assert set(events["events"]["grid_id"]) <= grid_ids
    assert set(data.tables["venues"]["grid_id"]) <= grid_ids


def test_venue_categories_and_safety_codes_follow_the_mix(tiny):
    venues = tiny[0].tables["venues"]
    cats = venues["category"].value_counts(normalize=True)
    common = cats[[VenueCategory.STREET_SHOP, VenueCategory.RENTAL_HOUSING, VenueCategory.GENERAL_FIRM]].sum()
    assert common > 0.7
    assert cats.get(VenueCategory.HAZCHEM, 0) < 0.02
    assert set(cats.index) == {c.value for c in VenueCategory}
    codes = venues["safety_code"].value_counts(normalize=True)
    assert 0.02 < codes[SafetyCode.RED] < 0.09
    assert 0.12 < codes[SafetyCode.YELLOW] < 0.30
    # Riskier categories are red more often than shops.
    red = venues.assign(red=venues["safety_code"] == "red").groupby("category")["red"].mean()
    assert (
        red[VenueCategory.CONSTRUCTION_SITE] + red[VenueCategory.KEY_SECURITY]
        > red[VenueCategory.STREET_SHOP]
    )


def test_citizen_reports_and_grid_worker_patrols_dominate_the_sources(tiny):
    sources = tiny[1]["events"]["source"].value_counts(normalize=True)
    assert set(sources.index[:2]) == {"citizen", "grid_worker"} or sources.index[0] == "citizen"
    assert sources[["citizen", "grid_worker"]].sum() > 0.5
    assert len(sources) == 8


def test_ratings_are_mostly_satisfied_and_a_few_unsatisfied_ones_reopen(tiny):
    events, trail = tiny[1]["events"], tiny[1]["event_transitions"]
    rated = events["rating"].dropna().value_counts(normalize=True)
    assert rated["satisfied"] > 0.75
    assert rated.get("unsatisfied", 0) < 0.08
    reopened_after_rating = trail[(trail["action"] == "reopen") & (trail["from_status"] == "rated")]
    assert len(reopened_after_rating) > 0


def test_every_trail_replays_to_its_event_status_in_time_order(tiny):
    events, trail = tiny[1]["events"], tiny[1]["event_transitions"]
    trail = trail.sort_values(["event_id", "seq"])
    assert set(trail["event_id"]) == set(events["id"])
    per_event = trail.groupby("event_id").agg(actions=("action", list), seqs=("seq", list), n=("seq", "size"))
    status = events.set_index("id")["status"]
    for event_id, actions, seqs, n in per_event.itertuples():
        assert seqs == list(range(1, n + 1))
        assert replay(Action(a) for a in actions) == status[event_id]
    # Times strictly increase within each trail.
    same_event = trail["event_id"].eq(trail["event_id"].shift())
    assert (trail["at"].diff()[same_event] > pd.Timedelta(0)).all()
    # Each row's from/to status is the table's move from the previous row's status.
    for before, action, after in set(
        zip(trail["from_status"], trail["action"], trail["to_status"], strict=True)
    ):
        assert (
            TRANSITIONS[(EventStatus(before) if isinstance(before, str) else None, Action(action))] == after
        )


def test_any_combination_of_optional_steps_is_a_legal_path():
    optional = [i for i in range(len(SLOTS)) if i not in ALWAYS and i != 1]
    groups = [[3], [3, 4], [6, 7], [9, 10, 11], [13, 14], [16], [16, 17, 18, 19, 20]]
    assert set(itertools.chain(*groups)) == set(optional)
    for r in range(len(groups) + 1):
        for combo in itertools.combinations(groups, r):
            chosen = sorted(set(ALWAYS) | set(itertools.chain(*combo)))
            if 9 in chosen and 4 in chosen:
                continue  # never escalated past the county
            actions = [SLOTS[i] for i in chosen]
            for k in range(1, len(actions) + 1):  # a trail cut at ``end`` is a prefix
                replay(actions[:k])
    replay([SLOTS[i] for i in (0, 1, 21)])


def test_event_columns_agree_with_the_trail(tiny):
    events, trail = tiny[1]["events"], tiny[1]["event_transitions"]
    t = trail.sort_values(["event_id", "seq"])
    last = t.groupby("event_id").last()
    e = events.set_index("id").loc[last.index]
    assert (e["updated_at"] == last["at"]).all()
    assert (e["status"] == last["to_status"]).all()
    assert (e["owner_unit_id"] == last["unit_id"]).all()

    def last_at(action):
        return t[t["action"] == action].groupby("event_id")["at"].max().reindex(e.index)

    for column, action in (
        ("accepted_at", "accept"),
        ("dispatched_at", "dispatch"),
        ("resolved_at", "resolve"),
        ("closed_at", "archive"),
    ):
        pd.testing.assert_series_equal(e[column], last_at(action), check_names=False)
    esc = t[t["action"] == "escalate"].groupby("event_id").size().reindex(e.index, fill_value=0)
    assert (e["escalations"] == esc).all()
    lead = (
        t[(t["action"] == "dispatch") & t["department_id"].notna()]
        .groupby("event_id")["department_id"]
        .last()
    )
    pd.testing.assert_series_equal(
        e["lead_department_id"], lead.reindex(e.index).astype("Int64"), check_names=False
    )
    # due_at is the current stage's deadline (domain.deadlines); overdue: open past it, or handled late.
    end = pd.Timestamp(END)
    hours = pd.to_timedelta(e["urgency"].map(lambda u: DEFAULT_HOURS[Stage.HANDLE][Urgency(u)]), unit="h")
    open_ = e["status"].isin([s.value for s in OPEN_STATUSES])
    assert (e.loc[open_, "is_overdue"] == (e.loc[open_, "due_at"] < end)).all()
    moving = e["status"].isin(["dispatched", "in_progress"])
    assert (e.loc[moving, "due_at"] == e.loc[moving, "dispatched_at"] + hours[moving]).all()
    solved = e["status"].isin(["verified", "rated", "archived"]) & e["resolved_at"].notna()
    late = e.loc[solved, "resolved_at"] > e.loc[solved, "dispatched_at"] + hours[solved]
    assert (e.loc[solved, "is_overdue"] == late).all()
    assert (e.loc[solved, "due_at"] == e.loc[solved, "dispatched_at"] + hours[solved]).all()
    waiting = e["status"] == "resolved"
    verify = pd.to_timedelta(e["urgency"].map(lambda u: DEFAULT_HOURS[Stage.VERIFY][Urgency(u)]), unit="h")
    assert (e.loc[waiting, "due_at"] == e.loc[waiting, "resolved_at"] + verify[waiting]).all()


def test_nothing_happens_after_the_end_and_statuses_follow_age(tiny):
    events, trail = tiny[1]["events"], tiny[1]["event_transitions"]
    end = pd.Timestamp(END)
    assert trail["at"].max() <= end and events["reported_at"].max() <= end
    old = events[events["reported_at"] < end - pd.Timedelta(days=30)]
    assert (old["status"] == "archived").mean() > 0.9
    recent = events[events["reported_at"] > end - pd.Timedelta(hours=24)]
    assert recent["status"].isin([s.value for s in OPEN_STATUSES]).mean() > 0.5
    assert recent["status"].nunique() >= 3
    assert 0.02 < events["is_overdue"].mean() < 0.2
    assert (events["reported_at"].dt.date == END.date()).any()  # the home page has today's events


def test_events_follow_daily_and_weekly_cycles(tiny):
    events = tiny[1]["events"]
    hours = events["reported_at"].dt.hour.value_counts(normalize=True)
    assert hours.reindex(range(1, 5), fill_value=0).sum() < 0.05
    assert hours.reindex(range(9, 12)).sum() > 0.15
    per_day = events.groupby(events["reported_at"].dt.date).size()
    weekday = pd.Series(pd.to_datetime(per_day.index).day_of_week, index=per_day.index)
    assert per_day[weekday < 5].mean() > per_day[weekday >= 5].mean()


def test_some_events_are_rejected_returned_escalated_merged_and_shared(tiny):
    events, trail = tiny[1]["events"], tiny[1]["event_transitions"]
    actions = trail["action"].value_counts()
    for action in ("reject", "return", "escalate", "reopen"):
        assert actions.get(action, 0) > 0, action
    assert (events["reporter_count"] > 1).sum() > 5
    merged = events[events["merged_into_id"].notna()]
    target = events.set_index("id").loc[merged["merged_into_id"].astype(int)]
    assert (target["category"].to_numpy() == merged["category"].to_numpy()).all()
    assert len(tiny[1]["event_cooperators"]) > 0
    assert events["reporter_phone"].dropna().str.match(PHONE).all()


def test_venues_and_events_lie_in_their_grids(tiny):
    data, events = tiny
    grids = data.area.grids.assign(geometry=data.area.polygons)
    index = GridIndex(
        pd.DataFrame(grids[["code", "geometry"]]).pipe(
            lambda d: __import__("geopandas").GeoDataFrame(d, crs=4326)
        )
    )
    code_of = dict(zip(data.area.grids["id"], data.area.grids["code"], strict=True))
    for frame in (data.tables["venues"], events["events"]):
        found = index.locate_many(frame["lon"].to_numpy(), frame["lat"].to_numpy())
        assert (found == frame["grid_id"].map(code_of).to_numpy()).all()


def test_inspections_follow_the_cadence_and_set_the_next_due_date(tiny):
    data, _ = tiny
    venues, ins = data.tables["venues"].set_index("id"), data.tables["inspections"]
    last = ins.groupby("venue_id")["inspected_at"].max().dt.normalize()
    assert (venues.loc[last.index, "last_inspected_on"] == last).all()
    cadence = venues["safety_code"].map({c.value: d for c, d in CADENCE_DAYS.items()})
    assert (venues["next_due_on"] == venues["last_inspected_on"] + pd.to_timedelta(cadence, unit="D")).all()
    assert ins["inspected_at"].min() <= pd.Timestamp(END) - pd.Timedelta(days=90)
    gaps = ins.sort_values("inspected_at").groupby("venue_id")["inspected_at"].diff().dt.days.dropna()
    red = ins["venue_id"].map(venues["safety_code"]).eq("red").loc[gaps.index]
    assert gaps[red].median() == 1
    assert (gaps[~red] > 7).any()  # yellow/green venues, some visits late
    assert (venues["next_due_on"] < pd.Timestamp(END).normalize()).any()  # overdue visits exist


def test_hazards_come_from_failed_inspections_most_rectified_some_overdue(tiny):
    data, _ = tiny
    hz, ins = data.tables["hazards"], data.tables["inspections"].set_index("id")
    assert (ins.loc[hz["inspection_id"], "result"] == "fail").all()
    assert ((hz["status"] == "rectified") == hz["rectified_on"].notna()).all()
    assert (hz["deadline"] >= hz["found_on"]).all()
    assert (hz["rectified_on"].dropna() >= hz.loc[hz["rectified_on"].notna(), "found_on"]).all()
    assert (hz["status"] == "rectified").mean() > 0.6
    open_ = hz[hz["status"] == "open"]
    assert (open_["deadline"] < pd.Timestamp(END)).any()
    assert set(hz["severity"]) == {"major", "general"}


def test_every_venue_has_its_code_history_ending_at_its_current_code(tiny):
    data, _ = tiny
    changes = data.tables["safety_code_changes"].sort_values(["venue_id", "changed_at"])
    first = changes.drop_duplicates("venue_id", keep="first").set_index("venue_id")
    last = changes.drop_duplicates("venue_id", keep="last").set_index("venue_id")
    venues = data.tables["venues"].set_index("id")
    assert len(first) == len(venues)
    assert first["from_code"].isna().all() and first["reason"].str.startswith("首次赋码").all()
    assert (last["to_code"] == venues.loc[last.index, "safety_code"]).all()
    assert (changes.groupby("venue_id").size() > 1).any()


def test_the_demo_accounts_exist_with_their_roles_scopes_and_password(tiny):
    data, _ = tiny
    users = data.tables["users"].set_index("username")
    units = data.area.units
    demo = users.loc[
        ["demo_admin", "demo_city", "demo_county", "demo_township", "demo_department", "demo_inspector"]
    ]
    assert demo["role"].tolist() == [
        "admin",
        "command_center",
        "command_center",
        "township_leader",
        "department",
        "inspector",
    ]
    assert demo.at["demo_county", "scope_unit_id"] == units.at["330802", "id"]
    assert demo.at["demo_township", "scope_unit_id"] == units.at[DEMO_TOWNSHIP_CODE, "id"]
    dept = data.tables["departments"].set_index("id").loc[int(demo.at["demo_department", "department_id"])]
    assert dept["kind"] == "城管" and dept["unit_id"] == units.at["330802", "id"]
    town_dept = users.loc["demo_township_department"]
    assert town_dept["role"] == "department"
    assert town_dept["scope_unit_id"] == units.at[DEMO_TOWNSHIP_CODE, "id"]
    assert (
        data.tables["departments"].set_index("id").at[int(town_dept["department_id"]), "unit_id"]
        == (units.at[DEMO_TOWNSHIP_CODE, "id"])
    )
    assert demo["password_hash"].nunique() == 1
    PasswordHasher().verify(demo["password_hash"].iloc[0], DEMO_PASSWORD)
    inspector = int(demo.at["demo_inspector", "id"])
    assert (data.tables["inspector_grids"]["user_id"] == inspector).any()
    assert (data.tables["venues"]["inspector_id"] == inspector).sum() > 10
    assert users["phone"].dropna().str.match(PHONE).all()
    assert users["password_hash"].notna().sum() == 7  # the six demo roles and the demo township department


def test_every_data_grid_has_an_inspector_and_departments_serve_their_unit(tiny):
    data, _ = tiny
    covered = set(data.tables["inspector_grids"]["grid_id"])
    assert covered == set(data.area.grids["id"])
    deps = data.tables["departments"]
    levels = deps["unit_id"].map(data.area.units.set_index("id")["level"])
    assert set(levels) == {"county", "township"}
    assert deps.groupby("unit_id")["kind"].apply(lambda k: k.is_unique).all()


def _count_near(events, entry, category, t0, t1, radius):
    e = events[
        (events["category"] == category) & (events["reported_at"] >= t0) & (events["reported_at"] <= t1)
    ]
    return int((distance_m(entry["lon"], entry["lat"], e["lon"], e["lat"]) <= radius).sum())


def test_the_injected_anomalies_are_in_the_data_where_the_manifest_says(tiny):
    data, events = tiny[0], tiny[1]["events"]
    entries = {e["kind_en"]: e for e in data.manifest["anomalies"]}
    assert {"spike", "mass", "emerging", "chronic", "high_frequency"} <= set(entries)
    grid_code = dict(zip(data.area.grids["id"], data.area.grids["code"], strict=True))
    code = events["grid_id"].map(grid_code)

    spike = entries["spike"]
    t0, t1 = pd.Timestamp(spike["start"]), pd.Timestamp(spike["end"])
    in_grid = events[code == spike["unit_codes"][0]]
    during = ((in_grid["category"] == spike["category"]) & in_grid["reported_at"].between(t0, t1)).sum()
    assert during >= spike["expected_extra"]
    assert during >= 4 * max(spike["baseline_per_day"] * 2, 1)

    mass = entries["mass"]
    main = events[events["id"] == mass["event_id"]].iloc[0]
    assert main["reporter_count"] >= 20
    t0, t1 = pd.Timestamp(mass["start"]), pd.Timestamp(mass["end"])
    assert t1 - t0 <= pd.Timedelta(hours=3)
    assert _count_near(events, mass, mass["category"], t0, t1, 50) >= 20
    assert (events["merged_into_id"] == mass["event_id"]).sum() == mass["merged_reports"]

    new = entries["emerging"]
    town = events[code.str.startswith(new["unit_codes"][0])]
    of_cat = town[town["category"] == new["category"]]
    assert (of_cat["reported_at"] >= pd.Timestamp(new["start"])).all()  # never seen before
    assert len(of_cat) >= new["expected_extra"]
    first_week = (of_cat["reported_at"] < pd.Timestamp(new["start"]) + pd.Timedelta(days=7)).sum()
    assert len(of_cat) - first_week > 2 * first_week  # it grows

    for chronic in (e for e in data.manifest["anomalies"] if e["kind_en"] == "chronic"):
        same_place = (events["lon"] == chronic["lon"]) & (events["lat"] == chronic["lat"])
        assert (same_place & (events["title"] == chronic["title"])).sum() >= chronic["expected_extra"]

    hot = entries["high_frequency"]
    village = code.str[:12]
    urban = events[events["category"] == hot["category"]].assign(village=village)
    per_village = urban.groupby("village").size()
    assert per_village.idxmax() == hot["unit_codes"][0]


def test_month_chunks_cover_the_period_once():
    start, end = to_secs(datetime(2025, 11, 21, 18)), to_secs(datetime(2026, 11, 21, 18))
    chunks = month_chunks(start, end)
    assert chunks[0][0] == start and chunks[-1][1] == end + 1
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    assert len(chunks) == 13


def test_an_end_in_the_middle_of_a_step_cuts_trails_without_breaking_them(units):
    end = END - timedelta(hours=7, minutes=13)
    data = generate(units, "tiny", 3, end, demo_township=DEMO_TOWNSHIP_CODE)
    ev = data.all_events()
    assert ev["event_transitions"]["at"].max() <= pd.Timestamp(end)
    assert (ev["events"]["updated_at"] <= pd.Timestamp(end)).all()
    assert np.isin(ev["events"]["status"], [s.value for s in EventStatus]).all()
    assert ESC_SLOTS == [3, 4, 9]
