"""Export pages and downloads (issue 7, point 4): model admins and auditors of a dataset."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotations.label_studio import json_array_chunks
from annotations.models import Dataset
from annotations.selectors import dataset_get_for_user
from models_app.export_formats import ExportFormat, csv_chunks, jsonl_chunks, parquet_file
from models_app.exports import Export, ExportKind, export_open
from models_app.models import DatasetSnapshot
from workflow_site.access import MODEL_READ_ROLES


class ExportForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (ExportKind.ITEMS, "Items: data, gold label, the champion's prediction, provenance"),
            (
                ExportKind.IMPORT_FILE,
                "Import file: id, features, gold label and time only, to import into a dataset with the same schema",
            ),
            (ExportKind.REVIEWS, "Reviews: who answered what, when, what they were shown, why it was picked"),
            (ExportKind.SNAPSHOT, "A snapshot: exactly the gold labels one training run froze"),
            (
                ExportKind.LABEL_STUDIO,
                "Label Studio tasks: data, the champion's prediction and the reviews, as Label Studio's JSON "
                "(the format below does not apply)",
            ),
        ],
        initial=ExportKind.ITEMS,
        widget=forms.RadioSelect,
    )
    format = forms.ChoiceField(
        choices=[
            (ExportFormat.CSV, "CSV (formula-like cells neutralised)"),
            (ExportFormat.JSONL, "JSON Lines"),
            (ExportFormat.PARQUET, "Parquet"),
        ],
        initial=ExportFormat.CSV,
        widget=forms.RadioSelect,
    )
    snapshot = forms.ModelChoiceField(queryset=DatasetSnapshot.objects.none(), required=False)

    def __init__(self, *args: object, dataset: Dataset, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["snapshot"].queryset = DatasetSnapshot.objects.filter(dataset=dataset).order_by("-pk")
        self.fields["snapshot"].label_from_instance = lambda s: (
            f"Snapshot {s.pk}: {s.label_count} labels, {s.created_at:%Y-%m-%d %H:%M}, hash {s.content_hash[:12]}"
        )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("kind") == ExportKind.SNAPSHOT and not data.get("snapshot"):
            self.add_error("snapshot", "Choose the snapshot to export.")
        return data


def export_response(export: Export) -> HttpResponse:
    """Stream the export: CSV and JSONL as they are written, Parquet from its spooled file."""
    if export.fmt == ExportFormat.PARQUET:
        response: HttpResponse = FileResponse(
            parquet_file(export.columns, export.types, export.rows),
            as_attachment=True,
            filename=export.file_name,
            content_type=export.fmt.content_type,
        )
    elif export.fmt == ExportFormat.JSON:
        response = StreamingHttpResponse(
            (text.encode("utf-8") for text in json_array_chunks(export.rows)), content_type=export.fmt.content_type
        )
        response["Content-Disposition"] = f'attachment; filename="{export.file_name}"'
    else:
        chunks = csv_chunks if export.fmt == ExportFormat.CSV else jsonl_chunks
        response = StreamingHttpResponse(
            (text.encode("utf-8") for text in chunks(export.columns, export.rows)),
            content_type=export.fmt.content_type,
        )
        response["Content-Disposition"] = f'attachment; filename="{export.file_name}"'
    response["X-Loupe-Labels-Hash"] = export.labels_hash
    return response


@require_GET
@login_required
def export_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """The form; submitting it (GET, so the browser downloads) streams the file."""
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=MODEL_READ_ROLES)
    if "kind" not in request.GET:
        form = ExportForm(dataset=dataset)
        return render(request, "models_app/export.html", {"dataset": dataset, "form": form})
    form = ExportForm(request.GET, dataset=dataset)
    if not form.is_valid():
        return render(request, "models_app/export.html", {"dataset": dataset, "form": form}, status=400)
    export = export_open(
        dataset=dataset,
        user=request.user,
        kind=ExportKind(form.cleaned_data["kind"]),
        fmt=ExportFormat(form.cleaned_data["format"]),
        snapshot=form.cleaned_data.get("snapshot"),
    )
    return export_response(export)
