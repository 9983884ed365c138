"""Loupe and Label Studio side by side: the same client workload against both, in one run.

    .venv/bin/python bench/side_by_side.py [--n 100000] [--ls-n N] [--loop-seconds 30] [--concurrency 1,16]

What it does, in order (bench/side_by_side.sh is the same with defaults):

1. Label Studio into its own virtualenv OUTSIDE the repo (`--ls-root`, default
   /work/.label-studio: `python3.11 -m venv` + `pip install label-studio gunicorn`;
   skipped when already there).
2. Fresh PostgreSQL databases: `loupe_sbs` for Loupe, `ls_sbs` (role labelstudio)
   for Label Studio. Redis db 13 is Loupe's broker.
3. Loupe: migrate, bench users and hashed API tokens (bench/loupe_setup.py),
   gunicorn ×4 (workflow_site.wsgi), one Celery worker (-Q default,ml, concurrency 2,
   as in the Procfile) and beat. Label Studio: first boot with `label-studio start`
   (migrations, admin token), reviewer users (../shared/bench/ls_make_users.py),
   then gunicorn ×4 on the same database, as ../shared/bench/run_one.sh does.
4. The workload of ../shared/bench/bench_review_loop.py (its items, its adapters,
   its latency summaries and review loop), interleaved:
   a. import N items, 1,000 per request: Loupe, then (after Loupe's worker has
      finished predicting them; that wait is timed and shown) Label Studio;
   b. GET next, c. submit, d. list (filtered, unfiltered): one request to Loupe, one
      to Label Studio, alternately, sample by sample;
   f. review loop: Loupe c=1, LS c=1, Loupe c=K, LS c=K, repeated `--rounds` times.
   h. with `--file-import N`: Loupe alone imports N items as one file into a fresh dataset
      (issue 7's import figure: request -> queryable), shown against Label Studio's rate from a.
   Differences from the shared script's main(), the same for both apps: b and c use
   reviewer 1's token (Loupe's next/answer need the reviewer role; its model admin
   imports and lists); each timed submit in c follows an untimed next (Loupe takes an
   answer only for an item the queue leased to that reviewer).
5. Prints each figure side by side with the ratio Loupe/LS and the machine; JSON to
   `--out` (default <workdir>/side_by_side.json, outside the repo).

Servers are stopped at the end (their process groups, started here). Logs in <workdir>.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BENCH_SHARED_DIR", str(REPO.parent / "shared" / "bench")))
sys.path.insert(0, str(SHARED))
sys.path.insert(0, str(REPO / "bench"))

import bench_review_loop as w  # noqa: E402
from loupe_adapter import LoupeAdapter, describe  # noqa: E402

PG = "psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1"
LOUPE_DB, LS_DB = "loupe_sbs", "ls_sbs"
LS_ADMIN_TOKEN = "bench0123456789abcdef0123456789abcde0000"
BROKER = "redis://127.0.0.1:6379/13"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(cmd: str, **kw) -> str:  # type: ignore[no-untyped-def]
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, **kw)
    if r.returncode:
        raise RuntimeError(f"failed ({r.returncode}): {cmd}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


class Procs:
    """Processes started here, each in its own session, stopped by their group id."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.started = workdir, []

    def start(self, name: str, cmd: str, env: dict, cwd: str | None = None) -> subprocess.Popen:
        out = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115
        p = subprocess.Popen(
            ["bash", "-c", f"exec {cmd}"],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append((name, p))
        return p

    def stop(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def stop_all(self) -> None:
        for _, p in reversed(self.started):
            self.stop(p)


def wait_http(url: str, p: subprocess.Popen, what: str, timeout: float = 300) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if p.poll() is not None:
            raise RuntimeError(f"{what} exited ({p.returncode}); see its log")
        try:
            if requests.get(url, timeout=5).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not answer {url}")


# ------------------------------------------------------------------------ set-up


def ls_install(root: Path) -> None:
    if (root / "venv" / "bin" / "label-studio").exists() and (root / "venv" / "bin" / "gunicorn").exists():
        log(f"Label Studio already installed in {root}/venv")
        return
    log(f"installing Label Studio into {root}/venv (about 1 GB)")
    root.mkdir(parents=True, exist_ok=True)
    sh(f"python3.11 -m venv {root}/venv && {root}/venv/bin/pip install -q label-studio gunicorn")


def ls_env(root: Path, port: int) -> dict:
    script = f"export ROOT={root} POSTGRE_NAME={LS_DB}; source {SHARED}/ls_env.sh postgres >/dev/null && env -0"
    out = sh(script, cwd=root)
    env = dict(kv.split("=", 1) for kv in out.split("\0") if "=" in kv)
    env["LS_PORT"] = str(port)
    return env


def ls_start(procs: Procs, root: Path, port: int, workers: int, n_reviewers: int) -> tuple[subprocess.Popen, list]:
    sh(
        f"""{PG} -tAc "SELECT 1 FROM pg_roles WHERE rolname='labelstudio'" | grep -q 1 ||
            {PG} -c "CREATE ROLE labelstudio LOGIN PASSWORD 'labelstudio' SUPERUSER";
            dropdb -h 127.0.0.1 -U postgres --if-exists {LS_DB} &&
            createdb -h 127.0.0.1 -U postgres -O labelstudio {LS_DB}"""
    )
    sh(f"rm -rf {root}/data_postgres")
    env = ls_env(root, port)
    t0 = time.time()
    sh(
        f"ROOT={root} POSTGRE_NAME={LS_DB} LS_TOKEN={LS_ADMIN_TOKEN} {SHARED}/start_ls.sh postgres {port}",
        cwd=root,
        timeout=900,
    )
    log(f"Label Studio first boot (migrations) {time.time() - t0:.0f} s")
    tokens = sh(f"{root}/venv/bin/python {SHARED}/ls_make_users.py {n_reviewers} 2>/dev/null", env=env).split()[-1]
    pid = int((root / "server_postgres.pid").read_text())
    os.kill(pid, signal.SIGTERM)  # the dev server start_ls.sh started (its pid file)
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    lsdir = sh(
        f"{root}/venv/bin/python -c 'import label_studio,os;print(os.path.dirname(label_studio.__file__))'", env=env
    )
    p = procs.start(
        "ls_gunicorn",
        f"{root}/venv/bin/gunicorn --chdir {lsdir.strip()} core.wsgi:application -b 127.0.0.1:{port} "
        f"-w {workers} --timeout 3600",
        env,
    )
    wait_http(f"http://127.0.0.1:{port}/health", p, "Label Studio")
    for _ in range(workers * 3):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=30)
    return p, tokens.split(",")


def loupe_env(workdir: Path) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{LOUPE_DB}",
        CELERY_BROKER_URL=BROKER,
        SECRET_KEY="bench-side-by-side",
        DEBUG="false",
        HTTPS="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOUPE_PLAIN_STATIC="true",
        LOUPE_VAR_DIR=str(workdir / "loupe_var"),
        LOG_LEVEL="WARNING",
    )
    return env


def loupe_source(workdir: Path, use_tree: bool) -> Path:
    """The Loupe code the servers run: a clean export of HEAD (others' uncommitted edits in a shared
    checkout stay out of the measurement), or the working tree itself with --loupe-tree."""
    if use_tree:
        return REPO
    src = workdir / "loupe_src"
    sh(f"rm -rf {src} && mkdir -p {src} && git -C {REPO} archive HEAD | tar -x -C {src}")
    return src


def loupe_start(procs: Procs, workdir: Path, port: int, workers: int, n_reviewers: int, src: Path) -> dict:
    env = loupe_env(workdir)
    py = REPO / ".venv" / "bin" / "python"
    sh(
        f"dropdb -h 127.0.0.1 -U postgres --if-exists {LOUPE_DB} && createdb -h 127.0.0.1 -U postgres {LOUPE_DB};"
        f" redis-cli -n 13 FLUSHDB >/dev/null; rm -rf {workdir}/loupe_var; mkdir -p {workdir}/loupe_var"
    )
    t0 = time.time()
    sh(f"{py} manage.py migrate --noinput -v 0", env=env, cwd=src)
    log(f"Loupe migrations {time.time() - t0:.0f} s")
    setup = f"{py} {REPO}/bench/loupe_setup.py"
    env["LOUPE_SRC"] = str(src)
    creds = json.loads(sh(f"{setup} users {n_reviewers}", env=env, cwd=src).strip().splitlines()[-1])
    bin_ = REPO / ".venv" / "bin"
    web = procs.start(
        "loupe_gunicorn",
        f"{bin_}/gunicorn workflow_site.wsgi --bind 127.0.0.1:{port} --workers {workers} --timeout 300"
        # The server's own time per request (%(D)s: microseconds from reading the request to the last
        # byte written), so the review step's server time is read apart from the client's (issue 7's
        # one-reviewer target is server time): see server_times().
        f" --access-logfile {workdir}/loupe_access.log --access-logformat '%(m)s %(U)s %(s)s %(D)s'",
        env,
        cwd=str(src),
    )
    worker = procs.start(
        "loupe_celery_worker",
        f"{bin_}/celery -A workflow_site worker -Q default,ml --concurrency 2 --loglevel WARNING "
        "--without-gossip --without-mingle --without-heartbeat",
        env,
        cwd=str(src),
    )
    beat = procs.start(
        "loupe_celery_beat",
        f"{bin_}/celery -A workflow_site beat --loglevel WARNING --schedule {workdir}/loupe_var/celerybeat-schedule",
        env,
        cwd=str(src),
    )
    wait_http(f"http://127.0.0.1:{port}/health/", web, "Loupe")
    for _ in range(workers * 3):
        requests.get(f"http://127.0.0.1:{port}/health/", timeout=30)
    os.environ["LOUPE_APPROVER_TOKEN"] = creds["approver_token"]
    os.environ["LOUPE_APPROVER_PASSWORD"] = creds["approver_password"]
    os.environ["LOUPE_REQUESTER_PASSWORD"] = creds["admin_password"]
    os.environ["LOUPE_SETUP_CMD"] = (
        " ".join(
            f"{k}={shlex.quote(v)}"
            for k, v in env.items()
            if k in ("DATABASE_URL", "SECRET_KEY", "HTTPS", "LOUPE_VAR_DIR", "LOUPE_SRC")
        )
        + f" {setup} members {{dataset}}"
    )
    return {"web": web, "worker": worker, "beat": beat, "creds": creds}


# ------------------------------------------------------------------------ measuring


class App:
    def __init__(self, name: str, adapter: w.Adapter, admin: str, reviewers: list, server_pid: int, extra_pids=()):  # type: ignore[no-untyped-def]
        self.name, self.adapter, self.reviewers = name, adapter, reviewers
        self.admin_token = admin
        self.admin_s = adapter.session(admin)
        self.rev_s = adapter.session(reviewers[0])
        self.server_pid, self.extra_pids = server_pid, list(extra_pids)
        self.mon = w.RssMonitor(server_pid)
        self.mon.start()
        self.extra_mons = [w.RssMonitor(p) for p in self.extra_pids]
        for m in self.extra_mons:
            m.start()
        self.res: dict = {}
        self.project = None

    def cpu(self, with_extra: bool = False) -> float:
        pids = w._tree(self.server_pid)
        if with_extra:
            for p in self.extra_pids:
                pids += w._tree(p)
        return w._cpu_s(pids)


def profile_web(app: App, workdir: Path, clients: int, a: argparse.Namespace) -> dict:
    """One more review loop of `app`, its web process tree recorded by py-spy (not one of the measured loops:
    sampling costs the workers a little). Returns bench/pyspy_summary.py's summary; the recording stays in
    <workdir>/loupe_web.pyspy.txt."""
    from pyspy_summary import summary

    out = workdir / "loupe_web.pyspy.txt"
    log(f"-- f2. Loupe c={clients} under py-spy ({out})")
    spy = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "py-spy"), "record", "--pid", str(app.server_pid), "--subprocesses"]
        + ["--rate", "200", "--format", "raw", "--output", str(out), "--duration", str(int(a.loop_seconds))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)  # attached before the loop starts
    r = w.review_loop(app.adapter, app.reviewers, app.project, clients, a.loop_seconds, 0.8, a.seed, False)
    spy.wait(timeout=120)
    result = summary(out, 25) if out.exists() else {"error": "py-spy wrote nothing (is it installed in .venv?)"}
    result["answers_per_s_while_sampled"] = r["loops_per_s"]
    for name, pct in list(result.get("self_by_package_pct", {}).items())[:12]:
        log(f"   {pct:5.1f}%  {name}")
    return result


def phase_import(app: App, bodies: list, budget_s: float) -> dict:
    mon = app.mon
    mon.reset_phase()
    cpu0, t0 = app.cpu(True), time.perf_counter()
    done, batch_s = 0, []
    for cnt, body in bodies:
        b0 = time.perf_counter()
        app.adapter.import_batch(app.admin_s, app.project, body)
        batch_s.append(time.perf_counter() - b0)
        done += cnt
        if len(batch_s) % 20 == 0:
            log(f"   {app.name}: imported {done} ({done / (time.perf_counter() - t0):.0f} items/s)")
        if time.perf_counter() - t0 > budget_s and done < sum(c for c, _ in bodies):
            log(f"   {app.name}: import budget of {budget_s:.0f} s exhausted at {done}")
            break
    wall = time.perf_counter() - t0
    out = {
        "items": done,
        "wall_s": round(wall, 2),
        "items_per_s": round(done / wall, 1),
        "batch_s_p50": round(sorted(batch_s)[len(batch_s) // 2], 3),
        "batch_s_first": round(batch_s[0], 3),
        "batch_s_last": round(batch_s[-1], 3),
        "server_cpu_s": round(app.cpu(True) - cpu0, 2),
        "server_peak_rss_mb": round(mon.phase_peak_kb / 1024, 1),
    }
    return out


def phase_file_import(app: App, n: int, seed: int) -> dict:
    """Loupe alone: `n` workload items as ONE CSV file (one upload) into a fresh dataset, request -> queryable.

    Issue 7 measures an import from a file, not in 1,000-item requests; Label Studio's figure beside it
    is its rate from step a (its own import API, the path the shared workload uses). Predictions are not
    in the time: the worker predicts after the batch is published (status "imported")."""
    import csv
    import io

    from loupe_adapter import item_values

    rng = random.Random(seed + 1)
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(["external_id", "suspicious_words", "p_malignant"])
    for i in range(n):
        item = w.make_item(i, rng)
        values = item_values(item)
        out.writerow([item["text"], values["suspicious_words"], values["p_malignant"]])
    body = text.getvalue().encode()
    dataset = app.adapter.create_project(app.admin_s, f"sbs-file-{int(time.time())}")
    app.mon.reset_phase()
    cpu0, t0 = app.cpu(True), time.perf_counter()
    batch = app.adapter._import(app.admin_s, dataset, body, "whole-file.csv")
    wall = time.perf_counter() - t0
    return {
        "items": n,
        "file_mb": round(len(body) / 1e6, 1),
        "wall_s": round(wall, 2),
        "items_per_s": round(n / wall, 1),
        "server_cpu_s": round(app.cpu(True) - cpu0, 2),
        "server_peak_rss_mb": round(app.mon.phase_peak_kb / 1024, 1),
        "steps_s": (batch.get("report") or {}).get("seconds"),
    }


def loupe_wait_predictions(dataset_id: int, timeout: float = 3600) -> float:
    """Seconds until every open item of the dataset shows the champion's prediction (read from the DB)."""
    t0 = time.perf_counter()
    q = (
        f"SELECT count(*) FROM annotations_item WHERE dataset_id={dataset_id} "
        "AND queue_state='open' AND predicted_confidence IS NULL"
    )
    while time.perf_counter() - t0 < timeout:
        left = int(sh(f'{PG} -tAc "{q}" {LOUPE_DB}').strip())
        if left == 0:
            return round(time.perf_counter() - t0, 2)
        time.sleep(0.5)
    raise RuntimeError("predictions did not finish")


def _loupe_sql_count(q: str) -> int:
    return int(sh(f'{PG} -tAc "{q}" {LOUPE_DB}').strip())


def loupe_prepare_shadow(app: App, timeout: float = 3600) -> float:
    """Give the disagreement strategy something to order by: train a second version on the labels the loops
    made, run it in shadow, and wait until it has scored every open item. Seconds taken."""
    t0 = time.perf_counter()
    base, s = app.adapter.base, app.admin_s
    r = s.post(f"{base}/api/datasets/{app.project}/training-runs/", json={"reason": "bench: a shadow to disagree"})
    r.raise_for_status()
    run_id = r.json()["id"]
    while True:
        run = s.get(f"{base}/api/training-runs/{run_id}/", timeout=60).json()
        if run["status"] in ("succeeded", "failed"):
            break
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"training run {run_id} did not finish: {run}")
        time.sleep(1)
    if not run.get("model_version"):
        raise RuntimeError(f"training run {run_id} gave no model: {run}")
    r = s.post(
        f"{base}/api/model-versions/{run['model_version']}/shadow/",
        json={"action": "start", "reason": "bench: disagreement strategy"},
        timeout=60,
    )
    r.raise_for_status()
    q = (
        f"SELECT count(*) FROM annotations_item WHERE dataset_id={app.project} AND queue_state='open' "
        "AND prediction_id IS NOT NULL AND disagreement_score IS NULL"
    )
    while _loupe_sql_count(q):
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError("the shadow did not score every open item")
        time.sleep(1)
    return round(time.perf_counter() - t0, 2)


def loupe_reopen_label_issues(app: App, limit: int, timeout: float = 1800) -> tuple[float, int]:
    """Give the label-issue strategy something to order by: confident learning over the done items' gold
    labels reopens the `limit` likeliest errors with their scores. (seconds, items reopened)."""
    t0 = time.perf_counter()
    q = (
        f"SELECT count(*) FROM annotations_item WHERE dataset_id={app.project} AND queue_state='open' "
        "AND priority_strategy = 'label_issue'"
    )
    before = _loupe_sql_count(q)
    events = "SELECT count(*) FROM governance_auditevent WHERE action LIKE 'label_issues.%'"
    events_before = _loupe_sql_count(events)
    r = app.admin_s.post(
        f"{app.adapter.base}/api/datasets/{app.project}/label-issues/", json={"limit": limit}, timeout=120
    )
    r.raise_for_status()
    while _loupe_sql_count(events) == events_before:  # the job records its result as an audit event
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError("the label-issue job did not finish")
        time.sleep(1)
    return round(time.perf_counter() - t0, 2), _loupe_sql_count(q) - before


def list_loop(app: App, clients: int, seconds: float, pages: int) -> dict:
    """`clients` threads, each with its own session, GET filtered 100-row pages (score < 0.6, pages 1..`pages`
    cycled) for `seconds`: latency percentiles, lists/s and errors."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        s = app.adapter.session(app.admin_token)
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                app.adapter.list_tasks(s, app.project, 1 + i % pages, 100, True)
            except Exception:  # noqa: BLE001 - counted, the loop goes on
                with lock:
                    errors[0] += 1
            else:
                with lock:
                    lat.append(time.perf_counter() - t0)
            i += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {**w.summarize(lat), "lists_per_s": round(len(lat) / seconds, 1), "errors": errors[0]}


def loupe_set_strategy(app: App, strategy: str, timeout: float = 3600) -> float:
    """Switch Loupe's dataset to `strategy` through the API; seconds until its open items are rescored.

    "audit_slice" means least confidence with every served item from the random slice (100%).
    """
    body = {"strategy": strategy, "audit_slice_percent": 10, "overlap": 1, "blind_percent": 0}
    if strategy == "audit_slice":
        body.update(strategy="least_confidence", audit_slice_percent=100)
    t0 = time.perf_counter()
    r = app.admin_s.put(f"{app.adapter.base}/api/datasets/{app.project}/queue-settings/", json=body, timeout=60)
    r.raise_for_status()
    if body["strategy"] in ("least_confidence", "margin", "entropy"):
        q = (
            f"SELECT count(*) FROM annotations_item WHERE dataset_id={app.project} AND queue_state='open' "
            f"AND predicted_probabilities IS NOT NULL AND priority_strategy <> '{body['strategy']}'"
        )
    else:  # disagreement, label issue: every open item ends with the strategy's name or none ('': no score)
        q = (
            f"SELECT count(*) FROM annotations_item WHERE dataset_id={app.project} AND queue_state='open' "
            f"AND priority_strategy NOT IN ('', '{body['strategy']}')"
        )
    while time.perf_counter() - t0 < timeout:
        if int(sh(f'{PG} -tAc "{q}" {LOUPE_DB}').strip()) == 0:
            seconds = round(time.perf_counter() - t0, 2)
            # A rescoring rewrites up to every open item. With autovacuum on (PostgreSQL's default) vacuum
            # follows within a minute; this server may run with it off (shown under machine), and then the
            # dead index entries the rewrite left stay in front of the live ones the queue looks for.
            if sh(f"{PG} -tAc 'show autovacuum' postgres").strip() == "off":
                v0 = time.perf_counter()
                sh(f'{PG} -c "VACUUM (ANALYZE) annotations_item" {LOUPE_DB}')
                log(f"   VACUUM (ANALYZE) annotations_item after rescoring: {time.perf_counter() - v0:.1f} s")
            return seconds
        time.sleep(1)
    raise RuntimeError(f"rescoring under {strategy} did not finish")


class SnapshotWatch:
    """While a Loupe loop runs: every half second, the Loupe database's open transactions older than
    a second (other than this watch's own), with their state and statement. An old snapshot keeps
    PostgreSQL from marking dead index entries (the queue's answered items) as dead, so each
    `next` would step over more of them; this says whether one was held, and by whom."""

    QUERY = (
        "SELECT pid, coalesce(application_name, ''), state, round(extract(epoch FROM now() - xact_start)::numeric, 1),"
        " coalesce(backend_xmin::text, ''), left(regexp_replace(query, '\\s+', ' ', 'g'), 100)"
        " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND xact_start < now() - interval '1 second'"
    )

    def __init__(self) -> None:
        self.seen: dict[tuple, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{LOUPE_DB}", autocommit=True) as conn:
            while not self._stop.wait(0.5):
                for pid, app_name, state, age, _xmin, query in conn.execute(self.QUERY).fetchall():
                    key = (pid, app_name, state, query)
                    self.seen[key] = max(self.seen.get(key, 0.0), float(age or 0))

    def __enter__(self) -> SnapshotWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> list[dict]:
        rows = sorted(self.seen.items(), key=lambda kv: -kv[1])[:10]
        return [{"pid": k[0], "app": k[1], "state": k[2], "query": k[3], "longest_s": v} for k, v in rows]


def loupe_item_dead_tuples() -> int:
    return _loupe_sql_count("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'annotations_item'")


def access_log_offset(workdir: Path) -> int:
    path = workdir / "loupe_access.log"
    return path.stat().st_size if path.exists() else 0


def server_times(workdir: Path, since: int, pairs: bool) -> dict:
    """Loupe's own time for the review loop's requests logged after byte `since` of its access log.

    next = GET …/next-item/, submit = POST …/reviews/; with `pairs` (one client, so its requests
    are logged in order) also each answer + the next card together, as issue 7 states its target.
    """
    times: dict[str, list[float]] = {"next": [], "submit": []}
    order: list[tuple[str, float]] = []
    with open(workdir / "loupe_access.log", "rb") as f:
        f.seek(since)
        for line in f.read().decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) != 4 or not parts[3].isdigit():
                continue
            method, path, _status, micros = parts
            kind = "next" if method == "GET" and path.endswith("/next-item/") else None
            kind = "submit" if method == "POST" and path.endswith("/reviews/") else kind
            if kind:
                times[kind].append(int(micros) / 1e6)
                order.append((kind, int(micros) / 1e6))
    out: dict = {kind: w.summarize(values) for kind, values in times.items()}
    # The next card's server time, median of each 50 in order: flat, or growing as the loop goes on.
    nexts = times["next"]
    out["next_trend_ms"] = [
        round(sorted(nexts[i : i + 50])[len(nexts[i : i + 50]) // 2] * 1000, 1) for i in range(0, len(nexts), 50)
    ]
    if pairs:
        steps = [s + n for (k1, s), (k2, n) in zip(order, order[1:], strict=False) if (k1, k2) == ("submit", "next")]
        out["answer_and_next"] = w.summarize(steps)
    return out


def list_server_times(workdir: Path, since: int) -> dict:
    """Loupe's own time for the item-list requests (GET …/items/) logged after byte `since` of its access log."""
    times = []
    with open(workdir / "loupe_access.log", "rb") as f:
        f.seek(since)
        for line in f.read().decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[3].isdigit() and parts[0] == "GET" and parts[1].endswith("/items/"):
                times.append(int(parts[3]) / 1e6)
    return w.summarize(times)


def interleaved(apps: list, n: int, step) -> dict:  # type: ignore[no-untyped-def]
    """step(app, i) -> seconds (or None = untimed failure); one call per app in turn, n rounds."""
    lat = {a.name: [] for a in apps}
    cpu0 = {a.name: a.cpu() for a in apps}
    for a in apps:
        a.mon.reset_phase()
    t0 = time.perf_counter()
    for i in range(n):
        for a in apps:
            dt = step(a, i)
            if dt is not None:
                lat[a.name].append(dt)
    wall = time.perf_counter() - t0
    out = {}
    for a in apps:
        cpu = a.cpu() - cpu0[a.name]
        out[a.name] = {
            **w.summarize(lat[a.name]),
            "server_cpu_ms_per_call": round(cpu / max(1, len(lat[a.name])) * 1000, 1),
            "server_peak_rss_mb": round(a.mon.phase_peak_kb / 1024, 1),
        }
    out["wall_s"] = round(wall, 2)
    return out


def list_pages(app: App, flt: bool, most: int = 10) -> int:
    """How many 100-row pages to cycle (at most `most`): from the total, or by walking when it is not counted."""
    rows, total = app.adapter.list_tasks(app.admin_s, app.project, 1, 100, flt)
    if total is not None:
        return max(1, min(most, (total + 99) // 100))
    for page in range(2, most + 1):
        if rows < 100:
            return page - 1
        rows, _ = app.adapter.list_tasks(app.admin_s, app.project, page, 100, flt)
    return most


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def results_path(a: argparse.Namespace) -> Path:
    return Path(a.out or Path(a.workdir) / "side_by_side.json")


def run(a: argparse.Namespace) -> dict:
    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ls_root = Path(a.ls_root)
    ls_install(ls_root)
    procs = Procs(workdir)
    result: dict = {"args": vars(a), "machine": machine(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    result["versions"] = versions(ls_root)
    # What is done so far, written again as each phase ends: a run that stalls or fails late keeps its
    # earlier figures (a 1M run once lost half an hour's loops to a stalled last phase).
    partial = results_path(a).with_suffix(".partial.json")

    def save_partial() -> None:
        partial.write_text(json.dumps(result, indent=1, default=str))

    try:
        src = loupe_source(workdir, a.loupe_tree)
        result["versions"]["loupe_code"] = "working tree" if a.loupe_tree else f"clean export of HEAD in {src}"
        lo = loupe_start(procs, workdir, a.loupe_port, a.workers, a.reviewers, src)
        log(f"Loupe up (gunicorn ×{a.workers}, Celery worker, beat)")
        ls_web, ls_tokens = ls_start(procs, ls_root, a.ls_port, a.workers, a.reviewers)
        log(f"Label Studio up (gunicorn ×{a.workers})")
        loupe = App(
            "loupe",
            LoupeAdapter(f"http://127.0.0.1:{a.loupe_port}"),
            lo["creds"]["admin_token"],
            lo["creds"]["reviewers"],
            lo["web"].pid,
            [lo["worker"].pid],
        )
        ls = App(
            "ls",
            w.LabelStudioAdapter(f"http://127.0.0.1:{a.ls_port}"),
            LS_ADMIN_TOKEN,
            ls_tokens,
            ls_web.pid,
        )
        apps = [loupe, ls]
        log(describe())
        result["mapping"] = {"loupe": describe(), "ls": "Label Studio task: data.text + one prediction (choice, score)"}
        result["rss_before_mb"] = {x.name: round(x.mon.cur_kb / 1024, 1) for x in apps}

        # a. import ------------------------------------------------------------
        t0 = time.perf_counter()
        loupe.project = loupe.adapter.create_project(loupe.admin_s, f"sbs-{int(time.time())}")
        result["loupe_setup_s"] = round(time.perf_counter() - t0, 2)
        log(f"Loupe dataset {loupe.project}: schema, members, seed champion in {result['loupe_setup_s']} s")
        ls.project = ls.adapter.create_project(ls.admin_s, f"sbs-{int(time.time())}")
        result["import"] = {}
        for app, n in ((loupe, a.n), (ls, a.ls_n or a.n)):
            rng = random.Random(a.seed)
            bodies = []
            for b0 in range(0, n, 1000):
                items = [w.make_item(i, rng) for i in range(b0, min(n, b0 + 1000))]
                bodies.append((len(items), app.adapter.import_payload(items)))
            log(f"-- a. import {n} into {app.name}")
            result["import"][app.name] = phase_import(app, bodies, a.import_budget_s)
            save_partial()
            if app is loupe:
                wait = loupe_wait_predictions(loupe.project)
                result["import"]["loupe"]["predictions_ready_after_s"] = wait
                log(f"   loupe: every open item predicted {wait} s after the last import")
            log(f"   {app.name}: {result['import'][app.name]}")

        if a.analyze:
            # What autovacuum's autoanalyze would do within a minute of a bulk load; this server may run
            # with autovacuum off (shown under machine), which leaves both apps planning on empty statistics.
            t0 = time.perf_counter()
            sh(f"{PG} -c ANALYZE {LOUPE_DB} && {PG} -c ANALYZE {LS_DB}")
            result["analyze_after_import_s"] = round(time.perf_counter() - t0, 2)
            log(f"ANALYZE on both databases after the imports: {result['analyze_after_import_s']} s")

        # b. next (same reviewer, no answer: a held item comes back) --------------
        for app in apps:
            for _ in range(5):
                app.adapter.next_task(app.rev_s, app.project)
        log("-- b. next (interleaved)")
        result["next"] = interleaved(
            apps, a.samples, lambda app, i: timed(lambda: app.adapter.next_task(app.rev_s, app.project))
        )

        # c. submit after an untimed next ------------------------------------------
        log("-- c. submit (interleaved; each after an untimed next)")
        rngs = {x.name: random.Random(a.seed) for x in apps}

        def submit(app, i):  # type: ignore[no-untyped-def]
            task = app.adapter.next_task(app.rev_s, app.project)
            if task is None:
                return None
            accept = rngs[app.name].random() < 0.8
            return timed(lambda: app.adapter.submit(app.rev_s, app.project, task, accept, rngs[app.name]))

        result["submit"] = interleaved(apps, a.samples, submit)

        # d. lists ---------------------------------------------------------------
        for flt in (True, False):
            log(f"-- d. list filter={flt} (interleaved, pages 1..10 cycled)")
            pages = {x.name: list_pages(x, flt) for x in apps}
            logged = access_log_offset(workdir)
            result[f"list_filtered_{flt}"] = interleaved(
                apps,
                a.samples,
                lambda app, i, flt=flt, pages=pages: timed(
                    lambda: app.adapter.list_tasks(app.admin_s, app.project, 1 + i % pages[app.name], 100, flt)
                ),
            )
            result[f"list_filtered_{flt}"]["pages_cycled"] = pages
            # Loupe's own time for them (the list pages above, as logged by its gunicorn).
            result[f"list_filtered_{flt}"]["loupe"]["server_time"] = list_server_times(workdir, logged)

        # f. review loops ----------------------------------------------------------
        if a.analyze:
            # Again, before the loops: phases b and c made the first reviews, answers and read-log rows,
            # and autovacuum would analyze those tables after their first 50 rows. Without it the review
            # table keeps the statistics of an empty table, and Loupe's claim, planned once per connection
            # (workflow_site/prepared_sql.py), anti-joins all of the reviewer's reviews for every card
            # instead of probing the candidate's: its next card then slowed as the loop went on.
            t0 = time.perf_counter()
            sh(f"{PG} -c ANALYZE {LOUPE_DB} && {PG} -c ANALYZE {LS_DB}")
            result["analyze_before_loops_s"] = round(time.perf_counter() - t0, 2)
            log(f"ANALYZE on both databases before the loops: {result['analyze_before_loops_s']} s")
        save_partial()
        result["loops"] = []
        for rnd in range(a.rounds):
            for c in [int(x) for x in a.concurrency.split(",")]:
                for app in apps:
                    log(f"-- f. review loop round {rnd + 1} clients={c} {app.name}")
                    app.mon.reset_phase()
                    logged = access_log_offset(workdir)
                    watch = SnapshotWatch() if app.name == "loupe" else None
                    cpu0, client0 = app.cpu(True), sum(os.times()[:2])
                    if watch:
                        watch.__enter__()
                    try:
                        r = w.review_loop(
                            app.adapter, app.reviewers, app.project, c, a.loop_seconds, 0.8, a.seed + rnd, False
                        )
                    finally:
                        if watch:
                            watch.__exit__()
                    cpu = app.cpu(True) - cpu0
                    if app.name == "loupe" and watch is not None:
                        r["server_time"] = server_times(workdir, logged, pairs=c == 1)
                        r["old_transactions"] = watch.report()
                        r["item_dead_tuples_after"] = loupe_item_dead_tuples()
                        for held in r["old_transactions"][:3]:
                            log(f"   open > 1 s during the loop: {held}")
                    r["client_cpu_s"] = round(sum(os.times()[:2]) - client0, 2)
                    r.update(
                        app=app.name,
                        round=rnd + 1,
                        server_cpu_s=round(cpu, 2),
                        server_cpu_ms_per_answer=round(cpu / max(1, r["loops"]) * 1000, 1),
                        server_peak_rss_mb=round(app.mon.phase_peak_kb / 1024, 1),
                    )
                    result["loops"].append(r)
                    save_partial()
                    log(
                        f"   {app.name} c={c}: {r['loops_per_s']} answers/s, next p50 {r['next']['p50_ms']} ms, "
                        f"submit p50 {r['submit']['p50_ms']} ms, errors {r['errors']}"
                    )

        # f2. Loupe alone under py-spy (--profile-web): where its web workers' CPU goes at the top concurrency.
        if a.profile_web:
            result["web_profile"] = profile_web(loupe, workdir, max(int(x) for x in a.concurrency.split(",")), a)

        # g. Loupe alone, per queue strategy (issue 8): the same loop after the open items are rescored.
        strategies = [x for x in a.loupe_strategies.split(",") if x]
        result["strategy_loops"] = []
        for strategy in strategies:
            lo = next(x for x in apps if x.name == "loupe")
            prepared: dict = {}
            if strategy == "disagreement":
                prepared["shadow_scored_s"] = loupe_prepare_shadow(lo)
                log(f"   a shadow scored every open item in {prepared['shadow_scored_s']} s")
            seconds = loupe_set_strategy(lo, strategy)
            if strategy == "label_issue":
                prepared["label_issue_s"], prepared["reopened"] = loupe_reopen_label_issues(lo, a.label_issues)
                log(f"   label issues: {prepared['reopened']} items reopened in {prepared['label_issue_s']} s")
            for c in [int(x) for x in a.concurrency.split(",")]:
                log(f"-- g. Loupe strategy={strategy} clients={c} (rescored in {seconds} s)")
                cpu0 = lo.cpu(True)
                r = w.review_loop(lo.adapter, lo.reviewers, lo.project, c, a.loop_seconds, 0.8, a.seed, False)
                cpu = lo.cpu(True) - cpu0
                r.update(
                    strategy=strategy,
                    rescore_s=seconds,
                    server_cpu_ms_per_answer=round(cpu / max(1, r["loops"]) * 1000, 1),
                    **prepared,
                )
                # The filtered item list under the same strategy, at the same concurrency.
                r["list_filtered"] = list_loop(lo, c, min(a.loop_seconds, 15), list_pages(lo, True))
                result["strategy_loops"].append(r)
                log(
                    f"   {strategy} c={c}: {r['loops_per_s']} answers/s, next p50/p95 {r['next']['p50_ms']}/"
                    f"{r['next'].get('p95_ms')} ms, submit p50/p95 {r['submit']['p50_ms']}/"
                    f"{r['submit'].get('p95_ms')} ms, errors {r['errors']}; list p50/p95/p99 "
                    f"{r['list_filtered']['p50_ms']}/{r['list_filtered']['p95_ms']}/{r['list_filtered']['p99_ms']} ms"
                )

        save_partial()
        # h. Loupe alone: the same kind of items as one file (issue 7's import figure).
        if a.file_import:
            log(f"-- h. Loupe: {a.file_import} items as one file (one upload, request -> queryable)")
            result["file_import"] = phase_file_import(loupe, a.file_import, a.seed)
            log(f"   loupe: {result['file_import']}")

        for app in apps:
            app.mon.stop()
            result.setdefault("rss_end_mb", {})[app.name] = round(
                sum(w._status_kb(p, "VmRSS") for p in w._tree(app.server_pid)) / 1024, 1
            )
            result.setdefault("rss_peak_mb", {})[app.name] = round(app.mon.peak_kb / 1024, 1)
            result.setdefault("rss_per_worker_end_mb", {})[app.name] = {
                str(p): round(w._status_kb(p, "VmRSS") / 1024, 1) for p in w._tree(app.server_pid)
            }
        for m in loupe.extra_mons:
            m.stop()
            result["loupe_celery_peak_rss_mb"] = round(m.peak_kb / 1024, 1)
    finally:
        procs.stop_all()
    result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return result


# ------------------------------------------------------------------------ report


def machine() -> dict:
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?"
    )
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem / 2**20, 1),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "kernel": platform.release(),
        "postgres_autovacuum": sh(f"{PG} -tAc 'show autovacuum' postgres").strip(),
    }


def versions(ls_root: Path) -> dict:
    v = {"postgresql": sh(f"{PG} -tAc 'show server_version' postgres").strip()}
    v["label_studio"] = sh(
        f"{ls_root}/venv/bin/python -c 'import label_studio;print(label_studio.__version__)'"
    ).strip()
    v["loupe_commit"] = sh(f"git -C {REPO} rev-parse --short HEAD").strip()
    return v


def _util(loop: dict) -> str:
    """Cores the server tree and the client used on average during a loop (the machine has nproc)."""
    wall = loop["wall_s"] or 1
    return f"{loop['server_cpu_s'] / wall:.2f} / {loop.get('client_cpu_s', 0) / wall:.2f}"


def table(r: dict) -> str:
    rows: list[tuple[str, object, object, str]] = []

    def add(name: str, lo, ls, better: str) -> None:  # type: ignore[no-untyped-def]
        rows.append((name, lo, ls, better))

    imp = r["import"]
    add("a. import items", imp["loupe"]["items"], imp["ls"]["items"], "")
    add("a. import items/s (request→queryable)", imp["loupe"]["items_per_s"], imp["ls"]["items_per_s"], "higher")
    add("a. import s per 1,000-item request p50", imp["loupe"]["batch_s_p50"], imp["ls"]["batch_s_p50"], "lower")
    add("a. import server CPU s (Loupe: web+worker)", imp["loupe"]["server_cpu_s"], imp["ls"]["server_cpu_s"], "lower")
    add("a. Loupe: all predicted, s after import", imp["loupe"].get("predictions_ready_after_s"), None, "")
    if r.get("file_import"):
        fi = r["file_import"]
        label = f"h. Loupe: {fi['items']} items as one file, items/s (LS: a.)"
        add(label, fi["items_per_s"], imp["ls"]["items_per_s"], "higher")
    for key, label in (
        ("next", "b. next (held item) ms"),
        ("submit", "c. submit ms"),
        ("list_filtered_True", "d. list 100, score<0.6 ms"),
        ("list_filtered_False", "d. list 100, no filter ms"),
    ):
        for q in ("p50_ms", "p95_ms"):
            add(f"{label} {q[:3]}", r[key]["loupe"][q], r[key]["ls"][q], "lower")
        add(
            f"{label[:-3]} server CPU ms/call",
            r[key]["loupe"]["server_cpu_ms_per_call"],
            r[key]["ls"]["server_cpu_ms_per_call"],
            "lower",
        )
        st = r[key]["loupe"].get("server_time")
        if st:  # runs before it logged them have none
            add(f"{label[:-3]} Loupe server time p50 / p95 ms", f"{st['p50_ms']} / {st['p95_ms']}", None, "")
    loops: dict = {}
    for x in r["loops"]:
        loops.setdefault((x["clients"], x["round"]), {})[x["app"]] = x
    for (c, rnd), pair in sorted(loops.items()):
        lo, ls = pair["loupe"], pair["ls"]
        tag = f"f. c={c} r{rnd}"
        add(f"{tag} answers/s", lo["loops_per_s"], ls["loops_per_s"], "higher")
        add(
            f"{tag} next p50 / p95 ms",
            f"{lo['next']['p50_ms']} / {lo['next']['p95_ms']}",
            f"{ls['next']['p50_ms']} / {ls['next']['p95_ms']}",
            "lower",
        )
        add(
            f"{tag} submit p50 / p95 ms",
            f"{lo['submit']['p50_ms']} / {lo['submit']['p95_ms']}",
            f"{ls['submit']['p50_ms']} / {ls['submit']['p95_ms']}",
            "lower",
        )
        if lo.get("server_time"):
            st = lo["server_time"]
            add(
                f"{tag} Loupe server time next p50 / p95 ms",
                f"{st['next']['p50_ms']} / {st['next']['p95_ms']}",
                None,
                "",
            )
            add(
                f"{tag} Loupe server time submit p50 / p95 ms",
                f"{st['submit']['p50_ms']} / {st['submit']['p95_ms']}",
                None,
                "",
            )
            if st.get("answer_and_next"):
                both = st["answer_and_next"]
                add(
                    f"{tag} Loupe server time answer+next p50 / p95 / p99 ms",
                    f"{both['p50_ms']} / {both['p95_ms']} / {both['p99_ms']}",
                    None,
                    "",
                )
        add(f"{tag} server CPU ms/answer", lo["server_cpu_ms_per_answer"], ls["server_cpu_ms_per_answer"], "lower")
        add(f"{tag} server / client CPU util", _util(lo), _util(ls), "")
        add(f"{tag} errors", lo["errors"], ls["errors"], "lower")
    # Absent from a run that stopped before its end (its results rescued from the process).
    if "rss_peak_mb" in r:
        add("RSS web tree peak MB (4 workers+master)", r["rss_peak_mb"]["loupe"], r["rss_peak_mb"]["ls"], "lower")
        add("RSS web tree end MB", r["rss_end_mb"]["loupe"], r["rss_end_mb"]["ls"], "lower")
    add("Loupe Celery worker peak RSS MB", r.get("loupe_celery_peak_rss_mb"), None, "")

    def ratio(lo, ls) -> str:  # type: ignore[no-untyped-def]
        try:
            if isinstance(lo, str):
                a, b = float(lo.split(" / ")[0]), float(ls.split(" / ")[0])
            else:
                a, b = float(lo), float(ls)
            return f"{a / b:.2f}" if b else "-"
        except (TypeError, ValueError, AttributeError):
            return "-"

    m = r["machine"]
    out = [
        f"machine: nproc={m['nproc']}  cpu={m['cpu_model']}  memory={m['memory_gib']} GiB  "
        f"load at start={' '.join(m['loadavg_at_start'])}  postgres autovacuum={m.get('postgres_autovacuum')}  "
        f"ANALYZE after import: {r.get('analyze_after_import_s', 'no')}",
        f"versions: {r.get('versions')}",
        str(r.get("mapping", {}).get("loupe")),
        "",
        f"{'figure':<46} {'Loupe':>18} {'Label Studio':>18} {'Loupe/LS':>9}  better",
        "-" * 104,
    ]
    for name, lo, ls, better in rows:
        out.append(
            f"{name:<46} {('-' if lo is None else str(lo)):>18} {('-' if ls is None else str(ls)):>18} "
            f"{ratio(lo, ls) if better else '-':>9}  {better}"
        )
    if r.get("strategy_loops"):
        out += [
            "",
            "Loupe per queue strategy (next + submit, ms; server CPU per answer)",
            f"{'strategy':<18} {'clients':>7} {'answers/s':>9} {'next p50/p95/p99':>20} {'submit p50/p95/p99':>20} "
            f"{'cpu ms':>7} {'errors':>6} {'rescore s':>9} {'list p50/p95/p99':>20} {'lists/s':>7}",
        ]
        for x in r["strategy_loops"]:

            def trio(d: dict) -> str:
                return f"{d.get('p50_ms')}/{d.get('p95_ms')}/{d.get('p99_ms')}"

            out.append(
                f"{x['strategy']:<18} {x['clients']:>7} {x['loops_per_s']:>9} {trio(x['next']):>20} "
                f"{trio(x['submit']):>20} {x['server_cpu_ms_per_answer']:>7} {x['errors']:>6} {x['rescore_s']:>9} "
                f"{trio(x.get('list_filtered', {})):>20} {x.get('list_filtered', {}).get('lists_per_s', '-'):>7}"
            )
            if x.get("reopened") is not None or x.get("shadow_scored_s") is not None:
                out.append(
                    f"{'':<18} (shadow scored every open item in {x.get('shadow_scored_s', '-')} s; "
                    f"label issues reopened: {x.get('reopened', '-')})"
                )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100000, help="items imported into each app")
    ap.add_argument("--ls-n", type=int, default=None, help="items for Label Studio if fewer (default --n)")
    ap.add_argument("--loop-seconds", type=float, default=30)
    ap.add_argument("--concurrency", default="1,16")
    ap.add_argument("--rounds", type=int, default=2, help="review loops: Loupe, LS, Loupe, LS ... rounds times")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument(
        "--loupe-strategies",
        default="",
        help="after the side-by-side loops, Loupe alone under each queue strategy, e.g. "
        "margin,entropy,disagreement,label_issue,audit_slice,least_confidence",
    )
    ap.add_argument(
        "--label-issues", type=int, default=1000, help="label_issue strategy: how many likeliest errors to reopen"
    )
    ap.add_argument("--reviewers", type=int, default=16)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--import-budget-s", type=float, default=1800)
    ap.add_argument(
        "--file-import",
        type=int,
        default=0,
        help="at the end, Loupe alone imports this many items as one file (0: skip); shown against LS's rate",
    )
    ap.add_argument("--loupe-port", type=int, default=18190)
    ap.add_argument("--ls-port", type=int, default=18191)
    ap.add_argument("--ls-root", default="/work/.label-studio")
    ap.add_argument("--workdir", default="/work/.label-studio/side_by_side")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--loupe-tree", action="store_true", help="run Loupe from the working tree, not a HEAD export")
    ap.add_argument(
        "--profile-web",
        action="store_true",
        help="after the loops, one more Loupe loop with its web workers sampled by py-spy (needs py-spy in .venv)",
    )
    ap.add_argument(
        "--no-analyze", dest="analyze", action="store_false", help="do not ANALYZE both databases after the imports"
    )
    ap.add_argument("--table-from", default=None, help="only print the table of a results JSON")
    a = ap.parse_args()
    if a.table_from:
        print(table(json.load(open(a.table_from))))
        return
    result = run(a)
    out = results_path(a)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".partial.json").unlink(missing_ok=True)
    print()
    print(table(result))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
