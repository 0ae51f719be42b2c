"""The report status table (report_intake.reports.status): a status only ever moves forward, and ends where it ends."""

from __future__ import annotations

from report_intake.reports.status import FINAL_RANK, FINAL_STATUSES, RANK, STATUSES, ReportStatus


def test_every_move_in_the_table_goes_to_a_higher_rank() -> None:
    for status, after in STATUSES.transitions.items():
        assert all(RANK[later] > RANK[status] for later in after), status


def test_an_open_report_can_be_withdrawn_and_a_finished_one_cannot() -> None:
    for status in ReportStatus:
        assert STATUSES.allows(status, ReportStatus.WITHDRAWN) == (
            status not in FINAL_STATUSES or status == ReportStatus.WITHDRAWN
        )
    assert {s for s in ReportStatus if RANK[s] >= FINAL_RANK} == FINAL_STATUSES
    assert STATUSES.ends() == {ReportStatus.CLOSED, ReportStatus.WITHDRAWN}


def test_news_that_arrives_late_does_not_move_a_report_back() -> None:
    assert not STATUSES.allows(ReportStatus.ACCEPTED, ReportStatus.FORWARDED)
    assert not STATUSES.allows(ReportStatus.CLOSED, ReportStatus.UNIT_ASSIGNED)
    assert STATUSES.allows(ReportStatus.DECLINED, ReportStatus.CLOSED)
