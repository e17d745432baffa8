"""Progress per test file: a line when each file has finished, with its counts, time and CPU.

With ``-q`` pytest prints only dots, and a suite whose slowest files run for minutes looks
hung; with ``-v`` it prints a line per test. This prints one line per file as it
finishes, in the order files finish (under pytest-xdist too, where the controller learns
each file's tests from the workers' collections).
"""

from __future__ import annotations

import resource
from collections import Counter, defaultdict
from typing import Any

import pytest


class FileProgress:
    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter
        self.expected: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        self.seconds: Counter[str] = Counter()
        self.cpu: Counter[str] = Counter()
        self.test_cpu: Counter[str] = Counter()

    def expect(self, nodeids: list[str]) -> None:
        if not self.expected:  # every xdist worker collects the same tests
            self.expected.update(nodeid.split("::")[0] for nodeid in nodeids)

    def report(self, report: pytest.TestReport) -> None:
        path = report.nodeid.split("::")[0]
        self.seconds[path] += report.duration
        cpu = sum(value for name, value in report.user_properties if name == "cpu seconds")
        self.cpu[path] += cpu
        self.test_cpu[report.nodeid] += cpu
        if report.when == "call":
            self.outcomes[path][report.outcome] += 1
        elif report.when == "setup" and not report.passed:  # the test never ran
            self.outcomes[path]["skipped" if report.skipped else "error"] += 1
        elif report.when == "teardown" and report.failed:
            self.outcomes[path]["error"] += 1
        if report.when == "teardown":
            self.finished[path] += 1
            if self.expected and self.finished[path] == self.expected[path]:
                counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.outcomes[path].items()))
                if getattr(self.reporter._tw, "_current_line", ""):  # after a run of dots
                    self.reporter.write("\n")
                self.reporter.write_line(f"{path}: {counts} in {self.seconds[path]:.0f} s "
                                        f"(CPU {self.cpu[path]:.0f} s)")


_progress: FileProgress | None = None


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    global _progress
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and not hasattr(config, "workerinput"):  # the controller, or a plain run
        _progress = FileProgress(reporter)


def pytest_collection_finish(session: pytest.Session) -> None:
    if _progress is not None:
        _progress.expect([item.nodeid for item in session.items])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    if _progress is not None:
        _progress.expect(list(ids))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # What to look at first when the suite gets slow.
    if _progress is not None and len(_progress.cpu) > 1:
        costly = ", ".join(f"{path} {cpu:.0f} s" for path, cpu in _progress.cpu.most_common(8))
        terminalreporter.write_line(f"CPU {sum(_progress.cpu.values()):.0f} s in all; the costliest files: {costly}")
        tests = ", ".join(f"{nodeid} {cpu:.0f} s" for nodeid, cpu in _progress.test_cpu.most_common(8))
        terminalreporter.write_line(f"The costliest tests (with their module fixtures): {tests}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _progress is not None:
        _progress.report(report)


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_cpu_mark = 0.0


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    global _cpu_mark
    _cpu_mark = _cpu_seconds()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Runs where the test runs (an xdist worker); user_properties travel to the controller.
    global _cpu_mark
    outcome = yield
    now = _cpu_seconds()
    outcome.get_result().user_properties.append(("cpu seconds", now - _cpu_mark))
    _cpu_mark = now
