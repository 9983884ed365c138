"""`manage.py simulate_loop`: the review loop played by an oracle, measured as a learning curve (issue 9, point 12).

    manage.py simulate_loop --dataset sim --source digits --strategy least_confidence \\
        --budget 200 --retrain-every 10 --seeds 3 --audit-slice 0 --out bench/results/loop/digits-lc-a0

Each seed runs on a fresh dataset named from --dataset (models_app/simulation.py).
Writes points.csv (every seed's points), curve.csv (mean ± sd per number of
answers) and curve.svg (the chart) to --out.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from models_app.ml.learning_curve import Curve, CurvePoint, curve_csv, curve_summarise, curve_svg, points_csv
from models_app.simulation import STRATEGIES, loop_config_build, loop_simulate, loop_users_ensure
from models_app.simulation_data import SOURCES


class Command(BaseCommand):
    help = "Simulate the review loop with an oracle reviewer and write the learning curve (CSV and SVG)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True, help="Name for the datasets made (one per seed), as a slug.")
        parser.add_argument("--source", default="breast_cancer", help=f"Data: {' | '.join(SOURCES)}.")
        parser.add_argument("--strategy", required=True, help=f"Queue strategy: {' | '.join(STRATEGIES)}.")
        parser.add_argument("--budget", type=int, required=True, help="Oracle answers per seed.")
        parser.add_argument("--retrain-every", type=int, required=True, help="Train and promote every K answers.")
        parser.add_argument("--seeds", type=int, default=3, help="Seeds 0 … S-1, each on its own dataset.")
        parser.add_argument(
            "--audit-slice",
            type=int,
            default=None,
            help="Random audit slice, %% of served items (default 10, the workbench's; random is 100).",
        )
        parser.add_argument("--seed-per-class", type=int, default=None, help="Labelled seed rows per class.")
        parser.add_argument("--out", default=None, help="Output folder (default var/simulate_loop/<name>).")

    def handle(self, *args: Any, **options: Any) -> None:
        prefix = options["dataset"]
        if not prefix or slugify(prefix) != prefix or len(prefix) > 40:
            raise CommandError(
                f"--dataset {prefix!r}: use a slug of at most 40 characters (lower-case letters, digits, hyphens)."
            )
        try:
            config = loop_config_build(
                source=options["source"],
                strategy=options["strategy"],
                budget=options["budget"],
                retrain_every=options["retrain_every"],
                audit_slice_percent=options["audit_slice"],
                per_class=options["seed_per_class"],
                seeds=options["seeds"],
            )
        except ValidationError as exc:
            lines = [f"--{field.replace('_', '-')}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()]
            raise CommandError("\n".join(lines)) from None
        tag = (
            "random" if config.strategy == "random" else f"{config.strategy}, audit slice {config.audit_slice_percent}%"
        )
        out = Path(
            options["out"] or Path(settings.VAR_DIR) / "simulate_loop" / f"{prefix}-{config.source}-{slugify(tag)}"
        )
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out}: exists and is not a folder.")
        out.mkdir(parents=True, exist_ok=True)

        def progress(point: CurvePoint) -> None:
            self.stdout.write(
                f"  seed {point.seed}: {point.answers:>4} answers, accuracy {point.accuracy:.3f}, "
                f"log loss {point.log_loss:.3f}, ECE {point.ece:.3f}"
            )

        # The worker's tasks run in-process here: their per-task log lines would drown the curve.
        for name in ("celery.app.trace", "models_app.prediction"):
            logging.getLogger(name).setLevel(logging.WARNING)
        users = loop_users_ensure()
        points: list[CurvePoint] = []
        for seed in range(options["seeds"]):
            self.stdout.write(f"{config.source}, {tag}: seed {seed}")
            points += loop_simulate(config=config, seed=seed, slug_prefix=prefix, users=users, progress=progress)
        rows = curve_summarise(points)
        (out / "points.csv").write_text(points_csv(points))
        (out / "curve.csv").write_text(curve_csv(rows))
        title = f"{config.source}: {tag}, retrain every {config.retrain_every}, {options['seeds']} seed(s)"
        (out / "curve.svg").write_text(curve_svg([Curve(label=tag, rows=rows)], title=title))
        self.stdout.write(self.style.SUCCESS(f"Wrote points.csv, curve.csv and curve.svg to {out}"))
