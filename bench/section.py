#!/usr/bin/env python3
"""Writes the report on stdin into bench/README.md between `<!-- NAME:begin -->` and
`<!-- NAME:end -->` (appended when the markers are missing), under a line that gives the date,
the commit and the command that measured it; echoes the report.

    report | bench/section.py NAME README "COMMAND"
"""
import datetime
import os
import subprocess
import sys

name, readme, command = sys.argv[1:4]
body = sys.stdin.read().strip("\n")
print(body)
here = os.path.dirname(os.path.abspath(readme))


def git(*args):
    run = subprocess.run(["git", "-C", here, *args], capture_output=True, text=True)
    return run.stdout.strip() if run.returncode == 0 else ""


commit = git("rev-parse", "--short", "HEAD") or "unknown"
# The report files themselves are rewritten by the run; any other change means the figures may
# not be the commit's.
if git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)bench/README.md",
       ":(top,exclude)bench/*.png"):
    commit += " with uncommitted changes"
day = datetime.date.today().isoformat()
stamp = f"Measured {day} on commit {commit} with `{command}`."
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
block = f"{begin}\n{stamp}\n\n{body}\n{end}"
text = open(readme).read() if os.path.exists(readme) else ""
if begin in text and end in text:
    text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text += f"\n{block}\n"
open(readme, "w").write(text)
