"""storage.models: the model inbox's checks, and a re-score chunk written for a job that
changed meanwhile."""

from __future__ import annotations

from datetime import timedelta

from analysis.sentiment import VaderScorer
from storage.models import (
    ModelRequest, activate, queue_request, read_chunk, requests_path, rescore_jobs, take_requests, write_chunk,
)
from tests.conftest import T0, mention


def test_queued_requests_are_checked_line_by_line(store):
    queue_request(store.path, ModelRequest("promote", "Acme", "1-abc"), T0)
    with open(requests_path(store.path), "a", encoding="utf-8") as inbox:
        inbox.write('not json\n{"action": "delete", "brand": "Acme"}\n{"action": "rollback"}\n'
                    '{"action": "train", "brand": null, "promote": "yes"}\n[1]\n\n')
    queue_request(store.path, ModelRequest("train", None, promote=True), T0)
    with take_requests(store.path) as taken:
        requests, errors = taken.values, taken.errors
        assert requests_path(store.path).with_name(requests_path(store.path).name + ".applying").exists()
    assert requests == [ModelRequest("promote", "Acme", "1-abc"), ModelRequest("train", None, promote=True)]
    assert [e.split(": ", 1)[0].split(" line ")[1].split()[0] for e in errors] == ["2", "3", "4", "5", "6"]
    assert "not JSON" in errors[0] and "action must be one of" in errors[1] and "needs a brand" in errors[2]
    assert "'promote' must be true or false" in errors[3] and "not a JSON object" in errors[4]
    assert not requests_path(store.path).exists()
    with take_requests(store.path) as taken:
        assert (taken.values, taken.errors) == ([], [])


def test_a_chunk_for_a_job_restarted_meanwhile_writes_nothing(store):
    vader = VaderScorer()
    mentions = [mention(i, "Acme is great", T0 + timedelta(minutes=i)) for i in range(5)]
    store.save_batch(mentions, vader.score([m.text for m in mentions]), source="test", brand="Acme",
                     checkpoint=None, now=T0, scorer=vader.name, scorer_version=vader.version)
    with store.native() as db:
        db.execute("DELETE FROM pending_hours")
    activate(store, "Acme", None, "rollback", T0, in_effect=("vader", vader.version))
    chunk = read_chunk(store, rescore_jobs(store)[0], 3)
    assert len(chunk) == 3
    activate(store, "Acme", None, "rollback", T0 + timedelta(seconds=1), in_effect=("vader", vader.version))
    assert not write_chunk(store, chunk, {}, [None] * 3, T0)
    with store.native() as db:
        assert db.execute("SELECT count(*) FROM scores WHERE active").fetchall() == [(5,)]
        assert db.execute("SELECT count(*) FROM pending_hours").fetchall() == [(0,)]
    job = rescore_jobs(store)[0]
    assert (job.done, job.through) == (0, None)
    fresh = read_chunk(store, job, 3)
    assert write_chunk(store, fresh, {}, [None] * 3, T0)
    with store.native() as db:
        assert db.execute("SELECT count(*) FROM scores WHERE active").fetchall() == [(2,)]
        assert db.execute("SELECT count(*) FROM pending_hours").fetchall() == [(1,)]
    assert rescore_jobs(store)[0].done == 3
