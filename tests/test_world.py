"""The shared trained world (tests/world.py): who shares it, who never sees it, and what is put back after a test."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from annotations.models import Dataset
from models_app.models import ModelVersion
from tests import world
from tests.helpers import DATASET_SLUG


class _Item:
    """As much of a pytest item as world.order_items reads."""

    def __init__(self, name: str, *fixturenames: str, marker: Any = None) -> None:
        self.name = name
        self.fixturenames = fixturenames
        self._marker = marker

    def get_closest_marker(self, name: str) -> Any:
        return self._marker if name == "django_db" else None


def test_a_test_that_asks_for_the_trained_world_runs_in_a_savepoint_inside_it(request, trained_dataset):
    assert world.shares(request, "trained_dataset")
    # The world's transaction, and the test's own atomic blocks inside it.
    assert len(connection.atomic_blocks) > 1
    assert ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION).version == 1


def test_a_test_that_does_not_ask_for_the_world_sees_none_of_it(request, db):
    stack = request.config.stash.get(world.STACK, None)
    assert stack is None or stack.names == ()
    assert not Dataset.objects.filter(slug=DATASET_SLUG).exists()


def test_a_transactional_test_gets_a_committed_world_of_its_own(request, transactional_db, trained_dataset):
    assert not world.shares(request, "trained_dataset")
    assert not connection.in_atomic_block
    assert ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION).version == 1


def test_a_world_artifact_a_test_tampered_with_is_written_back(trained_dataset, _world_stack):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    path = Path(settings.ARTIFACT_ROOT) / champion.artifact_path
    path.write_bytes(path.read_bytes() + b"tampered")

    _world_stack.restore_files()

    assert hashlib.sha256(path.read_bytes()).hexdigest() == champion.artifact_sha256


def test_tests_that_share_the_world_run_first_in_collection_order():
    marked = pytest.mark.django_db.mark
    items = [
        _Item("plain", "db"),
        _Item("world_a", "db", "trained_dataset"),
        _Item("browser", "db", "trained_dataset", "live_server"),
        _Item("world_b", "db", "trained_dataset"),
        _Item("marked", "db", "trained_dataset", marker=marked),
    ]

    world.order_items(items)  # type: ignore[arg-type]

    assert [item.name for item in items] == ["world_a", "world_b", "plain", "browser", "marked"]
