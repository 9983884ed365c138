"""A rejected import's full report is a CSV download (issue 6, defect 19): the page shows the first 200 problems."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from annotations.models import ImportBatch
from annotations.services import ImportRejected, import_batch_create
from tests.conftest import csv_bytes, login, synthetic_rows

HEADER = "external_id,radius,texture,lobes"


def _rejected_batch(dataset, user, bad_rows: int) -> ImportBatch:  # type: ignore[no-untyped-def]
    lines = [HEADER] + [f"t{i},=cmd|' /C calc'!A0,15,3" for i in range(bad_rows)]
    with pytest.raises(ImportRejected) as rejected:
        import_batch_create(
            dataset=dataset, user=user, file_name="bad.csv", data=("\n".join(lines) + "\n").encode(), purpose="review"
        )
    return rejected.value.batch


def test_the_page_offers_every_problem_as_csv_beyond_the_first_two_hundred(dataset, model_admin):
    batch = _rejected_batch(dataset, model_admin, 300)
    client = login(model_admin)

    page = client.get(reverse("annotations:batch_detail", args=[dataset.pk, batch.pk])).content.decode()
    assert "100 more problems not shown" in page
    report_url = reverse("annotations:batch_report", args=[dataset.pk, batch.pk])
    assert f'href="{report_url}"' in page and "CSV, 300 problems" in page

    response = client.get(report_url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="import-{batch.pk}-report.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 300
    assert [int(r["line"]) for r in rows] == list(range(2, 302))
    assert {r["column"] for r in rows} == {"radius"}
    assert rows[0]["value"] == "'=cmd|' /C calc'!A0", "a value a spreadsheet would run is neutralised"
    assert rows[0]["problem"] == "Not a number."


def test_only_those_who_may_see_the_batch_download_its_report(dataset, model_admin, reviewer):
    batch = _rejected_batch(dataset, model_admin, 3)
    url = reverse("annotations:batch_report", args=[dataset.pk, batch.pk])
    assert login(reviewer).get(url).status_code == 403


def test_an_imported_batch_has_no_report_to_download(dataset, model_admin):
    batch = import_batch_create(
        dataset=dataset, user=model_admin, file_name="ok.csv", data=csv_bytes(synthetic_rows(3)), purpose="review"
    )
    response = login(model_admin).get(reverse("annotations:batch_report", args=[dataset.pk, batch.pk]))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("external_id", "named"),
    [("abc\u202egpj.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"), ("P-1\u200b", "U+200B ZERO WIDTH SPACE")],
)
def test_an_id_with_an_invisible_or_direction_changing_character_is_a_row_error(
    dataset, model_admin, external_id, named
):
    data = (HEADER + f"\nok-1,10,15,3\n{external_id},10,15,3\n").encode()
    with pytest.raises(ImportRejected) as rejected:
        import_batch_create(dataset=dataset, user=model_admin, file_name="spoof.csv", data=data, purpose="review")

    [error] = [e.as_dict() for e in rejected.value.result.errors]
    assert error["line"] == 3 and error["column"] == "external_id"
    assert named in error["reason"]
    assert "\u202e" not in error["value"] and "\u200b" not in error["value"], "the echoed id shows a marker instead"
