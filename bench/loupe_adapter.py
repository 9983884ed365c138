"""Loupe adapter for the shared client workload (../shared/bench/bench_review_loop.py).

Every call goes through Loupe's REST API with `Authorization: Token <secret>` (hashed
API tokens, governance/api_auth.py); the tokens come from bench/loupe_setup.py.

What the workload's items become in Loupe (printed by `describe()`):

- The workload item is {text, label, score}: a short text and a 2-class model
  prediction (benign/malignant) with its score in [0.5, 1). Loupe has a `text`
  feature type, but the bench keeps the champion a small logistic model on two
  numbers, so that the loop is measured and not a text model's prediction cost:
  - `text` -> the item's `external_id` (unique: every text starts with "case <i>:");
    the review card shows it as the item's id, so the text is stored and shown as
    in Label Studio. The model sees one numeric feature derived from it:
  - `suspicious_words` (integer) = how many of the words irregular, suspicious,
    malignant, asymmetric, growth, mass the text holds;
  - `p_malignant` (float, 0..1) = the workload model's probability of "malignant"
    (its score when it says malignant, 1 - score when it says benign).
- Loupe shows reviewers its *champion's* prediction, not an imported one, so
  `create_project` seeds a champion honestly through the API: it imports 300
  labelled items (review pool) and 200 holdout items whose gold labels are drawn
  from p_malignant, starts a training run, and has one model admin ask for
  promotion and a second approve it with a re-entered password (four eyes). After
  each import the champion predicts the new items in the Celery worker, and the
  queue orders by its confidence (least confident first). That confidence tracks
  the workload's score (a logistic model on p_malignant), but is not equal to it.
- The "prediction score < 0.6" list filter is Loupe's `max_confidence=0.59999`
  on the champion's confidence (the API's filter is "at most").
- Import: each 1,000-item request is a Label Studio JSON file (data + the
  workload's prediction) POSTed to /api/datasets/<id>/imports/; the call then polls
  the batch until it is imported (Loupe imports in a worker). Loupe's Label Studio
  importer reads `data` and annotations; it ignores the file's `predictions`.
- Answers go to /api/items/<id>/reviews/ with the prediction id the reviewer was
  shown; Loupe accepts an answer only for an item the queue leased to that user.
- Lists page by key (`after`); Loupe never counts, so `list_tasks` returns None as
  the total, and page k is reached through the cursor of page k-1 (cached).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, os.environ.get("BENCH_SHARED_DIR", str(HERE.parent.parent / "shared" / "bench")))

from bench_review_loop import CHOICES, Adapter, make_item  # noqa: E402

SUSPICIOUS = frozenset("irregular suspicious malignant asymmetric growth mass".split())
SEED_LABELLED, SEED_HOLDOUT = 300, 200
POLL_S = 0.05
LOW_SCORE = 0.59999  # the workload's "score < 0.6" as Loupe's "confidence at most"


def describe() -> str:
    return (
        "Loupe mapping: text -> item external_id (stored and shown; not a `text` feature, so the champion stays a "
        "logistic model on two numbers) + suspicious_words (int, from the text); "
        "prediction+score -> p_malignant (float feature); Loupe's own champion (logistic, trained through the API "
        f"on {SEED_LABELLED} seed labels drawn from p_malignant, {SEED_HOLDOUT} holdout, promoted by a second admin) "
        "predicts each import in the worker and orders the queue; score<0.6 filter -> max_confidence=0.59999 "
        "on the champion's confidence"
    )


def item_values(item: dict) -> dict:
    p_malignant = item["score"] if item["label"] == "malignant" else round(1 - item["score"], 4)
    words = item["text"].split(": ", 1)[-1].split()
    return {"suspicious_words": sum(word in SUSPICIOUS for word in words), "p_malignant": p_malignant}


def task_json(item: dict, gold: str | None = None) -> dict:
    task = {
        "data": {"external_id": item["text"], **item_values(item)},
        "predictions": [
            {
                "model_version": item["model_version"],
                "score": item["score"],
                "result": [
                    {"from_name": "label", "to_name": "item", "type": "choices", "value": {"choices": [item["label"]]}}
                ],
            }
        ],
    }
    if gold is not None:
        task["annotations"] = [
            {"result": [{"from_name": "label", "to_name": "item", "type": "choices", "value": {"choices": [gold]}}]}
        ]
    return task


class LoupeAdapter(Adapter):
    """Set LOUPE_REQUESTER_PASSWORD (the requesting model admin signs the request), LOUPE_APPROVER_TOKEN
    and LOUPE_APPROVER_PASSWORD (the second model admin) and
    LOUPE_SETUP_CMD (the command that makes the bench users members of a dataset;
    `{dataset}` is replaced by its id) before `create_project`."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self._cursors: dict[tuple[int, bool], dict[int, int]] = {}
        self._file_no = 0
        self.timings: dict[str, float] = {}

    def auth_headers(self, token: str) -> dict:
        return {"Authorization": f"Token {token}"}

    # -------------------------------------------------------------- set-up
    def create_project(self, s, title: str) -> int:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        slug = "".join(c if c.isalnum() else "-" for c in title.lower())[:80]
        r = s.post(
            f"{self.base}/api/datasets/",
            json={
                "name": title,
                "slug": slug,
                "description": "Bench dataset (bench/loupe_adapter.py): " + describe(),
                "features": [
                    {
                        "name": "suspicious_words",
                        "dtype": "integer",
                        "description": "Words of the text among: " + ", ".join(sorted(SUSPICIOUS)),
                    },
                    {
                        "name": "p_malignant",
                        "dtype": "float",
                        "normal_min": 0,
                        "normal_max": 1,
                        "description": "The workload model's probability of malignant",
                    },
                ],
                "labels": [{"name": name} for name in CHOICES],
            },
        )
        _ok(r)
        dataset_id = r.json()["id"]
        setup = os.environ.get("LOUPE_SETUP_CMD")
        if setup:
            subprocess.run(setup.format(dataset=dataset_id), shell=True, check=True, capture_output=True)
        self._seed_champion(s, dataset_id)
        self.timings["setup_s"] = round(time.perf_counter() - t0, 2)
        return dataset_id

    def _seed_champion(self, s, dataset_id: int) -> None:  # type: ignore[no-untyped-def]
        rng = random.Random(7)

        def labelled(prefix: str, n: int, first: int) -> bytes:
            tasks = []
            for i in range(n):
                item = make_item(i, rng)
                item["text"] = f"{prefix} " + item["text"]
                p = item_values(item)["p_malignant"]
                task = task_json(item, gold="malignant" if rng.random() < p else "benign")
                # Loupe refuses a row whose feature values are in both the holdout and the review pool
                # (leakage, by a hash of the values). With two coarse features the workload's rows repeat,
                # so each seed row is nudged by a unique amount under 1e-6: no seed row equals another, nor
                # any workload row (whose p_malignant has 4 decimals).
                nudge = (first + i + 1) * 1e-9
                task["data"]["p_malignant"] = p - nudge if p > 0.5 else p + nudge
                tasks.append(task)
            return json.dumps(tasks).encode()

        self._import(s, dataset_id, labelled("seed", SEED_LABELLED, 0), "seed.json", purpose="review")
        holdout = labelled("holdout", SEED_HOLDOUT, SEED_LABELLED)
        self._import(s, dataset_id, holdout, "holdout.json", purpose="holdout")
        r = s.post(f"{self.base}/api/datasets/{dataset_id}/training-runs/", json={"reason": "bench seed champion"})
        _ok(r)
        run_id = r.json()["id"]
        deadline = time.time() + 600
        while True:
            run = s.get(f"{self.base}/api/training-runs/{run_id}/").json()
            if run["status"] in ("succeeded", "failed"):
                break
            if time.time() > deadline:
                raise RuntimeError(f"training run {run_id} did not finish: {run}")
            time.sleep(0.2)
        if not run.get("model_version"):
            raise RuntimeError(f"training run {run_id} gave no model: {run}")
        r = s.post(
            f"{self.base}/api/model-versions/{run['model_version']}/promotion-requests/",
            json={
                "reason": "bench: first champion",
                "acknowledge_regressions": True,
                "password": os.environ["LOUPE_REQUESTER_PASSWORD"],
            },
        )
        _ok(r)
        approver = self.session(os.environ["LOUPE_APPROVER_TOKEN"])
        r = approver.post(
            f"{self.base}/api/promotion-requests/{r.json()['id']}/decision/",
            json={
                "decision": "approve",
                "password": os.environ["LOUPE_APPROVER_PASSWORD"],
                "reason": "bench: approved",
                "acknowledge_regressions": True,
            },
        )
        _ok(r)

    # -------------------------------------------------------------- import
    def import_payload(self, items: list[dict]) -> bytes:
        return json.dumps([task_json(item) for item in items]).encode()

    def import_batch(self, s, project_id: int, body: bytes) -> dict:  # type: ignore[no-untyped-def]
        self._file_no += 1
        return self._import(s, project_id, body, f"bench-{self._file_no:05d}.json")

    def _import(self, s, dataset_id: int, body: bytes, name: str, purpose: str = "review") -> dict:  # type: ignore[no-untyped-def]
        r = s.post(
            f"{self.base}/api/datasets/{dataset_id}/imports/",
            files={"file": (name, body, "application/json")},
            data={"purpose": purpose},
            timeout=3600,
        )
        _ok(r)
        batch = r.json()
        while batch["status"] not in ("imported", "rejected", "failed"):
            time.sleep(POLL_S)
            r = s.get(f"{self.base}{batch['status_url']}")
            _ok(r)
            batch = r.json()
        if batch["status"] != "imported":
            raise RuntimeError(
                f"import {name} {batch['status']}: {batch.get('error')} {str(batch.get('report'))[:500]}"
            )
        return batch

    # -------------------------------------------------------------- review
    def next_task(self, s, project_id: int) -> dict | None:  # type: ignore[no-untyped-def]
        r = s.get(f"{self.base}/api/datasets/{project_id}/next-item/")
        _ok(r)
        return r.json()["item"]

    def submit(self, s, project_id: int, task: dict, accept: bool, rng: random.Random) -> dict:  # type: ignore[no-untyped-def]
        shown = task.get("predicted_label")
        if shown:
            label = shown if accept else CHOICES[1 - CHOICES.index(shown)]
        else:
            label = rng.choice(CHOICES)
        r = s.post(
            f"{self.base}/api/items/{task['id']}/reviews/",
            json={"label": label, "shown_prediction_id": task.get("prediction_id")},
        )
        _ok(r)
        return r.json()

    # -------------------------------------------------------------- lists
    def list_tasks(self, s, project_id: int, page: int, page_size: int, low_score_filter: bool):  # type: ignore[no-untyped-def]
        """Page `page` (from 1) by key. Loupe does not count: the total is None."""
        cursors = self._cursors.setdefault((project_id, low_score_filter), {1: 0})
        start = max(k for k in cursors if k <= page)
        rows = 0
        for k in range(start, page + 1):
            params = {"limit": page_size, "after": cursors[k]}
            if low_score_filter:
                params["max_confidence"] = LOW_SCORE
            r = s.get(f"{self.base}/api/datasets/{project_id}/items/", params=params)
            _ok(r)
            body = r.json()
            rows = len(body["items"])
            if body["next_after"] is None:
                break
            cursors[k + 1] = body["next_after"]
        return rows, None

    def sample_task_ids(self, s, project_id: int, n: int, offset: int) -> list[dict]:  # type: ignore[no-untyped-def]
        raise NotImplementedError("Loupe takes answers only for items the queue leased: submit after next_task")


def _ok(r) -> None:  # type: ignore[no-untyped-def]
    if r.status_code >= 400:
        raise RuntimeError(f"{r.request.method} {r.url} -> {r.status_code}: {r.text[:500]}")
