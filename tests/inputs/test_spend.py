"""Spend files: every supported export read into daily rows, and every rejection
naming file, row and column."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from demo.exports import write_google_ads_export
from demo.world import default_world
from inputs.spend import MAX_LISTED_PROBLEMS, SpendError, SpendFile, read_spend

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "spend"
D2, D3, D4 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
REELS, RETARGETING = "120210987654320001", "120210987654320002"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def essentials(spend: SpendFile) -> list[tuple]:
    """What a report uses from each row, without lineage."""
    return [(r.date, r.platform, r.campaign_id, r.campaign_name, r.currency, r.spend, r.hour,
             r.impressions, r.reach, r.clicks, r.engagements) for r in spend.rows]


# --- Google Ads ---------------------------------------------------------------------


def test_google_ads_ui_export_skips_titles_and_totals():
    path = FIXTURES / "google_ads_ui.csv"
    spend = read_spend(path)
    assert spend.format == "google_ads_ui" and spend.path == path
    assert spend.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert spend.currency == "USD"
    assert [(r.date, r.campaign_id, r.spend) for r in spend.rows] == [
        (D2, "20311877401", Decimal("412.37")),
        (D2, "20311877402", Decimal("1234.56")),
        (D3, "20311877401", Decimal("398.05")),
        (D3, "20311877402", Decimal("1187.90")),
        (D4, "20311877401", Decimal("0.00")),
        (D4, "20311877402", Decimal("1302.11")),
    ]
    first, video = spend.rows[0], spend.rows[1]
    assert first.platform == "google_ads" and first.campaign_name == "Brewly | Spring Search"
    assert first.channel == "Search" and first.brand is None and first.account_timezone is None
    assert (first.impressions, first.clicks, first.engagements, first.reach) == (9804, 611, None, None)
    assert (video.impressions, video.clicks, video.engagements) == (151220, 1402, 3117)
    assert spend.rows[4].impressions == 0  # a real zero stays 0; "--" is None
    # the file's own totals row agrees with what was read
    assert sum(r.spend for r in spend.rows) == Decimal("4534.99")


def test_lineage_names_file_hash_and_physical_line():
    spend = read_spend(FIXTURES / "google_ads_ui.csv")
    assert [r.lineage.row for r in spend.rows] == [4, 5, 6, 7, 8, 9]  # two title lines + header
    assert {r.lineage.file for r in spend.rows} == {"google_ads_ui.csv"}
    assert {r.lineage.sha256 for r in spend.rows} == {spend.sha256}


def test_lineage_counts_blank_lines_and_multiline_cells(tmp_path):
    path = write(tmp_path, "spend.csv",
                 "date,campaign_name,currency,spend\n"
                 "\n"
                 '2026-03-02,"Brewly\nSpring",USD,10\n'
                 "2026-03-03,Brewly,USD,11\n")
    assert [r.lineage.row for r in read_spend(path).rows] == [3, 5]


def test_demo_export_round_trips_to_the_cent(tmp_path):
    world = default_world(datetime(2026, 3, 1, tzinfo=UTC))
    (campaign,) = world.campaigns
    path = write_google_ads_export(tmp_path / "google-ads-campaign-report.csv", world)
    spend = read_spend(path)
    assert spend.format == "google_ads_ui" and spend.currency == campaign.currency
    truth = world.daily_spend(campaign)
    assert [r.date for r in spend.rows] == list(truth) == campaign.flight_days()
    for row in spend.rows:
        assert row.spend == Decimal(f"{truth[row.date]:.2f}")
        assert row.campaign_id == campaign.campaign_id and row.campaign_name == campaign.name
        assert row.platform == "google_ads" and row.impressions > 10_000
    assert spend.daily_totals(campaign.campaign_id) == {d: Decimal(f"{v:.2f}") for d, v in truth.items()}
    with path.open(newline="", encoding="utf-8") as handle:
        body = list(csv.reader(handle))[3:-2]
    assert [r.engagements is None for r in spend.rows] == [cells[7] == "--" for cells in body]
    assert any(r.engagements is None for r in spend.rows)


def test_google_ads_excel_export_utf16_tab_separated(tmp_path):
    """Google Ads' "Excel CSV" download: UTF-16 with a BOM, tab-separated."""
    with (FIXTURES / "google_ads_ui.csv").open(newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t", lineterminator="\r\n").writerows(records)
    path = tmp_path / "excel.csv"
    path.write_bytes(buffer.getvalue().encode("utf-16"))
    assert essentials(read_spend(path)) == essentials(read_spend(FIXTURES / "google_ads_ui.csv"))


def test_google_ads_api_divides_cost_micros():
    spend = read_spend(FIXTURES / "google_ads_api.csv")
    assert spend.format == "google_ads_api"
    assert [r.spend for r in spend.rows] == [Decimal("412.37"), Decimal("1234.561234"), Decimal("398.05"),
                                              Decimal("1187.9"), Decimal(0)]
    assert {r.account_timezone for r in spend.rows} == {"America/New_York"}
    assert spend.rows[0].engagements is None and spend.rows[1].engagements == 3117
    assert [r.lineage.row for r in spend.rows] == [2, 3, 4, 5, 6]


def test_google_ads_rest_json_stream():
    spend = read_spend(FIXTURES / "google_ads_api_stream.json")
    assert spend.format == "google_ads_api" and spend.currency == "EUR"
    assert essentials(spend) == [
        (D2, "google_ads", "18800231", "Beanhaus | Kaffeepause", "EUR", Decimal("98.765"), None,
         20345, None, 120, 0),
        (D3, "google_ads", "18800231", "Beanhaus | Kaffeepause", "EUR", Decimal("101.2305"), None,
         19870, None, 98, None),
    ]
    assert {(r.channel, r.account_timezone) for r in spend.rows} == {("DISPLAY", "Europe/Berlin")}
    assert [r.lineage.row for r in spend.rows] == [4, 26]  # the line each result object opens on


def test_weekly_google_ads_export_is_rejected_with_a_hint(tmp_path):
    path = write(tmp_path, "weekly.csv",
                 "Campaign report\nWeek,Campaign,Currency code,Cost\n"
                 '2026-03-02,Brewly,USD,"1,000.00"\n')
    with pytest.raises(SpendError) as caught:
        read_spend(path)
    message = str(caught.value)
    assert "weekly.csv, row 2, column 'date'" in message
    assert "missing required column date" in message and "'Day'" in message
    assert "the header has: 'Week', 'Campaign', 'Currency code', 'Cost'" in message
    assert "spend must be daily" in message


# --- Meta ---------------------------------------------------------------------------

META_ROWS = [
    (D2, "meta", REELS, "Brewly — Bright Mornings (Reels)", "USD", Decimal("1402.50"), None,
     210334, 118220, 2811, 7905),
    (D2, "meta", RETARGETING, "Brewly | Retargeting", "USD", Decimal("310.25"), None,
     41870, 30112, 502, 1044),
    (D3, "meta", REELS, "Brewly — Bright Mornings (Reels)", "USD", Decimal("1377.12"), None,
     204918, 114006, 2702, 7611),
    (D3, "meta", RETARGETING, "Brewly | Retargeting", "USD", Decimal("298.00"), None,
     40205, 29870, None, 998),
]


def test_meta_ads_manager_currency_from_header_and_summary_row_skipped():
    spend = read_spend(FIXTURES / "meta_ads_manager.csv")
    assert spend.format == "meta_ads_manager" and spend.currency == "USD"
    assert essentials(spend) == META_ROWS
    assert [r.lineage.row for r in spend.rows] == [3, 4, 5, 6]  # row 2, the summary, is skipped
    assert all(r.account_timezone is None and r.channel is None for r in spend.rows)


@pytest.mark.parametrize("name", ["meta_insights_api.csv", "meta_insights_api.json",
                                  "meta_insights_api.jsonl"])
def test_meta_insights_api_in_every_container(name):
    spend = read_spend(FIXTURES / name)
    assert spend.format == "meta_insights_api"
    assert essentials(spend) == META_ROWS  # Decimal("1402.5") == Decimal("1402.50")
    expected_rows = {"meta_insights_api.csv": [2, 3, 4, 5], "meta_insights_api.jsonl": [1, 2, 3, 4],
                     "meta_insights_api.json": [3, 18, 33, 48]}[name]
    assert [r.lineage.row for r in spend.rows] == expected_rows


def test_meta_insights_single_row_per_line_pages(tmp_path):
    """JSON Lines where each line is a saved API page."""
    pages = [{"data": [row], "paging": {}} for row in
             json.loads((FIXTURES / "meta_insights_api.json").read_text(encoding="utf-8"))["data"]]
    path = write(tmp_path, "pages.jsonl", "\n".join(json.dumps(p) for p in pages) + "\n")
    spend = read_spend(path)
    assert essentials(spend) == META_ROWS and [r.lineage.row for r in spend.rows] == [1, 2, 3, 4]


# --- canonical ----------------------------------------------------------------------


def test_canonical_file():
    spend = read_spend(FIXTURES / "canonical.csv")
    assert spend.format == "canonical"
    assert [r.platform for r in spend.rows] == ["google_ads", "meta", "tiktok"] * 2
    search, reels, tiktok = spend.rows[:3]
    assert (search.brand, search.channel, search.account_timezone) == ("Brewly", "search", "America/New_York")
    assert (search.reach, search.engagements) == (None, None)  # blank means unknown, not 0
    assert reels.spend == Decimal("1402.50") and reels.engagements == 7905
    assert (tiktok.impressions, tiktok.reach, tiktok.clicks, tiktok.engagements) == (None,) * 4
    assert (spend.rows[5].impressions, spend.rows[5].spend) == (0, Decimal(0))
    assert spend.daily_totals() == {D2: Decimal("2064.87"), D3: Decimal("1775.17")}


def test_daily_metric_keeps_unknown_apart_from_zero():
    spend = read_spend(FIXTURES / "google_ads_ui.csv")
    assert spend.daily_metric("engagements", "20311877402") == {D2: 3117, D3: 2980, D4: None}
    assert spend.daily_metric("engagements") == {D2: None, D3: None, D4: None}  # Search has none
    assert spend.daily_metric("clicks") == {D2: 611 + 1402, D3: 587 + 1355, D4: 1498}
    with pytest.raises(ValueError, match="not a platform metric"):
        spend.daily_metric("spend")


def test_canonical_hourly_with_title_case_headers():
    spend = read_spend(FIXTURES / "canonical_hourly.csv")
    assert [r.hour for r in spend.rows] == [0, 1, 2, 23]
    assert spend.daily_totals(REELS) == {D2: Decimal("87.47")}


def test_options_fill_what_the_file_lacks(tmp_path):
    path = write(tmp_path, "minimal.csv", "Day,Campaign,Cost\n2026-03-02,Brewly,\"1,000\"\n")
    with pytest.raises(SpendError, match=r"minimal.csv, row 1, column 'currency': missing required column"):
        read_spend(path)
    spend = read_spend(path, currency="usd", account_timezone="Europe/London")
    (row,) = spend.rows
    assert (row.currency, row.account_timezone, row.spend) == ("USD", "Europe/London", Decimal(1000))
    assert row.campaign_id is None and row.campaign == "Brewly"
    canonical = write(tmp_path, "canonical.csv", "date;campaign_id;currency;spend\n2026-03-02;1;EUR;5.5\n")
    assert read_spend(canonical).rows[0].platform == "unknown"
    assert read_spend(canonical, platform="Google Ads").rows[0].platform == "google_ads"


def test_identical_duplicates_merge_into_the_first(tmp_path):
    line = "2026-03-02,meta,1,Reels,USD,10.00\n"
    path = write(tmp_path, "dup.csv", "date,platform,campaign_id,campaign_name,currency,spend\n" + line * 3
                 + "2026-03-03,meta,1,Reels,USD,10.00\n")
    spend = read_spend(path)
    assert [(r.date, r.lineage.row) for r in spend.rows] == [(D2, 2), (date(2026, 3, 3), 5)]


def test_header_only_file_has_no_rows(tmp_path):
    spend = read_spend(write(tmp_path, "empty.csv", "date,campaign_id,currency,spend\n"))
    assert spend.rows == [] and spend.currency is None


def test_quoted_and_plain_thousands_agree(tmp_path):
    path = write(tmp_path, "n.csv", 'date,campaign_id,currency,spend,impressions\n'
                 '2026-03-02,a,USD,"1,234.56","1,000,000"\n2026-03-02,b,USD,1234.56,1000000\n')
    a, b = read_spend(path).rows
    assert a.spend == b.spend == Decimal("1234.56") and a.impressions == b.impressions == 1_000_000


# --- rejections: every message names file, row and column ---------------------------

CANON = "date,platform,campaign_id,campaign_name,currency,spend,impressions,hour,account_timezone\n"
GOOGLE = 'Campaign report\n"March 2, 2026 - March 3, 2026"\nDay,Campaign,Campaign ID,Currency code,Cost,Impr.\n'
META = '"Reporting starts","Reporting ends","Campaign name","Campaign ID","Amount spent (USD)","Impressions"\n'
INSIGHTS = "date_start,date_stop,campaign_id,campaign_name,spend,account_currency\n"
API = "segments.date,campaign.id,customer.currency_code,metrics.cost_micros\n"

REJECTIONS = [
    ("negative spend", CANON + "2026-03-02,meta,1,A,USD,-5.00,,,\n", 2, "spend", "negative spend -5.00"),
    ("accounting negative", GOOGLE + '2026-03-02,A,1,USD,(12.00),"1,000"\n', 4, "Cost", "negative spend"),
    ("meta multi-day", META + '"2026-03-02","2026-03-08","A","1","7,000.00","1,000"\n', 2,
     "Reporting ends", "multi-day row"),
    ("insights multi-day", INSIGHTS + "2026-03-02,2026-03-03,1,A,10,USD\n", 2, "date_stop", "multi-day row"),
    ("date range in a cell", CANON + "2026-03-01 - 2026-03-07,meta,1,A,USD,5,,,\n", 2, "date",
     "multi-day row: the date is a range"),
    ("mixed currencies", CANON + "2026-03-02,meta,1,A,USD,5,,,\n2026-03-03,meta,1,A,EUR,5,,,\n", 3,
     "currency", "mixed currencies: EUR here, USD from row 2"),
    ("currency column against header", META.replace('"Impressions"', '"Impressions","Currency"')
     + '"2026-03-02","2026-03-02","A","1","10.00","1","EUR"\n', 2, "Currency",
     "mixed currencies: EUR here, USD in the spend header 'Amount spent (USD)'"),
    ("conflicting duplicate", CANON + "2026-03-02,meta,1,A,USD,5,,,\n2026-03-02,Facebook,1,A,USD,6,,,\n", 3,
     "spend", "conflicting duplicate of row 2 (2026-03-02, meta, campaign 1): spend 6 here, 5 there"),
    ("duplicate differing in a metric", CANON + "2026-03-02,meta,1,A,USD,5,10,,\n2026-03-02,meta,1,A,USD,5,11,,\n",
     3, "impressions", "conflicting duplicate of row 2"),
    ("conflicting hourly duplicate", CANON + "2026-03-02,meta,1,A,USD,5,,3,\n2026-03-02,meta,1,A,USD,7,,3,\n", 3,
     "spend", "2026-03-02 hour 3"),
    ("daily and hourly mixed", CANON + "2026-03-02,meta,1,A,USD,5,,,\n2026-03-02,meta,1,A,USD,1,,4,\n", 3,
     "hour", "either daily or hourly"),
    ("unparseable date", CANON + "yesterday,meta,1,A,USD,5,,,\n", 2, "date", "not a date: 'yesterday'"),
    ("ambiguous date", CANON + "03/02/2026,meta,1,A,USD,5,,,\n", 2, "date", "ambiguous date '03/02/2026'"),
    ("impossible date", CANON + "2026-02-30,meta,1,A,USD,5,,,\n", 2, "date", "not a date"),
    ("empty date", CANON + ",meta,1,A,USD,5,,,\n", 2, "date", "date is empty"),
    ("unparseable number", CANON + "2026-03-02,meta,1,A,USD,$5,,,\n", 2, "spend", "not a number: '$5'"),
    ("decimal comma", CANON + '2026-03-02,meta,1,A,USD,"1.234,56",,,\n', 2, "spend",
     "ambiguous number '1.234,56'"),
    ("short decimal comma", CANON + '2026-03-02,meta,1,A,USD,"12,5",,,\n', 2, "spend", "decimal comma"),
    ("empty spend", CANON + "2026-03-02,meta,1,A,USD,,,,\n", 2, "spend", "spend is empty"),
    ("unquoted thousands", GOOGLE + "2026-03-02,A,1,USD,1,234.56,900\n", 4, "(field 7)",
     "the row has 7 fields but the header has 6"),
    ("fractional micros", API + "2026-03-02,1,USD,12.5\n", 2, "metrics.cost_micros", "whole number of micros"),
    ("negative micros", API + "2026-03-02,1,USD,-1000000\n", 2, "metrics.cost_micros", "negative spend -1"),
    ("fractional count", CANON + "2026-03-02,meta,1,A,USD,5,10.5,,\n", 2, "impressions", "whole count"),
    ("negative count", CANON + "2026-03-02,meta,1,A,USD,5,-3,,\n", 2, "impressions", "cannot be negative"),
    ("hour out of range", CANON + "2026-03-02,meta,1,A,USD,5,,24,\n", 2, "hour", "not an hour of the day"),
    ("unknown time zone", CANON + "2026-03-02,meta,1,A,USD,5,,,Mars/Olympus\n", 2, "account_timezone",
     "unknown time zone 'Mars/Olympus'"),
    ("bad currency code", CANON + "2026-03-02,meta,1,A,US$,5,,,\n", 2, "currency", "not an ISO 4217"),
    ("empty currency", CANON + "2026-03-02,meta,1,A,,5,,,\n", 2, "currency", "currency is empty"),
    ("no campaign", CANON + "2026-03-02,meta,,,USD,5,,,\n", 2, "campaign_id", "no campaign id or name"),
]


@pytest.mark.parametrize(("text", "row", "column", "fragment"),
                         [case[1:] for case in REJECTIONS], ids=[case[0] for case in REJECTIONS])
def test_rejections_name_file_row_and_column(tmp_path, text, row, column, fragment):
    path = write(tmp_path, "export.csv", text)
    with pytest.raises(SpendError) as caught:
        read_spend(path)
    message = str(caught.value)
    assert f"export.csv, row {row}, column {column!r}: " in message, message
    assert fragment in message, message
    problem = caught.value.problems[0]
    assert (problem.file, problem.row, problem.column) == ("export.csv", row, column)


def test_currency_option_conflicting_with_the_file(tmp_path):
    path = write(tmp_path, "g.csv", GOOGLE + '2026-03-02,A,1,EUR,10.00,"1,000"\n')
    with pytest.raises(SpendError, match=r"g.csv, row 4, column 'Currency code': mixed currencies: "
                                         r"EUR here, USD in the currency given"):
        read_spend(path, currency="USD")


def test_missing_columns_name_what_is_missing_and_what_the_header_had(tmp_path):
    path = write(tmp_path, "meta.csv", '"Reporting starts","Campaign name","Impressions"\n"2026-03-02","A","1"\n')
    with pytest.raises(SpendError) as caught:
        read_spend(path)
    message = str(caught.value)
    for column in ("date_end", "spend", "currency"):
        assert f"meta.csv, row 1, column '{column}': missing required column {column}" in message
    assert "'Reporting ends'" in message and "'Amount spent'" in message
    assert "the header has: 'Reporting starts', 'Campaign name', 'Impressions'" in message
    assert len(caught.value.problems) == 3


def test_unrecognised_file_is_rejected(tmp_path):
    path = write(tmp_path, "notes.csv", "\nhello,world\n1,2\n")
    with pytest.raises(SpendError, match=r"notes.csv, row 2: no spend header found .*'hello,world'"):
        read_spend(path)
    with pytest.raises(SpendError, match=r"blank.csv: the file is empty"):
        read_spend(write(tmp_path, "blank.csv", "\n\n"))


def test_invalid_json_names_the_line(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"date_start": "2026-03-02"}\n{"date_start": }\n')
    with pytest.raises(SpendError, match=r"bad.jsonl, row 2: not valid JSON"):
        read_spend(path)


def test_non_utf8_file_is_rejected(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("date,campaign_name,currency,spend\n2026-03-02,Caf\xe9,EUR,1\n".encode("latin-1"))
    with pytest.raises(SpendError, match=r"latin.csv, row 2: not UTF-8 text"):
        read_spend(path)


def test_all_problems_reported_at_once_and_capped(tmp_path):
    rows = "".join(f"2026-03-{day:02d},meta,{day},A,USD,-{day},,,\n" for day in range(1, 26))
    path = write(tmp_path, "many.csv", CANON + rows + "2026-04-01,meta,x,A,USD,oops,,25,\n")
    with pytest.raises(SpendError) as caught:
        read_spend(path)
    error = caught.value
    assert len(error.problems) == 27  # 25 negatives, then one row with two problems
    message = str(error)
    assert message.startswith("spend file many.csv: 27 problems")
    assert message.count("negative spend") == MAX_LISTED_PROBLEMS
    assert message.rstrip().endswith(f"... and {27 - MAX_LISTED_PROBLEMS} more")
    assert [p.row for p in error.problems[:3]] == [2, 3, 4]
    assert {(p.row, p.column) for p in error.problems[-2:]} == {(27, "spend"), (27, "hour")}


def test_the_simulators_spend_is_written_by_the_demos_export_writer(tmp_path):
    """One Google Ads export writer: the ROI simulator's world writes its spend file with
    the demo's writer, byte for byte in its layout (CRLF lines, title, range, header,
    totals), and it reads back as the simulator's spend, to the cent, with its unknown
    engagements kept unknown."""
    import math

    from analysis.roi.simulate import simulate
    from demo.exports import AdsDay, google_ads_csv

    sim = simulate("effect", 0)
    path = write_google_ads_export(tmp_path / "sim.csv", sim.world)
    spend = read_spend(path)
    assert spend.format == "google_ads_ui"
    assert [r.date for r in spend.rows] == list(sim.spend.dates)
    for row, cost, eng in zip(spend.rows, sim.spend.spend, sim.spend.engagements):
        assert row.spend == Decimal(f"{cost:.2f}")
        assert row.engagements == (None if math.isnan(eng) else int(eng))
    # the layout is google_ads_csv's: rebuild the file from its parsed rows
    rebuilt = google_ads_csv(AdsDay(r.date, r.campaign_name, r.campaign_id, r.currency, float(r.spend),
                                    r.impressions, r.clicks, r.engagements) for r in spend.rows)
    assert path.read_bytes() == rebuilt.encode("utf-8")
