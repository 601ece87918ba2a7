"""What the issue store hands a reader is its own: changing the store later changes nothing
in it (the copy is cheap, and must stay complete as Issue grows fields)."""

from pydantic import BaseModel

from controller.issues.store import IssueStore
from controller.model import Action, Issue, IssueState, Outcome
from tests.fakes import FakeClock
from tests.unit.test_store_findings import SETTINGS, T, finding


def test_a_readers_copy_shares_nothing_mutable_with_the_stored_issue():
    store = IssueStore("dev", FakeClock(T))
    store.record_findings([finding(T)], SETTINGS)
    fp = "log:web:conn:1"
    store.link_causes({fp: {"issue-db": "names db:5432, a name of db (service name)"}})
    store.begin([fp], Action.RESTART)
    stored = store._issues[fp]
    copy = store.get(fp)
    assert copy == stored and copy is not stored
    for name in Issue.model_fields:
        value = getattr(stored, name)
        if isinstance(value, list | dict | set | BaseModel):
            assert getattr(copy, name) is not value, f"Issue.{name} is shared with readers"
        for index, item in enumerate(value if isinstance(value, list) else []):
            if isinstance(item, BaseModel):
                assert getattr(copy, name)[index] is not item, f"Issue.{name}[] is shared"

    store.finish([fp], Outcome.SUCCESS, "ok", next_state=IssueState.RESOLVED, reason="fixed")
    store.record_findings([finding(T + 1, "other evidence")], SETTINGS)
    assert copy.attempts[0].outcome is None and copy.samples == ["boom"]
    assert copy.state is IssueState.REMEDIATING
