"""``listener sql`` without a query: an interactive SQL shell on the read-only database.

Statements end with ``;`` and may span lines. Dot-commands, as in the DuckDB and
SQLite shells: ``.tables``, ``.schema NAME``, ``.mode table|csv|json``, ``.help``,
``.quit``. When stdin is not a terminal (a script piped in) no prompt is printed, and
the exit code is 1 if any statement failed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

import duckdb

from listener import formatting
from storage.analyst import QueryError, QueryResult, list_tables, run_query, table_columns
from storage.views import DESCRIPTIONS

MODES = ("table", "csv", "json")

HELP = """\
Enter SQL ending with ';'. The views (documented in docs/analysts.md):
{views}
Dot-commands:
  .tables          tables and views
  .schema NAME     the columns of a table or view
  .mode MODE       output as table, csv or json (now: {mode})
  .help            this text
  .quit            leave (or Ctrl-D)"""


def render(mode: str, columns: list[str], rows: list[tuple]) -> str:
    if mode == "csv":
        return formatting.result_csv(columns, rows).rstrip("\n")
    if mode == "json":
        return formatting.result_json(columns, rows)
    return formatting.result_table(columns, rows)


class Shell:
    def __init__(self, db: duckdb.DuckDBPyConnection, out: TextIO, err: TextIO, mode: str = "table",
                 max_rows: int = 1000) -> None:
        self.db = db
        self.out = out
        self.err = err
        self.mode = mode
        self.max_rows = max_rows
        self.failed = False

    def run(self, read_line: Callable[[str], str], interactive: bool) -> int:
        if interactive:
            self.err.write("Read-only SQL on the listener database. '.help' for help, '.quit' to leave.\n")
        pending: list[str] = []
        while True:
            prompt = ("   ...> " if pending else "listener> ") if interactive else ""
            try:
                line = read_line(prompt)
            except EOFError:
                break
            except KeyboardInterrupt:
                pending = []
                self.err.write("\n")
                continue
            stripped = line.strip()
            if not pending and stripped.startswith("."):
                if not self.dot_command(stripped):
                    break
                continue
            if not stripped and not pending:
                continue
            pending.append(line)
            if stripped.endswith(";"):
                self.execute("\n".join(pending))
                pending = []
        if pending and "".join(pending).strip():
            self.execute("\n".join(pending))
        if interactive:
            self.err.write("\n")
        return 1 if self.failed else 0

    def execute(self, sql: str) -> None:
        self.show(lambda limit: run_query(self.db, sql, limit=limit))

    def show(self, query: Callable[[int], QueryResult]) -> None:
        """Print what ``query`` (given the row limit) returns, or its error."""
        try:
            result = query(self.max_rows + 1)
        except QueryError as exc:
            self.failed = True
            self.err.write(f"Error: {exc}\n")
            return
        if not result.columns:
            return
        rows = result.rows[: self.max_rows]
        self.out.write(render(self.mode, result.columns, rows) + "\n")
        if len(result.rows) > self.max_rows:
            self.err.write(f"(showing the first {self.max_rows:,} rows; use 'listener sql' or export for more)\n")

    def dot_command(self, command: str) -> bool:
        """Run a dot-command; False means leave."""
        name, _, argument = command.partition(" ")
        argument = argument.strip().rstrip(";")
        if name in (".quit", ".exit", ".q"):
            return False
        if name == ".help":
            views = "\n".join(f"  {view:<18}{text}" for view, text in DESCRIPTIONS.items())
            self.err.write(HELP.format(views=views, mode=self.mode) + "\n")
        elif name == ".tables":
            self.show(lambda limit: list_tables(self.db, limit))
        elif name == ".schema":
            if not argument:
                self.err.write("Usage: .schema NAME\n")
            else:
                self.show(lambda limit: table_columns(self.db, argument, limit))
        elif name == ".mode":
            if argument in MODES:
                self.mode = argument
            else:
                self.err.write(f"Usage: .mode {'|'.join(MODES)}\n")
        else:
            self.failed = True
            self.err.write(f"Unknown command {name}: try .help\n")
        return True


def run_shell(db: duckdb.DuckDBPyConnection, mode: str = "table") -> int:
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:  # pragma: no cover - not on every platform
            pass

        def read_line(prompt: str) -> str:
            return input(prompt)
    else:
        def read_line(prompt: str) -> str:
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line.rstrip("\n")
    return Shell(db, sys.stdout, sys.stderr, mode).run(read_line, interactive)
