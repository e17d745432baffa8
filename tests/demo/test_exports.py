"""The files the demo world writes: its Google Ads spend export and the truth file."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timezone

import pytest

from demo.exports import GOOGLE_ADS_HEADER, write_google_ads_export, write_truth
from demo.world import default_world

END = datetime(2026, 11, 21, 15, 30, tzinfo=timezone.utc)


def test_google_ads_export_parses_back(tmp_path):
    world = default_world(END)
    campaign = world.campaigns[0]
    path = write_google_ads_export(tmp_path / "ads.csv", world)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Campaign report"]
    assert rows[1][0].startswith(campaign.flight_start.strftime("%B"))
    assert tuple(rows[2]) == GOOGLE_ADS_HEADER
    body, totals = rows[3:-2], rows[-2:]
    assert [r[0] for r in totals] == ["Total: Account", "Total: Campaigns"]
    spend = world.daily_spend(campaign)
    assert [date.fromisoformat(r[0]) for r in body] == list(spend)
    for row in body:
        assert row[1:4] == [campaign.name, campaign.campaign_id, "USD"]
        assert float(row[4].replace(",", "")) == spend[date.fromisoformat(row[0])]
        assert int(row[5].replace(",", "")) > 10_000 and int(row[6].replace(",", "")) > 0
        assert row[7] == "--" or int(row[7].replace(",", "")) >= 0
    assert any("," in row[4] for row in body)
    assert float(totals[0][4].replace(",", "")) == pytest.approx(sum(spend.values()))
    assert '"1,' in path.read_text(encoding="utf-8")  # figures quoted with separators


def test_truth_file_records_the_campaign(tmp_path):
    world = default_world(END)
    truth = json.loads(write_truth(tmp_path / "truth.json", world).read_text(encoding="utf-8"))
    (campaign,) = truth["campaigns"]
    assert truth["seed"] == 7
    assert [b["name"] for b in truth["brands"]] == ["Brewly", "Beanhaus", "Kettle & Co"]
    assert campaign["nss_lift"] == 12.0 and campaign["account_timezone"] == "America/New_York"
    assert len(campaign["daily_spend"]) == 14
    assert campaign["flight_start"] == world.campaigns[0].flight_start.isoformat()
