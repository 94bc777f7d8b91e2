"""What the stand-alone benchmark scripts (dist_scaling.py, busy_machine.py, parallel_modes.py) share:
the commit they ran at, the record every result starts with, and writing a result as JSON and Markdown
side by side, each file atomically."""
import json
import os
import subprocess
import sys


def commit_stamp():
    """The short commit of HEAD, with "-dirty" when tracked files differ from it."""
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def result_record(name, commit, load_start, load_end, rows, **settings):
    """A result: its name, commit, the machine's cores, the script's own settings, the load around the
    run, the command that ran it and its rows."""
    return {"name": name, "commit": commit, "cores": os.cpu_count(), **settings, "load_start": load_start,
            "load_end": load_end, "command": " ".join(sys.argv), "rows": rows}


def write_result(results_dir, base_name, result, md_lines):
    """results_dir/base_name.json (result) and .md (md_lines), each written whole or not at all."""
    os.makedirs(results_dir, exist_ok=True)
    base = os.path.join(results_dir, base_name)
    with open(base + ".json.tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(base + ".json.tmp", base + ".json")
    with open(base + ".md.tmp", "w") as f:
        f.write("\n".join(md_lines) + "\n")
    os.replace(base + ".md.tmp", base + ".md")
