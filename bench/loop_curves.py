"""Draw several `simulate_loop` runs on one chart: each DIR holds the curve.csv the command wrote.

    .venv/bin/python bench/loop_curves.py --title T --out chart.svg DIR[=LABEL] DIR[=LABEL] ...

Plain Python on the CSVs (models_app/ml/learning_curve.py): no Django, no database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models_app.ml.learning_curve import Curve, curve_read_csv, curve_svg  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--title", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("runs", nargs="+", help="DIR[=LABEL]: a folder with curve.csv, and its legend")
    args = parser.parse_args()
    curves = []
    for run in args.runs:
        folder, _, label = run.partition("=")
        path = Path(folder) / "curve.csv"
        if not path.is_file():
            parser.error(f"{path}: no such file (run manage.py simulate_loop --out {folder} first)")
        curves.append(Curve(label=label or Path(folder).name, rows=curve_read_csv(path.read_text())))
    args.out.write_text(curve_svg(curves, title=args.title))
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
