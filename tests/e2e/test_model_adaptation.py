"""Model adaptation in a real browser (issue 9): a model admin switches the dataset to the torch MLP, watches
the run's progress to the end, reads the evaluation report, puts the candidate in shadow, and after a
reviewer's decisions sees the shadow scored against them."""

from __future__ import annotations

import os
import re
import tempfile
import time

import pytest

from models_app.models import ModelVersion, Prediction, RetrainingPolicy, TrainingRun
from models_app.shadow import shadow_report
from tests.celery_app import SLOW_EPOCHS_MARKER
from tests.e2e.browser import sign_in, sign_out, sync_api

expect = sync_api().expect
pytestmark = pytest.mark.e2e

# The run page polls every 2 s and shows "epoch i of N" only while the run is active. On PostgreSQL these
# 200 epochs take under 3 s and a poll may miss them all, so the run's reason carries the marker that makes
# the test worker report each epoch 30 ms late (tests/celery_app.py): about 6 s of epochs to watch live.
EPOCHS = 200


def _screenshot(page, name: str) -> str:  # type: ignore[no-untyped-def]
    folder = os.environ.get("LOUPE_E2E_SHOTS") or tempfile.mkdtemp(prefix="loupe-e2e-")
    path = os.path.join(folder, name)
    page.screenshot(path=path, full_page=True)
    return path


def _wait_for_shadow_predictions(version: ModelVersion, timeout: float = 30) -> None:
    """The shadow predicts the open items in a worker task after the page's redirect; the reviewer must
    decide items the shadow has predicted, or there is nothing to score."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Prediction.objects.filter(model_version=version).exists():
            return
        time.sleep(0.3)
    raise AssertionError(f"v{version.version} made no shadow prediction within {timeout} s")


def test_admin_trains_the_torch_mlp_reads_its_report_and_scores_it_in_shadow_against_reviewers(
    live_worker, live_server, page, trained_dataset, reviewer, model_admin
):
    dataset = trained_dataset
    RetrainingPolicy.objects.filter(dataset=dataset).update(enabled=False)  # training is started by hand here
    base = live_server.url

    # 1. The model admin picks the torch MLP and its epochs in the policy form.
    sign_in(page, base, "admin1")
    page.goto(f"{base}/models/datasets/{dataset.pk}/")
    page.get_by_text("Change the retraining policy").click()
    page.get_by_label("Model family").select_option(label="Multilayer perceptron (torch)")
    page.get_by_label(re.compile(r"^Hyperparameters")).fill(f'{{"epochs": {EPOCHS}}}')
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Retraining policy saved.")).to_be_visible()
    expect(page.locator("p", has_text="Policy:")).to_contain_text(re.compile(rf"torch_mlp with .*\bepochs={EPOCHS},"))
    policy = RetrainingPolicy.objects.get(dataset=dataset)
    assert policy.algorithm == "torch_mlp" and policy.hyperparameters.get("epochs") == EPOCHS

    # 2. ... starts a run and watches its bar (updated in place every 2 s) reach succeeded, at the last epoch.
    page.get_by_label("Reason").fill(f"try the MLP {SLOW_EPOCHS_MARKER}")
    page.get_by_role("button", name="Start training").click()
    status = page.locator("[data-status]")
    expect(status).to_have_attribute("data-status", re.compile(r"^(queued|running|succeeded)$"))
    # Live: the bar's poll shows the epoch the worker is on, while it runs.
    live_epoch = page.locator("[data-epoch]")
    expect(live_epoch).to_have_text(re.compile(rf"epoch \d+ of {EPOCHS}"), timeout=60_000)
    # The epoch and the bar's label, read from one state of the page (the next poll may replace both).
    seen, label = page.evaluate(
        "() => [document.querySelector('[data-epoch]')?.dataset.epoch,"
        " document.querySelector('#run-status progress').getAttribute('aria-label')]"
    )
    if seen is not None:  # else the run ended between the two reads: the live epoch was seen above
        assert 1 <= int(seen) <= EPOCHS and label == f"Training progress, epoch {seen}"
    expect(status).to_have_attribute("data-status", "succeeded", timeout=120_000)
    bar = page.locator("#run-status progress")
    expect(bar).to_have_attribute("value", "100")
    expect(bar).to_have_attribute("aria-label", f"Training progress, epoch {EPOCHS}")
    expect(page.locator("[data-epoch]")).to_have_count(0)  # "epoch i of N" is shown only while it runs
    run = TrainingRun.objects.filter(dataset=dataset).latest("requested_at")
    candidate = ModelVersion.objects.get(training_run=run)
    assert candidate.algorithm == "torch_mlp" and candidate.fit_info["params"]["epochs"] == EPOCHS

    # 3. The evaluation report: the paired test in words and numbers, and the reliability chart.
    expect(page.get_by_text(f"v{candidate.version} against the current champion v1")).to_be_visible()
    verdict = page.locator("p.verdict[data-verdict]")
    expect(verdict).to_have_attribute("data-verdict", re.compile(r"^(better|worse|not distinguishable)$"))
    # On the world's 20-row holdout the verdict is said in words, with the rows it rests on.
    expect(verdict).to_contain_text(re.compile(r"(better|worse|not distinguishable).* \d+ rows", re.IGNORECASE))
    expect(page.get_by_text(re.compile(r"exact McNemar p = \d"))).to_be_visible()
    expect(page.get_by_text("95% interval").first).to_be_visible()
    expect(page.locator("figure.reliability svg")).to_be_visible()
    report_shot = _screenshot(page, "model-adaptation-report.png")

    # 4. On the models page the candidate goes into shadow.
    page.goto(f"{base}/models/datasets/{dataset.pk}/")
    row = page.locator("tr", has=page.get_by_role("link", name=f"v{candidate.version}", exact=True))
    row.get_by_label(f"Why run v{candidate.version} in shadow").fill("see how the MLP does on new items")
    row.get_by_role("button", name="Put in shadow").click()
    shadow = page.locator("section.shadow-report")
    expect(shadow.get_by_role("heading", name=f"Shadow: v{candidate.version} beside the champion")).to_be_visible()
    expect(shadow).to_contain_text("No item it predicted has been decided by a reviewer yet.")
    candidate.refresh_from_db()
    _wait_for_shadow_predictions(candidate)
    sign_out(page)

    # 5. A reviewer decides two items with the keyboard only (the shadow's predictions stay unseen):
    # accepts the champion's label on one, corrects it on the other.
    sign_in(page, base, "reviewer")
    page.get_by_role("link", name="Start reviewing").click()
    expect(page.locator("#card")).to_contain_text(re.compile(r"Model v1 (predicts|is undecided)"))
    expect(page.locator("#card")).not_to_contain_text(f"Model v{candidate.version}")
    for accept in (True, False):
        card_id = page.locator("#card h2 code").inner_text()
        choices = page.locator("label.choice")
        choice = choices.filter(has_text="(model)") if accept else choices.filter(has_not_text="(model)").first
        page.keyboard.press(choice.locator("kbd").inner_text())
        expect(choice.locator("input")).to_be_checked()
        page.keyboard.press("Enter")
        expect(page.locator("#card h2 code")).not_to_have_text(card_id)
    sign_out(page)

    # 6. The admin reloads the models page: both decisions are scored, champion against shadow.
    sign_in(page, base, "admin1")
    page.goto(f"{base}/models/datasets/{dataset.pk}/")
    table = shadow.locator("table", has=page.get_by_text("Who was right, against the reviewers' decisions"))
    expect(table).to_be_visible()
    scored = shadow_report(model_version=candidate)
    assert scored.compared == 2 and scored.champion_right == 1  # one accepted, one corrected
    right = table.get_by_role("row", name=re.compile(r"Right, all 2 items"))
    expect(right.locator("td").nth(0)).to_have_text("1 (50%)")
    expect(right.locator("td").nth(1)).to_have_text(f"{scored.shadow_right} ({scored.shadow_right * 50}%)")
    differ = table.get_by_role("row", name=re.compile(r"Right where they differ"))
    expect(differ).to_contain_text(f"({scored.differ})")
    shadow_shot = _screenshot(page, "model-adaptation-shadow.png")
    print(f"screenshots: {report_shot} {shadow_shot}")
