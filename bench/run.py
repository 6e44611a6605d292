"""Measure the generated app against its peers in one run, and report ratios against the goals.

Every server runs at once, idle but for the one being measured, and the CPU
rounds go round-robin over them, so a noisy machine weighs on every app alike.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

from bench import generated
from bench.servers import Server, spawn, uvicorn_command
from tests.project import STACKS

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "bench"
PEERS = {
    "minimal": "bench.peers.minimal:app",
    "queue_wait": "bench.peers.queue_wait:app",
    "sse_starlette": "bench.peers.sse_starlette_app:app",
}
# `generated` is the default project (Starlette); `generated-<framework>`, the same with
# another framework on its default server. Those are measured only when asked for.
FRAMEWORK_APPS = {f"generated-{name}": name for name in STACKS if name != "starlette"}
APPS = [*PEERS, "generated"]
# One gunicorn gthread worker holds one stream per thread (its server.py's THREADS), and
# the publishing requests need a thread too.
FLASK_THREADS = 1000
# The goals, as docs/benchmarks.md states them.
CPU_FLOOR_GOAL = 1.3
CPU_PEER_GOAL = 0.5
KIB_GOAL = 12.0
HOLD_GOAL = 10_000
WARMUP_STREAMS = 20
WARMUP_EVENTS = 5
SETTLE_SECONDS = 1.0
REPLY_SLACK_SECONDS = 30.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Load:
    """The load generator process (bench.load), one JSON command and reply at a time."""

    def __init__(self) -> None:
        self.process = spawn([sys.executable, "-m", "bench.load"], cwd=ROOT, pipes=True)

    def request(self, timeout: float, **command: Any) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("the load generator has no pipes")
        stdin.write((json.dumps({**command, "timeout": timeout}) + "\n").encode())
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], timeout + REPLY_SLACK_SECONDS)
        line = stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the load generator did not answer {command['op']!r}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.process.poll() is None:
            with suppress(OSError, RuntimeError, ValueError):
                self.request(5.0, op="quit")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nox -s bench --", description=__doc__)
    parser.add_argument("--subscribers", type=int, default=2000, help="SSE streams per app (N)")
    parser.add_argument("--events", type=int, default=200, help="events per CPU round (M)")
    parser.add_argument("--repeat", type=int, default=3, help="CPU rounds per app; median shown")
    parser.add_argument(
        "--hold", type=int, default=HOLD_GOAL, help="streams the generated app must hold (0: skip)"
    )
    parser.add_argument(
        "--hold-events", type=int, default=3, help="events sent to all held streams"
    )
    parser.add_argument(
        "--apps",
        default=",".join(APPS),
        help=f"comma-separated, from {','.join([*APPS, *FRAMEWORK_APPS])}; `all` for every one",
    )
    parser.add_argument("--concurrency", type=int, default=200, help="connections opened at once")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed for each step"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--burst",
        action="store_true",
        help="publish without waiting for each event to reach every stream (apps may batch)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    args.apps = [name.strip() for name in args.apps.split(",") if name.strip()]
    if args.apps == ["all"]:
        args.apps = [*APPS, *FRAMEWORK_APPS]
    unknown = set(args.apps) - {*APPS, *FRAMEWORK_APPS}
    if unknown:
        parser.error(f"unknown apps: {', '.join(sorted(unknown))}")
    if min(args.subscribers, args.events, args.repeat, args.hold_events) < 1 or args.hold < 0:
        parser.error("counts must be positive")
    if "generated-flask" in args.apps and args.subscribers >= FLASK_THREADS:
        parser.error(
            f"generated-flask has one gunicorn worker of {FLASK_THREADS} threads, a thread per "
            f"open stream, and publishing needs one too: use --subscribers {FLASK_THREADS - 1} "
            "or fewer"
        )
    return args


def measure_memory(load: Load, server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Warm the app up, then KiB of RSS per idle stream over `subscribers` new streams."""
    warm = f"{server.name}-warmup"
    reply = load.request(
        args.timeout,
        op="open",
        key=warm,
        port=server.port,
        channel=CHANNEL,
        count=WARMUP_STREAMS,
        concurrency=args.concurrency,
    )
    if "error" not in reply:
        reply = load.request(
            args.timeout, op="publish", key=warm, events=WARMUP_EVENTS, burst=False
        )
    load.request(args.timeout, op="close", key=warm)
    if "error" in reply:
        return {"error": f"warm-up: {reply['error']}"}
    time.sleep(SETTLE_SECONDS)
    before = server.rss_kib()
    reply = load.request(
        args.timeout,
        op="open",
        key=server.name,
        port=server.port,
        channel=CHANNEL,
        count=args.subscribers,
        concurrency=args.concurrency,
    )
    if "error" in reply:
        return {
            "error": f"opening {args.subscribers} streams: {reply['error']} ({reply['open']} open)"
        }
    time.sleep(SETTLE_SECONDS)
    after = server.rss_kib()
    return {
        "rss_kib_before": before,
        "rss_kib_after": after,
        "open_seconds": reply["seconds"],
        "kib_per_connection": (after - before) / args.subscribers,
    }


def measure_cpu(load: Load, server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Server CPU per delivered event over one lock-step round of `events` to every stream."""
    before = server.cpu_seconds()
    reply = load.request(
        args.timeout, op="publish", key=server.name, events=args.events, burst=args.burst
    )
    spent = server.cpu_seconds() - before
    expected = args.subscribers * args.events
    if "error" in reply:
        return {"error": reply["error"]}
    if reply["delivered"] != expected:
        return {"error": f"{reply['delivered']} of {expected} delivered"}
    return {
        "us_per_event": spent * 1e6 / expected,
        "deliveries_per_second": expected / reply["seconds"],
    }


def hold(load: Load, server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Open `hold` streams on the generated app and send a few events to all of them."""
    key = f"{server.name}-hold"
    result: dict[str, Any] = {"streams": args.hold, "events": args.hold_events}
    try:
        opened = load.request(
            args.timeout,
            op="open",
            key=key,
            port=server.port,
            channel=CHANNEL,
            count=args.hold,
            concurrency=args.concurrency,
        )
        result["open"] = opened["open"]
        if "error" in opened:
            return {**result, "held": False, "error": opened["error"]}
        result["open_seconds"] = opened["seconds"]
        result["rss_kib"] = server.rss_kib()
        sent = load.request(
            args.timeout, op="publish", key=key, events=args.hold_events, burst=False
        )
        if "error" in sent:
            return {**result, "held": False, "error": sent["error"]}
        result["deliver_seconds"] = sent["seconds"]
        result["held"] = sent["delivered"] == args.hold * args.hold_events
        return result
    finally:
        load.request(args.timeout, op="close", key=key)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def summarise(apps: dict[str, dict[str, Any]], held: dict[str, Any] | None) -> list[dict[str, Any]]:
    def cpu(name: str) -> float | None:
        value = apps.get(name, {}).get("cpu_us_per_event")
        return float(value) if value is not None else None

    kib = apps.get("generated", {}).get("kib_per_connection")
    goals = [
        {
            "what": "generated / minimal CPU",
            "value": ratio(cpu("generated"), cpu("minimal")),
            "goal": f"<= {CPU_FLOOR_GOAL}",
            "limit": CPU_FLOOR_GOAL,
        },
        {
            "what": "generated / sse_starlette CPU",
            "value": ratio(cpu("generated"), cpu("sse_starlette")),
            "goal": f"<= {CPU_PEER_GOAL}",
            "limit": CPU_PEER_GOAL,
        },
        {
            "what": "generated KiB per idle connection",
            "value": kib,
            "goal": f"<= {KIB_GOAL:g}",
            "limit": KIB_GOAL,
        },
    ]
    for goal in goals:
        goal["met"] = None if goal["value"] is None else goal["value"] <= goal.pop("limit")
        goal.pop("limit", None)
    if held is not None:
        goals.append(
            {
                "what": f"{held['streams']:,} SSE streams held",
                "value": held["held"],
                "goal": "yes",
                "met": held["held"] and held["streams"] >= HOLD_GOAL,
            }
        )
    return goals


def compare_frameworks(apps: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each other framework's app beside the default (Starlette) one and the floor, as ratios."""

    def figure(name: str, key: str) -> float | None:
        value = apps.get(name, {}).get(key)
        return float(value) if value is not None else None

    return [
        {
            "app": name,
            "cpu_vs_generated": ratio(
                figure(name, "cpu_us_per_event"), figure("generated", "cpu_us_per_event")
            ),
            "cpu_vs_minimal": ratio(
                figure(name, "cpu_us_per_event"), figure("minimal", "cpu_us_per_event")
            ),
            "kib_vs_generated": ratio(
                figure(name, "kib_per_connection"), figure("generated", "kib_per_connection")
            ),
        }
        for name in apps
        if name in FRAMEWORK_APPS
    ]


def show(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(results: dict[str, Any]) -> str:
    config = results["config"]
    lines = [
        f"{config['subscribers']} SSE subscribers, {config['events']} events a round "
        f"({'burst' if config['burst'] else 'lock-step'}), "
        f"median of {config['repeat']} rounds; load average {results['load_average']['start']} "
        f"at the start, {results['load_average']['end']} at the end",
        "",
        "| app | server CPU us/event | rounds | deliveries/s | KiB/idle conn |",
        "|---|---:|---|---:|---:|",
    ]
    for name, app in results["apps"].items():
        rounds = " ".join(show(value) for value in app.get("cpu_rounds", []))
        lines.append(
            f"| {name} | {show(app.get('cpu_us_per_event'))} | {rounds} | "
            f"{show(app.get('deliveries_per_second'), 0)} | {show(app.get('kib_per_connection'))} |"
        )
        if "error" in app:
            lines.append(f"|   error: {app['error']} | | | | |")
    held = results.get("hold")
    if held is not None:
        lines += ["", describe_hold(held)]
    lines += ["", "| goal | value | wanted | met |", "|---|---:|---|---|"]
    for goal in results["goals"]:
        lines.append(
            f"| {goal['what']} | {show(goal['value'], 2)} | {goal['goal']} | {show(goal['met'])} |"
        )
    if results["frameworks"]:
        lines += [
            "",
            "| app | CPU / generated | CPU / minimal | KiB per idle conn / generated |",
            "|---|---:|---:|---:|",
        ]
        for row in results["frameworks"]:
            lines.append(
                f"| {row['app']} | {show(row['cpu_vs_generated'], 2)} | "
                f"{show(row['cpu_vs_minimal'], 2)} | {show(row['kib_vs_generated'], 2)} |"
            )
    lines.append("")
    lines += [f"{name}: {found}" for name, found in results["versions"].items()]
    return "\n".join(lines)


def describe_hold(held: dict[str, Any]) -> str:
    text = f"generated, {held['streams']:,} SSE streams on one process: "
    if "open_seconds" in held:
        text += f"opened in {held['open_seconds']:.1f} s, RSS {held['rss_kib'] / 1024:.0f} MiB"
    else:
        text += f"{held.get('open', 0):,} opened"
    if "deliver_seconds" in held:
        text += f"; {held['events']} events to all of them in {held['deliver_seconds']:.1f} s"
    if "error" in held:
        text += f"; failed: {held['error']}"
    elif held.get("held"):
        text += ", every stream got every event"
    return text


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def peer_versions() -> str:
    names = ("starlette", "sse-starlette", "broadcaster", "uvicorn", "uvloop", "httptools")
    return ", ".join(
        [sys.version.split()[0], *(f"{name} {metadata.version(name)}" for name in names)]
    )


def start_servers(
    args: argparse.Namespace, tmp: Path, results: dict[str, Any]
) -> dict[str, Server]:
    servers: dict[str, Server] = {}
    for name in args.apps:
        if name == "generated" or name in FRAMEWORK_APPS:
            log(f"rendering and installing {name} ...")
            command, env = generated.build(tmp / name, FRAMEWORK_APPS.get(name))
            results["versions"][name] = generated.versions(tmp / name)
        else:
            command, env = uvicorn_command(PEERS[name]), dict(os.environ)
        servers[name] = Server(name, command, env, ROOT, tmp / f"{name}.log")
    return servers


def measure_all(
    load: Load, servers: dict[str, Server], args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Memory app by app, then CPU rounds round-robin over the apps; median per app."""
    apps: dict[str, dict[str, Any]] = {}
    for name, server in servers.items():
        log(f"{name}: opening {args.subscribers} idle streams ...")
        apps[name] = {**measure_memory(load, server, args), "cpu_rounds": [], "rates": []}
        if "error" in apps[name]:
            log(f"{name} failed: {apps[name]['error']}; its log ends:\n{server.output()}")
    for round_number in range(args.repeat):
        for name, server in servers.items():
            app = apps[name]
            if "error" in app:
                continue
            log(f"{name}: round {round_number + 1} of {args.repeat} ...")
            measured = measure_cpu(load, server, args)
            if "error" in measured:
                app["error"] = measured["error"]
                log(f"{name} failed: {measured['error']}; its log ends:\n{server.output()}")
                continue
            app["cpu_rounds"].append(measured["us_per_event"])
            app["rates"].append(measured["deliveries_per_second"])
    for app in apps.values():
        rates = app.pop("rates")
        if app["cpu_rounds"] and "error" not in app:
            app["cpu_us_per_event"] = statistics.median(app["cpu_rounds"])
            app["deliveries_per_second"] = statistics.median(rates)
    return apps


def run(args: argparse.Namespace, stack: ExitStack) -> dict[str, Any]:
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="copier-realtime-bench-")))
    results: dict[str, Any] = {
        "config": {
            key: getattr(args, key)
            for key in ("subscribers", "events", "repeat", "hold", "hold_events", "burst")
        },
        "load_average": {"start": load_average()},
        "versions": {"peers": peer_versions(), "generated": "n/a"},
    }
    servers = start_servers(args, tmp, results)
    load = Load()
    stack.callback(load.close)
    for server in servers.values():
        stack.callback(server.stop)
        server.start()
        log(f"{server.name}: pid {server.pid}, port {server.port}")
    results["apps"] = apps = measure_all(load, servers, args)
    for name in apps:
        load.request(args.timeout, op="close", key=name)
        if name != "generated":
            servers[name].stop()
    held = None
    if "generated" in servers and args.hold:
        time.sleep(SETTLE_SECONDS)
        log(f"generated: holding {args.hold} streams ...")
        held = results["hold"] = hold(load, servers["generated"], args)
    results["goals"] = summarise(apps, held)
    results["frameworks"] = compare_frameworks(apps)
    results["load_average"]["end"] = load_average()
    return results


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit, so that every server is stopped on the way out."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    with ExitStack() as stack:
        results = run(args, stack)
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.check and not all(goal["met"] for goal in results["goals"]):
        raise SystemExit(1)
